"""Low-level pieces of the sim server: a stamped non-blocking socket and a precise timer.

Both exist for timing fidelity. A read is stamped with the kernel's receive time
(``SO_TIMESTAMPNS``), so a request's arrival does not include the server's own wake-up delay; a
``timerfd`` armed at an absolute CLOCK_MONOTONIC deadline fires within microseconds, where the
event loop's own timers can wake up to a millisecond late. Elsewhere than Linux both fall back
to what the event loop offers.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import sys
import time
from typing import Any, Protocol

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


class _TimerSpec(ctypes.Structure):
    _fields_ = [
        ("interval_s", ctypes.c_long),
        ("interval_ns", ctypes.c_long),
        ("value_s", ctypes.c_long),
        ("value_ns", ctypes.c_long),
    ]


class TimerFd:
    """An absolute-deadline CLOCK_MONOTONIC timerfd (Linux), driven through ctypes."""

    def __init__(self, libc: Any, fd: int) -> None:
        self.libc, self.fd = libc, fd

    @classmethod
    def create(cls) -> "TimerFd | None":
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

    def drain(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass
