"""A lean HTTP/1.1 streaming client, run by one thread: the load generator's clock.

A streaming benchmark is only as good as the path from the socket to the timestamp, and the
client's own CPU cost is the other half of its fidelity (a saturated client inflates latency).
Measured choices (``docs/performance.md``):

- **Kernel receive timestamps.** On Linux each socket asks for ``SO_TIMESTAMPNS``; a read is
  stamped with the time its last segment reached the host, not the later moment this process got
  round to reading it, so the client's scheduling delay drops out of every figure. The kernel
  stamps ``CLOCK_REALTIME``; a stamp becomes ``perf_counter`` time as "now minus how long ago it
  arrived", both clocks read together. Without kernel stamps (systems other than
  Linux), the moment the read returned is used. Every ``data:`` line that ends in a read gets
  that read's stamp; no JSON decoding sits in this path (it happens after the stream ends).
- **One thread, one poller, no asyncio in the hot path.** :class:`Pump` is a minimal event
  loop on ``epoll`` (``selectors`` elsewhere): a readiness event costs a dictionary lookup and a
  read, where asyncio adds a handle, a callback context and its own bookkeeping.
- **One preallocated read buffer.** ``recv(256 KiB)`` into a new ``bytes`` (what asyncio's
  transports do) makes CPython mmap and munmap that size on every read: three system calls and
  page faults per SSE event.
- **Decoding between reads.** When a stream ends, its JSON is decoded in slices between polls
  (:meth:`Pump.defer`): closed-loop streams end together, and decoding them all at once would
  leave sockets unread long enough for a connection's events to pile up into one read.

What it supports, and no more: one request at a time per keep-alive connection, request bodies
with ``Content-Length``; responses framed by chunked encoding, ``Content-Length`` or connection
close; interim 1xx responses; ``http`` and ``https`` (TLS through :class:`ssl.MemoryBIO`, so TLS
reads keep their kernel stamps); an HTTP proxy (absolute URIs for ``http``, a ``CONNECT`` tunnel
for ``https``; :mod:`kitt.bench.net` decides which); every resolved address tried in turn; a
deadline per request; SSE lines capped at :data:`MAX_LINE` (checked only when a line was cut by a
read, so the usual read pays nothing). Redirects are not followed: :attr:`Response.location`. HTTP error statuses and connection errors
come back in :class:`Response` as an error string; nothing raises into the pump. A response
that ended on a *reused* connection before its first byte is marked ``retryable``: a server may
close an idle keep-alive connection just as the client sends on it (llama.cpp's server often
does), and the load generator then sends the request once more on a fresh connection, as curl
does. ``Connection: close`` (and HTTP/1.0 without keep-alive) makes a connection not reusable.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl as _ssl
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from kitt.bench.net import Proxy
from kitt.bench.pump import BROKEN, READ, WRITE, Pump

clock = time.perf_counter

_MAX_HEAD = 64 * 1024
_MAX_ERROR_BODY = 4096
# The longest SSE line kept: a stream that never sends a newline fails once a held line passes this,
# instead of being buffered (and re-joined on every read) without limit.
MAX_LINE = 4 * 1024 * 1024
_READ_SIZE = 256 * 1024
# SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) in Linux's asm-generic socket.h; Python 3.11 lacks the name.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_KERNEL_STAMPS = sys.platform.startswith("linux") and hasattr(socket.socket, "recvmsg_into")
_CMSG_SPACE = socket.CMSG_SPACE(16) if _KERNEL_STAMPS else 0
_MAX_KERNEL_LAG = 10.0  # seconds; an older kernel stamp means the wall clock stepped
_TIMESPEC = struct.Struct("qq")
_CONNECTING = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, 10035}  # 10035: WSAEWOULDBLOCK


@dataclass(frozen=True)
class Endpoint:
    """Where one URL's requests go."""

    host: str
    port: int
    path: str
    tls: bool
    host_header: str

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(host, port, path, tls, shown if port == (443 if tls else 80) else f"{shown}:{port}")


@dataclass(slots=True)
class Response:
    """What one request brought back. ``lines``: (arrival stamp, ``data:`` line) pairs."""

    status: int | None = None
    sent: float = 0.0  # the clock read just before the request's first send system call
    lines: list[tuple[float, bytes]] = field(default_factory=list)
    error: str | None = None
    end: float | None = None
    body: bytes = b""  # the start of a non-200 body, for the error message
    location: str | None = None  # a redirect's target: kitt refuses redirects and says where it pointed
    # The connection had carried an earlier request and ended before any byte of this response:
    # the server closed an idle keep-alive connection as it was reused. Safe to send again.
    retryable: bool = False


# ------------------------------------------------------------------------------ connection


class Connection:
    """One keep-alive HTTP/1.1 connection: socket I/O on a :class:`Pump`, and the response parser."""

    def __init__(self, pump: Pump, sock: socket.socket, read_buffer: memoryview,
                 tls: tuple[_ssl.SSLObject, _ssl.MemoryBIO, _ssl.MemoryBIO] | None = None,
                 tunnel: bytes | None = None) -> None:
        self.pump, self.sock = pump, sock
        self.closed = False
        self.reusable = True
        self.ready = False  # connected (and TLS handshake done)
        self._view = read_buffer
        self._buffers = [read_buffer]
        self._tls, self._tls_in, self._tls_out = tls if tls is not None else (None, None, None)
        self._on_open: Callable[[Connection, str | None], None] | None = None
        self._on_done: Callable[[Response], None] | None = None
        self._deadline: list[Any] | None = None
        self._response: Response | None = None
        self._unsent = b""
        self._mask = 0
        self._fd = sock.fileno()
        self._last_read = 0.0
        self.kernel_stamps = False
        self.requests = 0  # requests written on this connection
        self._interim = False  # a 1xx response arrived for the request in flight
        self._buffer = b""
        self._state = "idle"  # idle, head, chunk-size, chunk-data, chunk-crlf, trailers, length, until-close
        self._left = 0  # bytes left in the current chunk, chunk terminator or body
        self._sse = b""  # an SSE line cut by a read or chunk boundary
        self._keep = False  # a non-200 body: keep its start for the error message
        self._tunnel = tunnel  # a CONNECT request to send to a proxy before the TLS handshake

    # -- opening ----------------------------------------------------------------------------

    def _start_connect(self, address: Any, timeout: float, on_open: Callable[[Connection, str | None], None]) -> None:
        self._on_open = on_open
        sock = self.sock
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if _KERNEL_STAMPS:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.kernel_stamps = True
            except OSError:
                pass
        self._deadline = self.pump.call_at(clock() + timeout, self._open_failed, f"TimeoutError: no connection within {timeout:g} s")
        code = sock.connect_ex(address)
        if code not in _CONNECTING:
            self._open_failed(f"ConnectionError: {os.strerror(code)} ({address[0]}:{address[1]})")
            return
        self._watch(WRITE)

    def _connected(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._open_failed(f"ConnectionError: {os.strerror(code)}")
            return
        if self._tunnel is not None:
            self._unsent, self._tunnel = self._tunnel, b""
            self._flush()
            self._watch(READ | (WRITE if self._unsent else 0))
        elif self._tls is not None:
            self._handshake()
        else:
            self._opened()

    def _tunnel_read(self) -> None:
        """The proxy's answer to CONNECT: 200 starts the TLS handshake, anything else fails the open."""
        try:
            data = self.sock.recv(_MAX_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._open_failed(f"proxy: {type(exc).__name__}: {exc}")
            return
        if not data:
            self._open_failed("the proxy closed the connection during CONNECT")
            return
        reply = self._buffer + data
        end = reply.find(b"\r\n\r\n")
        if end < 0:
            if len(reply) > _MAX_HEAD:
                self._open_failed("the proxy's answer to CONNECT is too long")
            self._buffer = reply
            return
        self._buffer, self._tunnel = b"", None
        status_line = reply.split(b"\r\n", 1)[0].decode("latin-1")
        if status_line.split(" ")[1:2] != ["200"]:
            self._open_failed(f"the proxy refused CONNECT: {status_line[:120]}")
            return
        self._handshake()

    def _handshake(self) -> None:
        assert self._tls is not None
        try:
            self._tls.do_handshake()
        except _ssl.SSLWantReadError:
            self._flush_tls()
            self._watch(READ | (WRITE if self._unsent else 0))
            return
        except (_ssl.SSLError, OSError) as exc:
            self._open_failed(f"{type(exc).__name__}: {exc}")
            return
        self._flush_tls()
        self._opened()

    def _opened(self) -> None:
        self.ready = True
        self._cancel_deadline()
        self._watch(READ | (WRITE if self._unsent else 0))
        callback, self._on_open = self._on_open, None
        if callback is not None:
            callback(self, None)

    def _open_failed(self, reason: str) -> None:
        self.close()
        callback, self._on_open = self._on_open, None
        if callback is not None:
            callback(self, reason)

    # -- requests ---------------------------------------------------------------------------

    def request(self, payload: bytes, timeout: float, on_done: Callable[[Response], None]) -> None:
        """Write one complete request; ``on_done(response)`` runs when its response has ended."""
        if self._response is not None or self.closed or not self.ready:
            raise RuntimeError("a connection carries one request at a time, and only once open")
        self._on_done = on_done
        self._response = Response()
        self.requests += 1
        self._interim = False
        self._state, self._buffer, self._sse = "head", b"", b""
        self._deadline = self.pump.call_at(clock() + timeout, self.abort,
                                           f"TimeoutError: no complete response within {timeout:g} s")
        self._response.sent = clock()  # last, so that no bookkeeping sits between the clock and the send
        self._send(payload)

    def alive(self) -> bool:
        """Whether this idle connection can carry another request: reusable, and not closed by the peer.

        One non-blocking peek, before the send time is taken: a close (or stray bytes) that has
        already arrived is seen here, so the request goes out on a fresh connection at once
        instead of failing on this one and being retried. A close still in flight is caught by
        the retry (:attr:`Response.retryable`).
        """
        if not self.reusable or self.closed:
            return False
        try:
            pending = self.sock.recv(1, socket.MSG_PEEK)  # the socket is non-blocking
        except (BlockingIOError, InterruptedError):
            return True  # nothing to read: still open
        except OSError:
            pending = b""
        if pending and self._tls is not None:
            return True  # a TLS record (a session ticket, say): the TLS layer's to read
        self.close()  # closed by the peer, or plaintext bytes nobody asked for
        return False

    def abort(self, reason: str) -> None:
        """Give up on the request in flight (a timeout or a cancellation) and drop the connection."""
        self.reusable = False
        self._settle(reason)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.closed:
            return
        self.closed = True
        self._cancel_deadline()
        if self._mask:
            self.pump.unwatch(self._fd)
            self._mask = 0
        self.sock.close()

    # -- socket I/O -------------------------------------------------------------------------

    def _watch(self, mask: int) -> None:
        if self.closed or mask == self._mask:
            return
        self.pump.watch(self._fd, mask, self._on_ready, self._mask)
        self._mask = mask

    def _on_ready(self, mask: int) -> None:
        if self.ready and mask == READ:  # the hot path: data on an open connection
            self._read()
            return
        if mask & BROKEN:
            mask |= READ | (WRITE if not self.ready or self._unsent else 0)  # the read or write reports it
        if not self.ready:
            if self._tunnel is not None and mask & (WRITE | READ) and self._mask & READ:
                if mask & WRITE:
                    self._flush()
                if mask & READ:
                    self._tunnel_read()
            elif self._tls is not None and self._on_open is not None and self._mask & READ and mask & READ:
                if not self._read():
                    return
                self._handshake()
            elif mask & WRITE and self._unsent:
                self._flush()
            elif mask & WRITE:
                self._connected()
            return
        if mask & READ:
            self._read()
        if mask & WRITE and not self.closed:
            self._flush()

    def _read(self) -> bool:
        """One read: feed the parser (or the TLS layer). False when the connection ended."""
        try:
            if self.kernel_stamps:
                nbytes, ancillary, _, _ = self.sock.recvmsg_into(self._buffers, _CMSG_SPACE)
            else:
                nbytes, ancillary = self.sock.recv_into(self._view), None
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            self._lost(exc)
            return False
        now = clock()
        if ancillary:  # the one control message asked for: SCM_TIMESTAMPNS, a struct timespec
            stamp = ancillary[0][2]
            if len(stamp) >= 16:
                lag = (time.time_ns() - _seconds_ns(stamp)) / 1e9
                if 0.0 <= lag < _MAX_KERNEL_LAG:
                    now -= lag
        if now < self._last_read:
            now = self._last_read  # never before an earlier read of this connection
        self._last_read = now
        if nbytes == 0:
            self._lost(None)
            return False
        data = self._view[:nbytes].tobytes()
        if self._tls is not None:
            return self._tls_received(data, now)
        if self._state == "chunk-size" and not self._buffer and not self._sse:
            data = self._whole_chunks(data, now)
        if data:
            self.data_received(data, now)
        return True

    def _whole_chunks(self, data: bytes, now: float) -> bytes:
        """The usual read, taken in one pass: whole chunks of whole SSE lines. Returns what is left.

        The state machine in :meth:`_consume` handles everything; this only saves its per-chunk
        overhead for the common case, and leaves the parser at a chunk boundary.
        """
        assert self._response is not None
        append = self._response.lines.append
        pos, size = 0, len(data)
        while pos < size:
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                break
            try:
                length = int(data[pos:eol], 16)
            except ValueError:
                break
            start = eol + 2
            end = start + length
            if length <= 0 or data[end - 1:end + 2] != b"\n\r\n":  # the terminator, or a cut chunk or line
                break
            for line in data[start:end - 1].split(b"\n"):
                if line[:5] == b"data:":
                    append((now, line))
            pos = end + 2
        return data[pos:] if pos else data

    def _tls_received(self, data: bytes, now: float) -> bool:
        assert self._tls is not None and self._tls_in is not None
        self._tls_in.write(data)
        if not self.ready:
            return True
        pieces = []
        while True:
            try:
                piece = self._tls.read(_READ_SIZE)
            except _ssl.SSLWantReadError:
                break
            except _ssl.SSLZeroReturnError:
                self._lost(None)
                return False
            except _ssl.SSLError as exc:
                self._lost(exc)
                return False
            if not piece:
                break
            pieces.append(piece)
        self._flush_tls()
        if pieces:
            self.data_received(b"".join(pieces), now)
        return True

    def _send(self, payload: bytes) -> None:
        if self._tls is not None:
            self._tls.write(payload)
            self._flush_tls()
            return
        self._unsent += payload
        self._flush()

    def _flush_tls(self) -> None:
        assert self._tls_out is not None
        pending = self._tls_out.read()
        if pending:
            self._unsent += pending
            if self._mask:  # connected: send now; during connect the socket is not writable yet
                self._flush()

    def _flush(self) -> None:
        if not self._unsent:
            return
        try:
            sent = self.sock.send(self._unsent)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        self._unsent = self._unsent[sent:]
        self._watch(READ | (WRITE if self._unsent else 0))

    def _lost(self, exc: BaseException | None) -> None:
        self.close()
        if self._on_open is not None:
            self._open_failed(f"{type(exc).__name__}: {exc}" if exc else "the server closed the connection")
            return
        if self._response is None:
            return
        if self._state == "until-close":
            self._finish()
            return
        reason = f"{type(exc).__name__}: {exc}" if exc else "the server closed the connection"
        where = "before a response" if self._state == "head" else "mid-response"
        if self._state == "head" and not self._buffer and not self._interim and self.requests > 1:
            self._response.retryable = True  # a reused connection, not one response byte: see Response
        self._settle(f"connection closed {where} ({reason})")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            Pump.cancel(self._deadline)
            self._deadline = None

    # -- parsing ----------------------------------------------------------------------------

    def data_received(self, data: bytes, now: float) -> None:
        """Feed one read's (plaintext) bytes, stamped ``now``."""
        if self._response is None:
            self.reusable = False  # bytes nobody asked for: do not trust this connection again
            return
        if self._buffer:
            data, self._buffer = self._buffer + data, b""
        try:
            self._consume(data, now)
        except ValueError as exc:
            self.reusable = False
            self._settle(f"malformed HTTP response: {exc}")
            self.close()

    def _consume(self, data: bytes, now: float) -> None:
        """Run the framing state machine over one read; body bytes reach ``_body`` once per read."""
        pos, size = 0, len(data)
        body: list[bytes] = []
        while pos < size and self._response is not None:
            state = self._state
            if state == "chunk-size":
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    self._hold(data[pos:])
                    break
                self._left = _chunk_size(data[pos:eol])
                pos = eol + 2
                end = pos + self._left
                if not self._left:
                    self._state = "trailers"
                elif data[end:end + 2] == b"\r\n":  # the whole chunk is in this read: the usual case
                    body.append(data[pos:end])
                    pos = end + 2
                else:
                    self._state = "chunk-data"
            elif state == "chunk-data" or state == "length":
                take = min(self._left, size - pos)
                body.append(data[pos:pos + take])
                pos += take
                self._left -= take
                if self._left:
                    continue
                if state == "length":
                    self._body(body, now)
                    body = []
                    self._finish()
                else:
                    self._state, self._left = "chunk-crlf", 2
            elif state == "chunk-crlf":
                take = min(self._left, size - pos)
                pos += take
                self._left -= take
                if not self._left:
                    self._state = "chunk-size"
            elif state == "head" or state == "trailers":
                eol = data.find(b"\r\n\r\n" if state == "head" else b"\r\n", pos)
                if eol < 0:
                    self._hold(data[pos:])
                    break
                line = data[pos:eol]
                pos = eol + (4 if state == "head" else 2)
                if state == "head":
                    self._head(line)
                elif not line:  # the blank line after the trailers ends the response
                    self._body(body, now)
                    body = []
                    self._finish()
            elif state == "until-close":
                body.append(data[pos:])
                pos = size
            else:
                break
        if body:
            self._body(body, now)
        if pos < size and self._response is None:
            self.reusable = False  # bytes after the end of the response

    def _hold(self, rest: bytes) -> None:
        if len(rest) > _MAX_HEAD:
            raise ValueError("a header block or chunk-size line is too long")
        self._buffer = rest

    def _head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/") or not rest[:3].isdigit():
            raise ValueError(f"bad status line {lines[0][:80]!r}")
        status = int(rest[:3])
        if 100 <= status < 200:  # an interim response (100 Continue): the real one follows
            self._interim = True
            return
        response = self._response
        assert response is not None
        response.status = status
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        if "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection):
            self.reusable = False
        self._keep = status != 200
        if 300 <= status < 400:
            response.location = headers.get("location", "")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = "chunk-size"
        elif "content-length" in headers:
            self._left = int(headers["content-length"])
            self._state = "length"
            if not self._left:
                self._finish()
        elif status in (204, 304):
            self._finish()
        else:
            self._state = "until-close"
            self.reusable = False

    def _body(self, pieces: list[bytes], now: float) -> None:
        """Keep the ``data:`` lines that end in this read, each stamped with the read's time."""
        response = self._response
        if response is None or not pieces:
            return
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self._keep:
            room = _MAX_ERROR_BODY - len(response.body)
            if room > 0:
                response.body += data[:room]
            return
        if self._sse:  # a line cut by the last read (never the usual case): join, within the cap
            if len(self._sse) > MAX_LINE:
                raise ValueError(f"an SSE line longer than {MAX_LINE // 2**20} MiB without a newline")
            data = self._sse + data
        lines = data.split(b"\n")
        self._sse = lines.pop()
        append = response.lines.append
        for line in lines:
            if line[:5] == b"data:":
                append((now, line))

    def _finish(self) -> None:
        response = self._response
        if response is not None and self._sse[:5] == b"data:":  # a last line without its newline
            response.lines.append((clock(), self._sse))
        self._settle(None)

    def _settle(self, error: str | None) -> None:
        response, callback = self._response, self._on_done
        if response is None:
            return
        response.error = error
        response.end = clock()
        self._response, self._on_done = None, None
        self._state, self._sse, self._buffer = "idle", b"", b""
        self._cancel_deadline()
        if callback is not None:
            callback(response)


def _seconds_ns(timespec: bytes) -> int:
    seconds, nanoseconds = _TIMESPEC.unpack_from(timespec)
    return seconds * 1_000_000_000 + nanoseconds


def _chunk_size(line: bytes) -> int:
    try:
        size = int(line, 16)
    except ValueError:
        size = int(line.split(b";", 1)[0].strip(), 16)  # a chunk extension; raises when malformed
    if size < 0:
        raise ValueError(f"negative chunk size {line[:20]!r}")
    return size


# ---------------------------------------------------------------------------------- client


class Client:
    """Builds request bytes for one endpoint and opens connections to it on a :class:`Pump`.

    A client and its connections share one read buffer: they belong to one pump (one thread).
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None, *, connect_timeout: float = 30.0,
                 ssl_context: _ssl.SSLContext | None = None, proxy: Proxy | None = None) -> None:
        from kitt import __version__

        self.endpoint = Endpoint.from_url(url)
        self.connect_timeout = connect_timeout
        self.ssl = (ssl_context or _ssl.create_default_context()) if self.endpoint.tls else None
        self.proxy = proxy
        self._tunnel: bytes | None = None
        target = self.endpoint.path
        proxy_auth = [f"Proxy-Authorization: {proxy.authorization}"] if proxy and proxy.authorization else []
        if proxy is not None and self.endpoint.tls:  # a CONNECT tunnel, then TLS end to end
            host = self.endpoint.host
            authority = f"[{host}]:{self.endpoint.port}" if ":" in host else f"{host}:{self.endpoint.port}"
            self._tunnel = "\r\n".join([f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", *proxy_auth,
                                         "", ""]).encode("latin-1")
        elif proxy is not None:  # a plain proxy: the absolute URI, and the proxy's credentials
            target = f"http://{self.endpoint.host_header}{self.endpoint.path}"
        lines = [f"POST {target} HTTP/1.1", f"Host: {self.endpoint.host_header}",
                 *(proxy_auth if self._tunnel is None else []),
                 f"User-Agent: kitt/{__version__}", "Accept: text/event-stream, application/json",
                 "Content-Type: application/json"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()
                  if name.lower() not in ("host", "content-length", "transfer-encoding", "connection")]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._read_buffer = memoryview(bytearray(_READ_SIZE))
        self._addresses: list[tuple[Any, ...]] | None = None

    def request_bytes(self, body: bytes) -> bytes:
        return b"%s%d\r\n\r\n%s" % (self._head, len(body), body)

    def resolve(self) -> None:
        """Look the host up once (blocking); call it before the pump runs, off the timing path."""
        host, port = (self.proxy.host, self.proxy.port) if self.proxy else (self.endpoint.host, self.endpoint.port)
        self._addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

    def open(self, pump: Pump, on_open: Callable[[Connection, str | None], None]) -> Connection:
        """Start connecting; ``on_open(connection, error)`` runs on the pump when done or failed."""
        if self._addresses is None:
            self.resolve()
        assert self._addresses
        return self._open_at(pump, 0, on_open, [])

    def _open_at(self, pump: Pump, index: int, on_open: Callable[[Connection, str | None], None],
                 failures: list[str]) -> Connection:
        """Connect to the ``index``-th resolved address; on failure try the next (IPv6 and IPv4, in order)."""
        assert self._addresses is not None
        family, kind, proto, _, address = self._addresses[index]
        sock = socket.socket(family, kind, proto)
        tls = None
        if self.ssl is not None:
            incoming, outgoing = _ssl.MemoryBIO(), _ssl.MemoryBIO()
            tls = (self.ssl.wrap_bio(incoming, outgoing, server_hostname=self.endpoint.host), incoming, outgoing)
        connection = Connection(pump, sock, self._read_buffer, tls, self._tunnel)

        def opened(conn: Connection, error: str | None) -> None:
            if error is not None and conn.ready is False and index + 1 < len(self._addresses or ()) \
                    and not error.startswith(("SSL", "the proxy")):
                failures.append(error)
                self._open_at(pump, index + 1, on_open, failures)
                return
            on_open(conn, error if error is None or not failures else "; ".join([*failures, error]))

        connection._start_connect(address, self.connect_timeout, opened)
        return connection

