"""Kernel receive timestamps, shared by the load generator's client and the sim server.

On Linux a socket with ``SO_TIMESTAMPNS`` set hands each read a control message holding a
``struct timespec``: when the read's last segment reached the host, in ``CLOCK_REALTIME``. Both
sides time everything with :data:`clock` (``CLOCK_MONOTONIC`` on Linux, comparable across
processes), so a stamp becomes ``clock`` time as "now minus how long ago it arrived", both clocks
read together (:func:`arrival`). Without kernel stamps the moment the read returned is used.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

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
