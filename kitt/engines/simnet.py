"""Low-level pieces of the sim server: a stamped non-blocking socket and a precise timer.

Both exist for timing fidelity. A read is stamped with the kernel's receive time
(``SO_TIMESTAMPNS``), so a request's arrival does not include the server's own wake-up delay; a
``timerfd`` armed at an absolute CLOCK_MONOTONIC deadline fires within microseconds, where the
event loop's own timers can wake up to a millisecond late. Elsewhere than Linux both fall back
to what the event loop offers.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Protocol

from kitt.stamps import CMSG_SPACE, SO_TIMESTAMPNS, arrival, clock

_READ_VIEW = memoryview(bytearray(256 * 1024))  # one read buffer: the server is single-threaded


class Receiver(Protocol):
    def data_received(self, data: bytes, now: float) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class RawSocket:
    """A non-blocking socket driven by ``loop.add_reader``; each read carries its arrival time."""

    __slots__ = ("loop", "sock", "fd", "conn", "unsent", "closed", "kernel")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, conn: Receiver) -> None:
        self.loop, self.sock, self.fd, self.conn = loop, sock, sock.fileno(), conn
        self.unsent, self.closed = b"", False
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.kernel = sys.platform.startswith("linux")
        except OSError:
            self.kernel = False
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            if self.kernel:
                nbytes, ancillary, _, _ = self.sock.recvmsg_into([_READ_VIEW], CMSG_SPACE)
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
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                now = arrival(now, data)
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
