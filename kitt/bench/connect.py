"""The set-up half of a :class:`kitt.bench.http.Connection`: connect, the proxy tunnel, the TLS handshake.

A connection asks for kernel receive timestamps and ``TCP_NODELAY``, connects without blocking
under a deadline, sends a proxy's ``CONNECT`` and reads its answer when the URL is ``https``
through a proxy, then runs the TLS handshake over :class:`ssl.MemoryBIO` (so that TLS reads
keep their kernel stamps); ``on_open(connection, error)`` reports the outcome once. These run
once per connection, never per read. :class:`ConnectionSetup` is a mixin that only
``Connection`` uses: it works on the connection's own state (``sock``, ``_tls``, ``_tunnel``,
``_unsent``...) and calls its ``_watch``, ``_flush``, ``_flush_tls``, ``close`` and
``_cancel_deadline``.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl as _ssl
import sys
from typing import TYPE_CHECKING, Any, Callable

from kitt.bench.framing import _MAX_HEAD, clock
from kitt.bench.pump import READ, WRITE

if TYPE_CHECKING:
    from kitt.bench.http import Connection

# SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) in Linux's asm-generic socket.h; Python 3.11 lacks the name.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_KERNEL_STAMPS = sys.platform.startswith("linux") and hasattr(socket.socket, "recvmsg_into")
_CONNECTING = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, 10035}  # 10035: WSAEWOULDBLOCK


class ConnectionSetup:
    """Opening a :class:`kitt.bench.http.Connection` (its only user), up to ``on_open``."""

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
