"""Kernel receive timestamps and a precise timer, shared by the load generator's client and the sim server.

On Linux a socket with ``SO_TIMESTAMPNS`` set hands each read a control message holding a
``struct timespec``: when the read's last segment reached the host, in ``CLOCK_REALTIME``. Both
sides time everything with :data:`clock` (``CLOCK_MONOTONIC`` on Linux, comparable across
processes), so a stamp becomes ``clock`` time as "now minus how long ago it arrived", both clocks
read together (:func:`arrival`). Without kernel stamps the moment the read returned is used.

A ``timerfd`` (:class:`TimerFd`) armed at an absolute CLOCK_MONOTONIC deadline fires within
microseconds, where an event loop's own timers (epoll's timeout is whole milliseconds) can wake
up to a millisecond late. Elsewhere than Linux there is none, and callers fall back.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys
import time
from typing import Any

clock = time.perf_counter  # CLOCK_MONOTONIC on Linux: comparable with a client in another process

# SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) in Linux's asm-generic socket.h; Python 3.11 lacks the name.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
KERNEL_STAMPS = sys.platform.startswith("linux") and hasattr(socket.socket, "recvmsg_into")
# Room for the one control message asked for (a struct timespec), for recvmsg_into.
CMSG_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
MAX_KERNEL_LAG = 10.0  # seconds; an older kernel stamp means the wall clock stepped
_TIMESPEC = struct.Struct("qq")


def arrival(now: float, timespec: bytes) -> float:
    """``now`` (a :data:`clock` reading taken just after the read) moved back to the kernel's stamp,
    or ``now`` itself when the stamp is short, in the future or implausibly old."""
    if len(timespec) < 16:
        return now
    seconds, nanoseconds = _TIMESPEC.unpack_from(timespec)
    lag = (time.time_ns() - seconds * 1_000_000_000 - nanoseconds) / 1e9
    return now - lag if 0.0 <= lag < MAX_KERNEL_LAG else now


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
    def create(cls, tight_slack: bool = False) -> "TimerFd | None":
        """A timerfd, or None where there is none. ``tight_slack`` also sets the calling thread's
        timer slack (and its future threads') to 1 ns: the sim server's whole process wants it;
        a client's pump does not, since a timerfd's expiry has no slack of its own."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if tight_slack:
                libc.prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK: 1 ns instead of the default 50 us
            fd = libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(libc, fd) if fd >= 0 else None

    def arm(self, deadline: float) -> None:
        seconds = int(deadline)
        spec = _TimerSpec(0, 0, seconds, max(int((deadline - seconds) * 1e9), 1))
        self.libc.timerfd_settime(self.fd, 1, ctypes.byref(spec), None)  # 1: TFD_TIMER_ABSTIME

    def close(self) -> None:
        os.close(self.fd)

    def drain(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass
