"""kitt.bench.http: the streaming HTTP/1.1 client, and run_level on top of it.

The parser is fed byte strings directly (every split point of a chunked stream); the socket
paths run against small scripted servers on 127.0.0.1 and the reference server.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kitt.bench.client import Client
from kitt.bench.framing import Response
from kitt.bench.http import Connection
from kitt.bench.pump import Pump
from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.workload.arrivals import Arrival, schedule
from kitt.workload.spec import RequestSpec
from kitt.config import Level
from support import read_request, stop_process

ROOT = Path(__file__).resolve().parents[2]


def sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def text_event(text: str, usage: int | None = None) -> bytes:
    payload: dict = {"id": "x", "choices": [{"index": 0, "text": text, "finish_reason": None}]}
    if usage is not None:
        payload["usage"] = {"prompt_tokens": 3, "completion_tokens": usage, "total_tokens": 3 + usage}
    return sse(payload)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENTS = [text_event(" a"), text_event(" b"), b"data: [DONE]\n\n"]
STREAM = HEAD + b"".join(chunk(e) for e in EVENTS) + b"0\r\n\r\n"


def offline_connection() -> tuple[Connection, list[Response], socket.socket]:
    """A connection in the middle of a request, fed by hand (its peer socket is returned)."""
    here, there = socket.socketpair()
    connection = Connection(Pump(), here, memoryview(bytearray(4096)))
    connection.ready = True
    done: list[Response] = []
    connection.request(b"GET / HTTP/1.1\r\n\r\n", 60.0, done.append)
    return connection, done, there


# ------------------------------------------------------------------------------ the parser


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_chunked_stream_split_at_every_byte(cut: int) -> None:
    connection, done, _ = offline_connection()
    connection.data_received(STREAM[:cut], 1.0)
    assert not done or cut == len(STREAM)
    connection.data_received(STREAM[cut:], 2.0)
    assert len(done) == 1
    response = done[0]
    assert response.error is None and response.status == 200
    assert [line for _, line in response.lines] == [e.rstrip(b"\n") for e in EVENTS]
    # A line is stamped by the read in which its newline arrived.
    ends = [len(HEAD) + sum(len(chunk(e)) for e in EVENTS[:i]) + len(chunk(e)) - 3 for i, e in enumerate(EVENTS)]
    assert [stamp for stamp, _ in response.lines] == [1.0 if end <= cut else 2.0 for end in ends]
    assert connection.reusable


def test_every_byte_in_its_own_read() -> None:
    connection, done, _ = offline_connection()
    for position in range(len(STREAM)):
        connection.data_received(STREAM[position : position + 1], float(position))
    assert [line for _, line in done[0].lines] == [e.rstrip(b"\n") for e in EVENTS]


def test_several_events_in_one_read_share_its_stamp() -> None:
    connection, done, _ = offline_connection()
    connection.data_received(STREAM, 5.0)
    assert [stamp for stamp, _ in done[0].lines] == [5.0, 5.0, 5.0]


def test_events_split_across_chunks_and_chunk_extensions() -> None:
    body = b"".join(EVENTS)
    pieces = [body[:7], body[7:40], body[40:]]
    raw = HEAD + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nTrailer: x\r\n\r\n"
    connection, done, _ = offline_connection()
    connection.data_received(raw, 1.0)
    assert [line for _, line in done[0].lines] == [e.rstrip(b"\n") for e in EVENTS]


def test_content_length_body_and_interim_response() -> None:
    body = b"".join(EVENTS)
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    connection, done, _ = offline_connection()
    connection.data_received(raw, 1.0)
    assert len(done[0].lines) == 3 and connection.reusable


def test_error_status_keeps_the_body() -> None:
    connection, done, _ = offline_connection()
    connection.data_received(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 9\r\n\r\nit broke!", 1.0)
    assert done[0].status == 500 and done[0].body == b"it broke!" and done[0].lines == []


def test_malformed_chunk_size_fails_the_request() -> None:
    connection, done, _ = offline_connection()
    connection.data_received(HEAD + b"zz\r\n", 1.0)
    assert done[0].error and "malformed" in done[0].error
    assert connection.closed and not connection.reusable


def test_connection_close_header_is_not_reused() -> None:
    connection, done, _ = offline_connection()
    connection.data_received(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 1.0)
    assert done[0].status == 200 and not connection.reusable


# --------------------------------------------------------------------------- socket paths


class ScriptedServer:
    """Answers each request on 127.0.0.1 with the next scripted reply: (pieces, pause s, close after)."""

    def __init__(self, replies: list[tuple[list[bytes], float, bool]], context: ssl.SSLContext | None = None) -> None:
        self.replies = list(replies)
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        if context is not None:
            self.listener = context.wrap_socket(self.listener, server_side=True)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(10)
        while self.replies:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buffer = b""
        with conn:
            while self.replies:
                left = read_request(conn, buffer)
                if left is None:
                    return
                buffer = left
                pieces, pause, close = self.replies.pop(0)
                for piece in pieces:
                    conn.sendall(piece)
                    time.sleep(pause)
                if close:
                    return

    def close(self) -> None:
        self.replies.clear()
        self.listener.close()


def exchange(
    client: Client, payloads: list[bytes], timeout: float = 10.0, use_epoll: bool = True
) -> tuple[list[Response], list[Connection]]:
    """Send ``payloads`` one after another on one pump, reusing the connection while it allows."""
    pump = Pump(use_epoll=use_epoll)
    responses: list[Response] = []
    used: list[Connection] = []

    def send(connection: Connection | None) -> None:
        if len(responses) == len(payloads):
            pump.stop()
            return
        if connection is None or not connection.reusable:
            client.open(pump, opened)
            return
        used.append(connection)
        connection.request(client.request_bytes(payloads[len(responses)]), timeout, lambda r: done(connection, r))

    def opened(connection: Connection, error: str | None) -> None:
        if error:
            responses.append(Response(error=error))
            pump.call_soon(send, None)
        else:
            send(connection)

    def done(connection: Connection, response: Response) -> None:
        responses.append(response)
        pump.call_soon(send, connection)

    pump.call_soon(send, None)
    watchdog = threading.Timer(20, pump.stop)
    watchdog.start()
    pump.run()
    watchdog.cancel()
    return responses, used


@pytest.mark.parametrize("use_epoll", [True, False], ids=["epoll", "selectors"])
def test_keep_alive_reuses_one_connection(use_epoll: bool) -> None:
    server = ScriptedServer([([STREAM], 0, False)] * 3)
    try:
        responses, used = exchange(
            Client(f"http://127.0.0.1:{server.port}/v1/completions"), [b"{}"] * 3, use_epoll=use_epoll
        )
    finally:
        server.close()
    assert [r.error for r in responses] == [None] * 3
    assert all(len(r.lines) == 3 for r in responses)
    assert len({id(c) for c in used}) == 1 and server.connections == 1


def test_server_closing_mid_stream_is_an_error_and_the_next_request_reconnects() -> None:
    cut = HEAD + chunk(EVENTS[0])
    server = ScriptedServer([([cut], 0, True), ([STREAM], 0, False)])
    try:
        responses, _ = exchange(Client(f"http://127.0.0.1:{server.port}/"), [b"{}", b"{}"])
    finally:
        server.close()
    assert responses[0].error and "mid-response" in responses[0].error
    assert len(responses[0].lines) == 1
    assert responses[1].error is None and server.connections == 2


def test_events_in_separate_writes_get_increasing_stamps() -> None:
    pieces = [HEAD] + [chunk(e) for e in EVENTS] + [b"0\r\n\r\n"]
    server = ScriptedServer([(pieces, 0.02, False)])
    try:
        responses, _ = exchange(Client(f"http://127.0.0.1:{server.port}/"), [b"{}"])
    finally:
        server.close()
    stamps = [stamp for stamp, _ in responses[0].lines]
    assert all(b - a > 0.01 for a, b in zip(stamps, stamps[1:]))


def test_connection_refused_and_timeout_are_errors() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    responses, _ = exchange(Client(f"http://127.0.0.1:{port}/"), [b"{}"])
    assert responses[0].error and "ConnectionError" in responses[0].error
    server = ScriptedServer([([HEAD, chunk(EVENTS[0])], 1.0, False)])
    try:
        responses, _ = exchange(Client(f"http://127.0.0.1:{server.port}/"), [b"{}"], timeout=0.2)
    finally:
        server.close()
    assert responses[0].error and responses[0].error.startswith("TimeoutError")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_through_memory_bios(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    pieces = [HEAD, chunk(EVENTS[0]), chunk(EVENTS[1]) + chunk(EVENTS[2]) + b"0\r\n\r\n"]
    server = ScriptedServer([(pieces, 0.01, False)] * 2, server_context)
    try:
        client_context = ssl.create_default_context(cafile=str(cert))
        responses, used = exchange(Client(f"https://127.0.0.1:{server.port}/", ssl_context=client_context), [b"{}"] * 2)
    finally:
        server.close()
    assert [r.error for r in responses] == [None, None]
    assert [len(r.lines) for r in responses] == [3, 3] and len({id(c) for c in used}) == 1


# ----------------------------------------------------------------------------- run_level


def run(
    url: str, count: int, level: Level, schedule: list[float] | None = None, **target: object
) -> list[RequestRecord]:
    sink: list[RequestRecord] = []
    specs = [RequestSpec(index=i, prompt=f"prompt {i}", max_tokens=4) for i in range(count)]
    asyncio.run(
        run_level(
            Target(base_url=url, model="reference", **target),
            specs,
            level,  # type: ignore[arg-type]
            test_name="t",
            run_number=1,
            sink=sink,
            schedule=schedule,
        )
    )
    return sink


@pytest.fixture(scope="module")
def reference_url():
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "reference_server.py"),
            "--port",
            "0",
            "--ttft-ms",
            "20",
            "--itl-ms",
            "5",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert line.startswith("listening "), line
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        stop_process(server)


def test_role_only_first_delta_is_not_a_token_event(reference_url: str) -> None:
    records = run(
        reference_url,
        2,
        Level("concurrency", 2),
        api="chat",
        stream_options={"include_usage": True, "continuous_usage_stats": True},
    )
    for record in records:
        assert record.ok, record.error
        assert len(record.events) == 4 and record.event_tokens == [1, 1, 1, 1]
        assert record.completion_tokens == 4 and record.usage_from_server
        assert 0.015 < record.events[0] - record.sent < 0.2  # TTFT, not the role delta at arrival


def test_chunked_events_and_open_loop(reference_url: str) -> None:
    records = run(
        reference_url, 6, Level("rate", 50.0), schedule(Arrival(), 50.0, 6, "t"), extra_body={"ref_tokens_per_event": 3}
    )
    assert len(records) == 6 and all(r.ok for r in records)
    assert all(r.event_tokens is None and len(r.events) == 2 and r.completion_tokens == 4 for r in records)
    assert all(r.sent >= r.scheduled for r in records)


def test_http_500_is_recorded() -> None:
    body = b'{"error": {"message": "simulated failure"}}'
    reply = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    server = ScriptedServer([([reply], 0, False)] * 2)
    try:
        records = run(f"http://127.0.0.1:{server.port}", 2, Level("concurrency", 1))
    finally:
        server.close()
    assert [r.status for r in records] == [500, 500]
    assert all(r.error and r.error.startswith("HTTP 500: ") and "simulated failure" in r.error for r in records)


def test_unreachable_server_records_every_request() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    records = run(f"http://127.0.0.1:{port}", 3, Level("concurrency", 2))
    assert len(records) == 3 and all(r.error and "ConnectionError" in r.error for r in records)


def test_cancellation_records_requests_in_flight() -> None:
    """The cancel is placed on an observed event (all three requests arrived at a server that
    holds them, half answered), never by the clock: whenever it lands, all three are in flight."""
    sink: list[RequestRecord] = []
    specs = [RequestSpec(index=i, prompt="p", max_tokens=500) for i in range(3)]
    arrived = threading.Semaphore(0)
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if read_request(conn, b"") is not None:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                held.append(conn)
                arrived.release()

    threading.Thread(target=serve, daemon=True).start()

    async def cancelled() -> None:
        task = asyncio.ensure_future(
            run_level(
                Target(base_url=f"http://127.0.0.1:{listener.getsockname()[1]}", model="m"),
                specs,
                Level("concurrency", 3),
                test_name="t",
                run_number=1,
                sink=sink,
            )
        )
        loop = asyncio.get_running_loop()
        for _ in specs:
            assert await loop.run_in_executor(None, arrived.acquire, True, 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(cancelled())
    finally:
        listener.close()
        for conn in held:
            conn.close()
    assert len(sink) == 3 and all(r.error == "cancelled" for r in sink)
