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
for ``https``; :mod:`kitt.net` decides which); every resolved address tried in turn; a
deadline per request; SSE lines capped at :data:`MAX_LINE` (checked only when a line was cut by a
read, so the usual read pays nothing). Redirects are not followed: :attr:`Response.location`. HTTP
error statuses and connection errors come back in :class:`Response` as an error string; nothing
raises into the pump. A response
that ended on a *reused* connection before its first byte is marked ``retryable``: a server may
close an idle keep-alive connection just as the client sends on it (llama.cpp's server often
does), and the load generator then sends the request once more on a fresh connection, as curl
does. ``Connection: close`` (and HTTP/1.0 without keep-alive) makes a connection not reusable.

This module holds :class:`Connection`: its opening (a non-blocking connect under a deadline with
kernel stamps and ``TCP_NODELAY`` asked for, a proxy's ``CONNECT`` and its answer, the TLS
handshake over :class:`ssl.MemoryBIO`; ``on_open(connection, error)`` reports the outcome once),
its socket I/O (the reads with their stamps, TLS records, writes) and the request in flight. The
response parser and :class:`Response` are in :mod:`kitt.bench.framing`, a mixin the connection
inherits so that a read costs no extra call or lookup; :class:`kitt.bench.client.Client` opens
connections.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl as _ssl
from typing import Any, Callable

from kitt.bench.framing import _MAX_HEAD, Response, ResponseParsing
from kitt.bench.pump import BROKEN, READ, WRITE, Pump
from kitt.stamps import CMSG_SPACE, KERNEL_STAMPS, SO_TIMESTAMPNS, arrival, clock

_READ_SIZE = 256 * 1024
_CONNECTING = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, 10035}  # 10035: WSAEWOULDBLOCK


# ------------------------------------------------------------------------------ connection


class Connection(ResponseParsing):
    """One keep-alive HTTP/1.1 connection: socket I/O on a :class:`Pump`, and the response parser."""

    def __init__(
        self,
        pump: Pump,
        sock: socket.socket,
        read_buffer: memoryview,
        tls: tuple[_ssl.SSLObject, _ssl.MemoryBIO, _ssl.MemoryBIO] | None = None,
        tunnel: bytes | None = None,
    ) -> None:
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
        self._deadline = self.pump.call_at(
            clock() + timeout, self.abort, f"TimeoutError: no complete response within {timeout:g} s"
        )
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

    # -- opening: connect, the proxy tunnel, the TLS handshake (once per connection, never per read) --

    def _start_connect(self, address: Any, timeout: float, on_open: Callable[[Connection, str | None], None]) -> None:
        self._on_open = on_open
        sock = self.sock
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if KERNEL_STAMPS:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.kernel_stamps = True
            except OSError:
                pass
        self._deadline = self.pump.call_at(
            clock() + timeout, self._open_failed, f"TimeoutError: no connection within {timeout:g} s"
        )
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
                nbytes, ancillary, _, _ = self.sock.recvmsg_into(self._buffers, CMSG_SPACE)
            else:
                nbytes, ancillary = self.sock.recv_into(self._view), None
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            self._lost(exc)
            return False
        now = clock()
        if ancillary:  # the one control message asked for: SCM_TIMESTAMPNS, a struct timespec
            now = arrival(now, ancillary[0][2])
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
            if length <= 0 or data[end - 1 : end + 2] != b"\n\r\n":  # the terminator, or a cut chunk or line
                break
            for line in data[start : end - 1].split(b"\n"):
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
