"""Where a streaming client's CPU goes: the pieces behind kitt's client design, measured one by one.

Against a fresh reference server (TTFT 50 ms, ITL 10 ms, one token per event, 64 tokens), each
variant below streams the same closed-loop workload and reports its CPU (``getrusage`` of this
process, all threads) per SSE event:

- ``asyncio Protocol``: ``data_received`` with the transport's own ``recv(256 KiB)``, as aiohttp's
  client does; nothing parsed;
- ``asyncio BufferedProtocol``: the same with one preallocated buffer;
- ``selector recv_into``: a bare ``selectors`` loop, no asyncio, preallocated buffer;
- ``selector recvmsg_into + SO_TIMESTAMPNS``: the same reading kernel receive timestamps;
- ``kitt run_level``: the whole load generator (framing, SSE lines, records, JSON at the end).

Then the cost of decoding an event's JSON, one ``json.loads`` per event against one per stream.

    python benchmarks/client_costs.py --streams 1,64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import selectors
import signal
import socket
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Callable

from kitt.bench.loadgen import Target, parse_events, run_level
from kitt.bench.records import RequestRecord
from kitt.workload.synthetic import build_requests
from kitt.config import Level

HERE = Path(__file__).resolve().parent
OUTPUT = 64
BODY = json.dumps({"model": "reference", "prompt": "x", "max_tokens": OUTPUT, "stream": True}).encode()
REQUEST = (
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(BODY), BODY)
)
END = b"0\r\n\r\n"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def asyncio_variant(port: int, streams: int, requests: int, buffered: bool) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        state = {"sent": 0, "done": 0}
        finished = loop.create_future()

        def ended(transport: asyncio.Transport) -> None:
            state["done"] += 1
            if state["sent"] < requests:
                state["sent"] += 1
                transport.write(REQUEST)
            elif state["done"] == requests:
                finished.set_result(None)

        class Plain(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                if data.endswith(END):
                    ended(self.transport)  # type: ignore[arg-type]

        class Buffered(asyncio.BufferedProtocol):
            view = memoryview(bytearray(256 * 1024))

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def get_buffer(self, sizehint: int) -> memoryview:
                return self.view

            def buffer_updated(self, nbytes: int) -> None:
                if self.view[:nbytes].tobytes().endswith(END):
                    ended(self.transport)  # type: ignore[arg-type]

        transports = [
            (await loop.create_connection(Buffered if buffered else Plain, "127.0.0.1", port))[0]
            for _ in range(streams)
        ]
        for transport in transports:
            state["sent"] += 1
            transport.write(REQUEST)
        await finished
        for transport in transports:
            transport.close()

    asyncio.run(main())


def selector_variant(port: int, streams: int, requests: int, stamps: bool) -> None:
    selector = selectors.DefaultSelector()
    view = memoryview(bytearray(256 * 1024))
    sent = done = 0
    sockets = []
    for _ in range(streams):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        if stamps:
            sock.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
        selector.register(sock, selectors.EVENT_READ, sock)
        sockets.append(sock)
    for sock in sockets:
        sent += 1
        sock.send(REQUEST)
    while done < requests:
        for key, _ in selector.select():
            sock = key.data
            if stamps:
                nbytes = sock.recvmsg_into([view], 64)[0]
            else:
                nbytes = sock.recv_into(view)
            if view[:nbytes].tobytes().endswith(END):
                done += 1
                if sent < requests:
                    sent += 1
                    sock.send(REQUEST)
    for sock in sockets:
        sock.close()
    selector.close()


def kitt_variant(port: int, streams: int, requests: int) -> None:
    specs = build_requests(requests, 1, OUTPUT, seed=0, salt="costs")
    asyncio.run(
        run_level(
            Target(base_url=f"http://127.0.0.1:{port}", model="reference"),
            specs,
            Level("concurrency", streams),
            test_name="costs",
            run_number=1,
            sink=[],
        )
    )


def json_costs() -> tuple[float, float, float]:
    """Microseconds per event: one json.loads per event, one per stream, kitt's whole parse_events."""
    event = (
        b'data: {"id":"cmpl-7","object":"text_completion","created":1795759833,"model":"reference",'
        b'"choices":[{"index":0,"text":" tok","logprobs":null,"finish_reason":null}]}'
    )
    lines = [(0.0, event)] * OUTPUT
    payloads = [line[5:].strip() for _, line in lines]

    def kitt_parse() -> None:
        parse_events(lines, RequestRecord(index=0, test_name="x", run_number=1, scheduled=0.0))

    def best(call: Callable[[], object]) -> float:
        return min(timeit.repeat(call, number=200, repeat=5)) / 200 / OUTPUT * 1e6

    return (
        best(lambda: [json.loads(p) for p in payloads]),
        best(lambda: json.loads((b"[" + b",".join(payloads) + b"]").decode())),
        best(kitt_parse),
    )


def print_json_costs() -> None:
    per_line, batched, whole = json_costs()
    print(
        f"JSON, per event: one json.loads per event {per_line:.2f} us; one per stream {batched:.2f} us; "
        f"kitt's parse_events (that, plus finding token events and usage) {whole:.2f} us"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,64")
    parser.add_argument("--seconds", type=float, default=6.0, help="about how long each variant streams")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)
    if args.json_only:
        print_json_costs()
        return
    variants: list[tuple[str, Callable[[int, int, int], None]]] = [
        ("asyncio Protocol (recv 256 KiB per read)", lambda p, s, n: asyncio_variant(p, s, n, buffered=False)),
        ("asyncio BufferedProtocol", lambda p, s, n: asyncio_variant(p, s, n, buffered=True)),
        ("selector loop, recv_into", lambda p, s, n: selector_variant(p, s, n, stamps=False)),
        ("selector loop, recvmsg_into + SO_TIMESTAMPNS", lambda p, s, n: selector_variant(p, s, n, stamps=True)),
        ("kitt run_level (everything)", kitt_variant),
    ]
    print("| variant | " + " | ".join(f"{s} stream(s): CPU us per event" for s in args.streams.split(",")) + " |")
    print("|---|" + "---|" * len(args.streams.split(",")))
    rows: dict[str, list[str]] = {name: [] for name, _ in variants}
    for streams in map(int, args.streams.split(",")):
        requests = max(streams, int(args.seconds / 0.7) * streams)
        for name, variant in variants:
            server = subprocess.Popen(
                [sys.executable, str(HERE / "reference_server.py"), "--port", "0"], stdout=subprocess.PIPE, text=True
            )
            try:
                port = int((server.stdout.readline() if server.stdout else "0 0").split()[1])
                before = cpu()
                variant(port, streams, requests)
                rows[name].append(f"{(cpu() - before) / (requests * OUTPUT) * 1e6:.1f}")
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print_json_costs()


if __name__ == "__main__":
    main()
