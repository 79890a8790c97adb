"""A lean OpenAI-compatible streaming server that keeps an exact schedule and logs the truth.

It is the yardstick for client accuracy (see ``docs/performance.md``): every request gets a
constant time to first event (TTFT) and a constant gap between events (ITL), each event carries
a fixed number of tokens, and the server logs when each request arrived and when each event was
really written. A client's figures are judged against that log.

Endpoints: ``POST /v1/completions`` and ``/v1/chat/completions`` (SSE with chunked transfer
encoding, or one JSON body without ``stream``), ``GET /v1/models`` and ``GET /health``.

Schedule, per request arriving at ``a``: event ``i`` is due at ``a + ttft + i * itl``, carries
``tokens_per_event`` tokens (fewer in the last one), and there are
``ceil(max_tokens / tokens_per_event)`` events. Per-request overrides go in the body:
``ref_ttft_ms``, ``ref_itl_ms``, ``ref_tokens_per_event``. The first event's text is ``" r<rid>"``
followed by ``" tok"`` per further token, so a client's saved output names the server's request
id; later events are ``" tok"`` per token. With ``stream_options.include_usage`` a usage-only chunk
follows the last event, with ``continuous_usage_stats`` every event carries cumulative usage, and
chat streams open with a role-only delta written at arrival, as vLLM's do.

Why it is lean: no web framework and no asyncio transports, but non-blocking sockets watched with
``loop.add_reader``; responses are concatenations of pre-built byte strings; one timer serves all
streams. On Linux that timer is a ``timerfd`` armed at an absolute ``CLOCK_MONOTONIC`` deadline
(through ctypes, with the timer slack set to 1 ns), so events leave within tens of microseconds
of their deadline instead of the up to 1 ms that epoll's millisecond timeout costs; elsewhere it
falls back to ``loop.call_at``.

The truth log, written to ``--log`` as JSON on SIGTERM or SIGINT, holds per request:

- ``arrival``: when the request's last bytes reached this host. On Linux this is the kernel's
  receive timestamp of the read that completed the request (``SO_TIMESTAMPNS``), so the
  server's own wake-up delay is not in it; elsewhere it is the moment that read returned;
- ``events``: each event's write time, read from the clock immediately before the ``send``
  system call that carries it (nothing but that call between clock and socket).

All times are ``time.perf_counter()`` seconds; on Linux that is ``CLOCK_MONOTONIC``, which a
client's ``perf_counter``/``monotonic`` reads in another process, so the two are comparable.
Kernel stamps come in ``CLOCK_REALTIME`` and are converted as "now minus how long ago".

    python benchmarks/reference_server.py --port 0 --ttft-ms 50 --itl-ms 10 --log truth.json

It prints ``listening <port>`` on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import heapq
import json
import os
import signal
import socket
import struct
import sys
import time
from typing import Any

clock = time.perf_counter  # CLOCK_MONOTONIC on Linux
# SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) in Linux's asm-generic socket.h; Python 3.11 lacks the name.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_CMSG_SPACE = socket.CMSG_SPACE(16)
_READ_VIEW = memoryview(bytearray(256 * 1024))  # one read buffer: the server is single-threaded

_SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n")
_END = b"data: [DONE]\n\n"


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _response(status: str, body: bytes, content_type: bytes = b"application/json", close: bool = False) -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + str(len(body)).encode()
            + (b"\r\nConnection: close" if close else b"") + b"\r\n\r\n" + body)


class Options(argparse.Namespace):
    model: str
    ttft_ms: float
    itl_ms: float
    tokens_per_event: int


class Stream:
    """One streaming response: its schedule, its pre-built bytes and its truth record."""

    __slots__ = ("conn", "rid", "chat", "deadline", "itl", "per_event", "remaining", "sent_tokens",
                 "prompt_tokens", "head", "continuous", "usage", "log", "dead")

    def __init__(self, conn: Connection, rid: int, chat: bool, arrival: float, ttft: float, itl: float,
                 per_event: int, tokens: int, prompt_tokens: int, stream_options: dict[str, Any],
                 model: str, log: dict[str, Any]) -> None:
        self.conn, self.rid, self.chat = conn, rid, chat
        self.deadline, self.itl, self.per_event = arrival + ttft, itl, per_event
        self.remaining, self.sent_tokens, self.prompt_tokens = tokens, 0, prompt_tokens
        self.continuous = bool(stream_options.get("continuous_usage_stats"))
        self.usage = bool(stream_options.get("include_usage")) or self.continuous
        kind = b"chat.completion.chunk" if chat else b"text_completion"
        self.head = (b'data: {"id":"cmpl-%d","object":"%s","created":%d,"model":%s,"choices":[{"index":0,'
                     % (rid, kind, int(time.time()), json.dumps(model).encode()))
        self.log, self.dead = log, False

    def _event(self, text: bytes, last: bool) -> bytes:
        finish = b'"length"' if last else b"null"
        if self.chat:
            body = self.head + b'"delta":{"content":"' + text + b'"},"finish_reason":' + finish + b"}]"
        else:
            body = self.head + b'"text":"' + text + b'","logprobs":null,"finish_reason":' + finish + b"}]"
        if self.continuous:
            body += b',"usage":' + _usage(self.prompt_tokens, self.sent_tokens)
        return _chunk(body + b"}\n\n")

    def role_delta(self) -> bytes:
        return _chunk(self.head + b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n')

    def emit(self) -> bool:
        """Write the next event now; True while more events remain."""
        count = min(self.per_event, self.remaining)
        first = self.sent_tokens == 0
        self.sent_tokens += count
        self.remaining -= count
        text = (b" r%d" % self.rid + b" tok" * (count - 1)) if first else b" tok" * count
        data = self._event(text, last=self.remaining == 0)
        transport = self.conn.transport
        now = clock()
        transport.write(data)
        self.log["events"].append(now)
        self.log["tokens"].append(count)
        if self.remaining:
            self.deadline += self.itl
            return True
        tail = b""
        if self.usage:
            tail = _chunk(self.head[: self.head.index(b'"choices"')] + b'"choices":[],"usage":'
                          + _usage(self.prompt_tokens, self.sent_tokens) + b"}\n\n")
        transport.write(tail + _chunk(_END) + b"0\r\n\r\n")
        self.log["end"] = clock()
        self.conn.finished()
        return False


def _usage(prompt: int, completion: int) -> bytes:
    return b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}' % (prompt, completion, prompt + completion)


class Scheduler:
    """Every stream's next deadline in one heap, served by a single timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.heap: list[tuple[float, int, Stream]] = []
        self.seq = 0
        self.armed = float("inf")
        self.handle: asyncio.TimerHandle | None = None
        self.timerfd = _TimerFd.create()
        if self.timerfd is not None:
            loop.add_reader(self.timerfd.fd, self._on_timerfd)

    def add(self, stream: Stream) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (stream.deadline, self.seq, stream))
        if stream.deadline < self.armed:
            self._arm(stream.deadline)

    def _arm(self, deadline: float) -> None:
        self.armed = deadline
        if self.timerfd is not None:
            self.timerfd.arm(deadline)
        else:
            if self.handle is not None:
                self.handle.cancel()
            # call_at wakes up to 1 ms late (epoll's timeout is in ms): aim half of that early.
            self.handle = self.loop.call_at(deadline - 0.0005 - clock() + self.loop.time(), self._run_due)

    def _on_timerfd(self) -> None:
        try:
            os.read(self.timerfd.fd, 8)  # type: ignore[union-attr]
        except BlockingIOError:
            pass
        self._run_due()

    def _run_due(self) -> None:
        heap = self.heap
        self.armed = float("inf")
        horizon = clock() + (5e-6 if self.timerfd is not None else 0.0005)
        while heap and heap[0][0] <= horizon:
            _, _, stream = heapq.heappop(heap)
            if not stream.dead and stream.emit():
                self.seq += 1
                heapq.heappush(heap, (stream.deadline, self.seq, stream))
            if heap and heap[0][0] > horizon:
                horizon = clock() + (5e-6 if self.timerfd is not None else 0.0005)
        if heap:
            self._arm(heap[0][0])


class _TimerSpec(ctypes.Structure):
    _fields_ = [("interval_s", ctypes.c_long), ("interval_ns", ctypes.c_long),
                ("value_s", ctypes.c_long), ("value_ns", ctypes.c_long)]


class _TimerFd:
    """An absolute-deadline CLOCK_MONOTONIC timerfd (Linux), driven through ctypes."""

    def __init__(self, libc: Any, fd: int) -> None:
        self.libc, self.fd = libc, fd

    @classmethod
    def create(cls) -> _TimerFd | None:
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK: 1 ns instead of the default 50 us
            fd = libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(libc, fd) if fd >= 0 else None

    def arm(self, deadline: float) -> None:
        seconds = int(deadline)
        spec = _TimerSpec(0, 0, seconds, max(int((deadline - seconds) * 1e9), 1))
        self.libc.timerfd_settime(self.fd, 1, ctypes.byref(spec), None)  # 1: TFD_TIMER_ABSTIME


class Server:
    def __init__(self, options: Options, loop: asyncio.AbstractEventLoop) -> None:
        self.o = options
        self.scheduler = Scheduler(loop)
        self.requests: list[dict[str, Any]] = []
        models = {"object": "list", "data": [{"id": options.model, "object": "model", "owned_by": "kitt-reference"}]}
        self.models = _response("200 OK", json.dumps(models).encode())

    def log_payload(self) -> dict[str, Any]:
        return {"clock": "time.perf_counter (CLOCK_MONOTONIC on Linux), seconds",
                "settings": {"ttft_ms": self.o.ttft_ms, "itl_ms": self.o.itl_ms,
                             "tokens_per_event": self.o.tokens_per_event, "model": self.o.model},
                "timer": "timerfd" if self.scheduler.timerfd is not None else "call_at",
                "requests": self.requests}


class RawSocket:
    """A non-blocking socket driven by ``loop.add_reader``: each read carries its kernel stamp.

    With ``SO_TIMESTAMPNS`` (Linux) a read is stamped with the time its last segment reached
    the host, so a request's arrival does not include this server's own wake-up delay.
    """

    __slots__ = ("loop", "sock", "fd", "conn", "unsent", "closed", "kernel")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, conn: Connection) -> None:
        self.loop, self.sock, self.fd, self.conn = loop, sock, sock.fileno(), conn
        self.unsent, self.closed = b"", False
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            self.kernel = sys.platform.startswith("linux")
        except OSError:
            self.kernel = False
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            if self.kernel:
                nbytes, ancillary, _, _ = self.sock.recvmsg_into([_READ_VIEW], _CMSG_SPACE)
            else:
                nbytes, ancillary = self.sock.recv_into(_READ_VIEW), []
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        now = clock()
        if ancillary:
            level, kind, data = ancillary[0]
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = struct.unpack_from("qq", data)
                lag = (time.time_ns() - seconds * 1_000_000_000 - nanoseconds) / 1e9
                if 0.0 <= lag < 10.0:
                    now -= lag
        if nbytes == 0:
            self._lost(None)
            return
        self.conn.data_received(_READ_VIEW[:nbytes].tobytes(), now)

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.unsent:
            self.unsent += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(data):
            self.unsent = data[sent:]
            self.loop.add_writer(self.fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        self.unsent = self.unsent[sent:]
        if not self.unsent:
            self.loop.remove_writer(self.fd)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.fd)
            if self.unsent:
                self.loop.remove_writer(self.fd)
            self.sock.close()

    def _lost(self, exc: Exception | None) -> None:
        self.close()
        self.conn.connection_lost(exc)


class Connection:
    __slots__ = ("server", "transport", "buffer", "busy", "close_after", "stream")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = b""
        self.busy = False
        self.close_after = False
        self.transport: RawSocket = None  # type: ignore[assignment]
        self.stream: Stream | None = None

    def data_received(self, data: bytes, now: float) -> None:
        self.buffer += data
        if not self.busy:
            self._next_request(now)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream is not None:
            self.stream.dead = True
            self.stream.log["aborted"] = True

    def finished(self) -> None:
        self.busy, self.stream = False, None
        if self.close_after:
            self.transport.close()
        elif self.buffer:
            self._next_request(clock())

    def _next_request(self, arrival: float) -> None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = buffer[:end].decode("latin-1").split("\r\n")
        try:
            method, path, version = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
            length = int(headers.get("content-length", "0"))
        except ValueError:
            self.transport.write(_response("400 Bad Request", b'{"error":"malformed request"}', close=True))
            self.transport.close()
            return
        if len(buffer) < end + 4 + length:
            return
        body = buffer[end + 4:end + 4 + length]
        self.buffer = buffer[end + 4 + length:]
        self.close_after = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        path = path.split("?", 1)[0]
        if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            self._generate(arrival, path.endswith("chat/completions"), body)
            return
        if method == "GET" and path == "/health":
            reply = _response("200 OK", b"ok", b"text/plain", self.close_after)
        elif method == "GET" and path == "/v1/models":
            reply = self.server.models
        else:
            reply = _response("404 Not Found", b'{"error":"not found"}', close=self.close_after)
        self.transport.write(reply)
        self.busy = True
        self.finished()

    def _generate(self, arrival: float, chat: bool, raw: bytes) -> None:
        o = self.server.o
        try:
            body = json.loads(raw)
            tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
            ttft = float(body.get("ref_ttft_ms", o.ttft_ms)) / 1e3
            itl = float(body.get("ref_itl_ms", o.itl_ms)) / 1e3
            per_event = max(int(body.get("ref_tokens_per_event", o.tokens_per_event)), 1)
            if chat:
                prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
            else:
                prompt = body.get("prompt", "")
                prompt = prompt if isinstance(prompt, str) else json.dumps(prompt)
        except (ValueError, TypeError, AttributeError):
            self.transport.write(_response("400 Bad Request", b'{"error":"bad JSON body"}', close=True))
            self.transport.close()
            return
        server = self.server
        rid = len(server.requests)
        log: dict[str, Any] = {"rid": rid, "arrival": arrival, "prompt_head": prompt[:48], "chat": chat,
                               "ttft_ms": ttft * 1e3, "itl_ms": itl * 1e3, "max_tokens": tokens,
                               "events": [], "tokens": [], "end": None}
        server.requests.append(log)
        stream = Stream(self, rid, chat, arrival, ttft, itl, per_event, max(tokens, 1), len(prompt.split()),
                        body.get("stream_options") or {}, o.model, log)
        self.busy = True
        if not body.get("stream"):
            self._whole(stream, arrival + ttft + itl * ((stream.remaining + per_event - 1) // per_event - 1))
            return
        self.stream = stream
        self.transport.write(_SSE_HEAD + (stream.role_delta() if chat else b""))
        server.scheduler.add(stream)

    def _whole(self, stream: Stream, due: float) -> None:
        def reply() -> None:
            if stream.dead:
                return
            text = " r%d" % stream.rid + " tok" * (stream.remaining - 1)
            choice = {"index": 0, "finish_reason": "length"}
            choice.update({"message": {"role": "assistant", "content": text}} if stream.chat else {"text": text})
            body = {"id": f"cmpl-{stream.rid}", "object": "chat.completion" if stream.chat else "text_completion",
                    "model": self.server.o.model, "choices": [choice],
                    "usage": json.loads(_usage(stream.prompt_tokens, stream.remaining))}
            data = _response("200 OK", json.dumps(body).encode(), close=self.close_after)
            now = clock()
            self.transport.write(data)
            stream.log["events"].append(now)
            stream.log["tokens"].append(stream.remaining)
            stream.log["end"] = now
            self.finished()

        self.stream = stream
        loop = asyncio.get_running_loop()
        loop.call_at(due - clock() + loop.time(), reply)


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--model", default="reference")
    parser.add_argument("--ttft-ms", type=float, default=50.0, help="arrival to first event")
    parser.add_argument("--itl-ms", type=float, default=10.0, help="gap between consecutive events")
    parser.add_argument("--tokens-per-event", type=int, default=1)
    parser.add_argument("--log", help="write the truth log here (JSON) on SIGTERM/SIGINT")
    parser.add_argument("--backlog", type=int, default=1024)
    return parser.parse_args(argv, namespace=Options())


async def serve(options: Options) -> None:
    loop = asyncio.get_running_loop()
    server = Server(options, loop)
    listener = socket.create_server((options.host, options.port), backlog=options.backlog, reuse_port=False)
    listener.setblocking(False)

    def accept() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. EMFILE: try again on the next wake-up
                return
            conn = Connection(server)
            conn.transport = RawSocket(loop, sock, conn)

    loop.add_reader(listener.fileno(), accept)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening {listener.getsockname()[1]}", flush=True)
    await stop.wait()
    loop.remove_reader(listener.fileno())
    listener.close()
    if options.log:
        with open(options.log, "w") as handle:
            json.dump(server.log_payload(), handle)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
