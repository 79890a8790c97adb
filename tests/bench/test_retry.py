"""The retry of a request that dies on a reused keep-alive connection before any response byte.

A server may close an idle keep-alive connection just as the client sends the next request on
it (llama.cpp's server does it often). The load generator then sends that request once more on a
fresh connection, takes the send time again there, and records the retry in samples.jsonl. A
server that fails the fresh attempt too is a real failure. Before a reuse, one peek drops a
connection whose close has already arrived. The servers here are small loopback servers on plain
sockets whose every close is scripted.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from kitt.bench.http import Connection
from kitt.bench.loadgen import Target, run_level
from kitt.bench.pump import Pump
from kitt.bench.records import RequestRecord
from kitt.workload.spec import RequestSpec
from kitt.config import Level
from kitt.results import SamplesWriter
from support import read_request

clock = time.perf_counter  # the load generator's clock: server and client stamps compare directly
ANSWER_DELAY = 0.01  # seconds from a request's arrival to its first event
DROP_DELAY = 0.05  # seconds a dropped request waits before the server closes on it
TOKENS = 4


def _event(text: str, completion: int) -> bytes:
    payload = {
        "choices": [{"index": 0, "text": text, "finish_reason": None}],
        "usage": {"prompt_tokens": 2, "completion_tokens": completion, "total_tokens": 2 + completion},
    }
    data = b"data: " + json.dumps(payload).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n%s\r\n"
    + b"".join(_event(f" t{i}", i + 1) for i in range(TOKENS))
    + b"%x\r\ndata: [DONE]\n\n\r\n0\r\n\r\n" % len(b"data: [DONE]\n\n")
)


class LoopbackServer:
    """Streams a completion per request; ``policy(nth_overall, nth_on_connection)`` says what to do.

    The policy returns ``"answer"``, ``"answer-close"`` (answer, then close ``close_after`` s
    later without a ``Connection: close`` header), ``"close-header"`` (answer with
    ``Connection: close``, then close ``close_after`` s later) or ``"drop"`` (close without a
    byte of response, ``DROP_DELAY`` s after the request arrived). ``arrivals`` holds
    (arrival time, connection number, policy's answer) per request, in arrival order.
    """

    def __init__(self, policy: Callable[[int, int], str], close_after: float = 0.0) -> None:
        self.policy, self.close_after = policy, close_after
        self.arrivals: list[tuple[float, int, str]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._handle, args=(conn, number), daemon=True).start()

    def _handle(self, conn: socket.socket, number: int) -> None:
        buffer, served = b"", 0
        with conn:
            conn.settimeout(20)
            while True:
                left = read_request(conn, buffer)
                if left is None:
                    return
                buffer = left
                arrived = clock()
                served += 1
                with self._lock:
                    action = self.policy(len(self.arrivals) + 1, served)
                    self.arrivals.append((arrived, number, action))
                if action == "drop":
                    time.sleep(DROP_DELAY)
                    return
                time.sleep(ANSWER_DELAY)
                header = b"Connection: close\r\n" if action == "close-header" else b""
                conn.sendall(STREAM % header)
                if action != "answer":
                    time.sleep(self.close_after)
                    return

    def close(self) -> None:
        self.listener.close()


def run(server: LoopbackServer, count: int, concurrency: int, samples: Path) -> list[dict]:
    """``count`` requests through run_level; their samples.jsonl lines, by request index."""
    sink: list[RequestRecord] = []
    specs = [RequestSpec(index=i, prompt=f"prompt {i}", max_tokens=TOKENS) for i in range(count)]
    try:
        asyncio.run(
            asyncio.wait_for(
                run_level(
                    Target(base_url=f"http://127.0.0.1:{server.port}", model="m"),
                    specs,
                    Level("concurrency", concurrency),
                    test_name="t",
                    run_number=1,
                    sink=sink,
                ),
                timeout=30,
            )
        )
    finally:
        server.close()
    origin = min(r.scheduled for r in sink)
    with SamplesWriter(samples) as writer:
        writer.write_many(r.to_sample(origin) for r in sink)
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(rows) == count
    rows.sort(key=lambda row: row["index"])
    for row, record in zip(rows, sorted(sink, key=lambda r: r.index)):
        row["_record"] = record
    return rows


def test_a_reused_connection_closed_unanswered_is_retried_on_a_fresh_one(tmp_path: Path) -> None:
    # Every connection answers its first request and drops its second: each reuse meets the race.
    server = LoopbackServer(lambda nth, on_connection: "answer" if on_connection == 1 else "drop")
    rows = run(server, 4, 1, tmp_path / "samples.jsonl")
    assert [row["error"] for row in rows] == [None] * 4
    assert [row["completion_tokens"] for row in rows] == [TOKENS] * 4
    assert [row["retries"] for row in rows] == [0, 1, 1, 1]  # in samples.jsonl, never hidden
    assert rows[0]["retry_error"] is None
    for row in rows[1:]:
        assert row["retry_error"] == "connection closed before a response (the server closed the connection)"
    # Request i >= 1: dropped on connection i (its second request), answered on connection i + 1.
    assert [(number, action) for _, number, action in server.arrivals] == [
        (1, "answer"),
        (1, "drop"),
        (2, "answer"),
        (2, "drop"),
        (3, "answer"),
        (3, "drop"),
        (4, "answer"),
    ]
    assert server.connections == 4
    answered = [arrived for arrived, _, action in server.arrivals if action == "answer"]
    dropped = [arrived for arrived, _, action in server.arrivals if action == "drop"]
    for row, fresh, stale in zip(rows[1:], answered[1:], dropped):
        record = row["_record"]
        # The send time is the fresh attempt's: after the drop, just before that request arrived.
        assert stale + DROP_DELAY <= record.sent <= fresh
        assert fresh - record.sent < DROP_DELAY
        ttft = record.events[0] - record.sent
        assert ANSWER_DELAY <= ttft < ANSWER_DELAY + DROP_DELAY  # from the real send, not the first
        assert row["schedule_lag_ms"] >= DROP_DELAY * 1e3  # the failed attempt shows as lag
        assert row["event_ms"][0] == round(ttft * 1e3, 3)


def test_a_fresh_attempt_that_fails_too_is_a_real_failure(tmp_path: Path) -> None:
    # Only the very first request is answered; the server drops every later one.
    server = LoopbackServer(lambda nth, on_connection: "answer" if nth == 1 else "drop")
    rows = run(server, 3, 1, tmp_path / "samples.jsonl")
    assert rows[0]["error"] is None and rows[0]["retries"] == 0
    closed = "connection closed before a response (the server closed the connection)"
    # Request 1 was on the reused connection: retried once, then failed on the fresh one.
    assert (rows[1]["error"], rows[1]["retries"], rows[1]["retry_error"]) == (closed, 1, closed)
    # Request 2 went out on a new connection (the last one was closed): no retry for it.
    assert (rows[2]["error"], rows[2]["retries"], rows[2]["retry_error"]) == (closed, 0, None)
    assert [number for _, number, _ in server.arrivals] == [1, 1, 2, 3]  # one retry, no more


def test_a_server_closing_each_connection_just_after_its_response(tmp_path: Path) -> None:
    # The reproduction: each connection closes 0.5 ms after every response, with no
    # Connection: close header. Whether a reuse meets the close is a race; every request completes.
    server = LoopbackServer(lambda nth, on_connection: "answer-close", close_after=0.0005)
    rows = run(server, 24, 4, tmp_path / "samples.jsonl")
    assert [row["error"] for row in rows] == [None] * 24
    assert all(row["completion_tokens"] == TOKENS and row["retries"] in (0, 1) for row in rows)
    assert all((row["retries"] == 1) == (row["retry_error"] is not None) for row in rows)
    answered = [action for _, _, action in server.arrivals if action != "drop"]
    assert len(answered) == 24


def test_connection_close_is_honoured(tmp_path: Path) -> None:
    # The server says Connection: close but keeps the socket open a while: reusing it would hang
    # or fail; honouring the header, each request gets a connection of its own and needs no retry.
    server = LoopbackServer(lambda nth, on_connection: "close-header", close_after=0.3)
    rows = run(server, 3, 1, tmp_path / "samples.jsonl")
    assert [(row["error"], row["retries"]) for row in rows] == [(None, 0)] * 3
    assert [number for _, number, _ in server.arrivals] == [1, 2, 3]


def test_an_idle_connection_the_peer_closed_is_not_reused() -> None:
    # Before a reuse, one peek sees a close that has already arrived: no failed attempt at all.
    def pair() -> tuple[Connection, socket.socket]:
        here, there = socket.socketpair()
        here.setblocking(False)
        connection = Connection(Pump(), here, memoryview(bytearray(4096)))
        connection.ready = True
        return connection, there

    open_one, peer = pair()
    assert open_one.alive() and not open_one.closed
    peer.close()
    assert not open_one.alive() and open_one.closed
    stray, peer = pair()
    peer.sendall(b"HTTP/1.1 200 OK\r\n")  # bytes nobody asked for: not an answer to the next request
    assert not stray.alive() and stray.closed
    peer.close()
