"""The load generator's event loop: readiness callbacks, timers and deferred work, for one thread.

asyncio costs a handle, a callback context and its own bookkeeping per readiness event; this
loop costs a dictionary lookup. On Linux it polls ``select.epoll`` directly (a handler per file
descriptor); elsewhere it goes through :mod:`selectors`. ``docs/performance.md`` has the
measurements behind it.
"""

from __future__ import annotations

import heapq
import math
import select
import selectors
import socket
import time
from collections import deque
from typing import Any, Callable

from kitt.stamps import TimerFd

clock = time.perf_counter

SLICE = 0.0002  # seconds of deferred work between two polls
# How early the pump wakes for an exact timer (call_exactly_at), then polls without blocking
# until it is due. epoll waits whole milliseconds, rounded up (a plain timer fires up to 1 ms
# late), so without a timerfd that is a millisecond of polling; a timerfd wakes the pump within
# microseconds, so it is armed SPIN before the timer and polls only that long.
TIMER_SLACK = 0.001
SPIN = 0.0002
# Readiness masks are epoll's (EPOLLIN, EPOLLOUT, EPOLLERR | EPOLLHUP); the selectors fallback maps to them.
READ, WRITE, BROKEN = 0x001, 0x004, 0x008 | 0x010


class Pump:
    """A minimal event loop for one thread: readiness callbacks, timers and a wake-up socket.

    On Linux it polls ``select.epoll`` directly (a handler per file descriptor); elsewhere it
    goes through :mod:`selectors`. Everything but :meth:`stop` must be called from the thread
    that runs :meth:`run`, or before it starts.
    """

    def __init__(self, use_epoll: bool = True, use_timerfd: bool = True) -> None:
        self.handlers: dict[int, Callable[[int], None]] = {}
        self._epoll = select.epoll() if use_epoll and hasattr(select, "epoll") else None
        self._selector = None if self._epoll is not None else selectors.DefaultSelector()
        self.timers: list[tuple[float, int, list[Any]]] = []  # may fire up to a millisecond late
        self.exact: list[tuple[float, int, list[Any]]] = []  # polled for from timer_slack before they are due
        self._timerfd = TimerFd.create() if self._epoll is not None and use_timerfd else None
        self.timer_slack = TIMER_SLACK if self._timerfd is None else SPIN
        self._armed = 0.0  # the deadline the timerfd is armed for
        self.soon: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self.later: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._seq = 0
        self._stopped = False
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        self.watch(self._waker_r.fileno(), READ, self._drain_waker, None)
        if self._timerfd is not None:
            self.watch(self._timerfd.fd, READ, self._drain_timerfd, None)

    # -- registrations, timers, stopping ----------------------------------------------------

    def watch(self, fd: int, mask: int, handler: Callable[[int], None], previous: int | None) -> None:
        """Call ``handler(mask)`` when ``fd`` is ready for ``mask`` (``previous``: its old mask)."""
        self.handlers[fd] = handler
        if self._epoll is not None:
            (self._epoll.modify if previous else self._epoll.register)(fd, mask)
        else:
            assert self._selector is not None
            events = (selectors.EVENT_READ if mask & READ else 0) | (selectors.EVENT_WRITE if mask & WRITE else 0)
            (self._selector.modify if previous else self._selector.register)(fd, events, handler)

    def unwatch(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is None:
            return
        try:
            if self._epoll is not None:
                self._epoll.unregister(fd)
            else:
                assert self._selector is not None
                self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> list[Any]:
        """Run ``callback(*args)`` at ``when`` (perf_counter s), or up to a millisecond later;
        cancel with :meth:`cancel`."""
        entry = [callback, args]
        self._seq += 1
        heapq.heappush(self.timers, (when, self._seq, entry))
        return entry

    def call_exactly_at(self, when: float, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` at ``when``, on time: the loop wakes ``timer_slack`` early and
        polls without blocking until it is due. For what is sent on a schedule (an arrival, a
        turn after its think time); the polling costs CPU, so nothing else uses it."""
        self._seq += 1
        heapq.heappush(self.exact, (when, self._seq, [callback, args]))

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        entry[0] = None

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the next turn of the loop (never re-entrantly)."""
        self.soon.append((callback, args))

    def defer(self, callback: Callable[..., Any], *args: Any, first: bool = False) -> None:
        """Run ``callback(*args)`` between polls, a slice at a time: work that must not delay reads.

        When many streams end together (closed-loop streams run in step), decoding them all at
        once would leave every socket unread for tens of milliseconds; events would pile up on a
        connection and share one read's stamp. Deferred work runs for at most ``SLICE`` seconds
        between two polls, in order; ``first`` puts it ahead of the rest (work that something
        due waits on: a session's next turn is built from the answer this decodes).
        """
        if first:
            self.later.appendleft((callback, args))
        else:
            self.later.append((callback, args))

    def stop(self) -> None:
        """Make :meth:`run` return; safe from any thread."""
        self._stopped = True
        try:
            self._waker_w.send(b"x")
        except OSError:
            pass

    # -- the loop ---------------------------------------------------------------------------

    def _poll(self, timeout: float | None) -> list[tuple[int, int]]:
        if self._epoll is not None:
            return self._epoll.poll(-1 if timeout is None else timeout, 1024)
        assert self._selector is not None
        return [
            (key.fd, (READ if events & selectors.EVENT_READ else 0) | (WRITE if events & selectors.EVENT_WRITE else 0))
            for key, events in self._selector.select(timeout)
        ]

    def run(self) -> None:
        """Serve callbacks until :meth:`stop`; then close every connection (also on an error)."""
        try:
            self._loop()
        finally:
            self.close()

    def _loop(self) -> None:
        timers, exact, soon, later, handlers, poll = (
            self.timers,
            self.exact,
            self.soon,
            self.later,
            self.handlers,
            self._poll,
        )
        while not self._stopped:
            timeout = None
            if soon or later:
                timeout = 0.0
            elif timers or exact:
                # An exact timer: wake timer_slack early (the timerfd, or epoll's rounded-up
                # timeout) and poll without blocking until it is due.
                now = clock()
                timeout = timers[0][0] - now if timers else math.inf
                if exact:
                    wake = exact[0][0] - self.timer_slack
                    if self._timerfd is None or wake <= now:
                        timeout = min(timeout, wake - now)
                    elif wake != self._armed:
                        self._timerfd.arm(wake)
                        self._armed = wake
                timeout = None if timeout == math.inf else max(timeout, 0.0)
            for fd, mask in poll(timeout):
                handler = handlers.get(fd)
                if handler is not None:
                    handler(mask)
                # An exact timer falls due while many reads are handled: it goes out between them.
                while exact and exact[0][0] <= clock():
                    _, _, entry = heapq.heappop(exact)
                    entry[0](*entry[1])
            while exact and exact[0][0] <= clock():
                _, _, entry = heapq.heappop(exact)
                entry[0](*entry[1])
            while timers and timers[0][0] <= clock():
                _, _, entry = heapq.heappop(timers)
                if entry[0] is not None:
                    entry[0](*entry[1])
            for _ in range(len(soon)):
                callback, args = soon.popleft()
                callback(*args)
            if later:
                until = clock() + SLICE
                while later and clock() < until:
                    callback, args = later.popleft()
                    callback(*args)

    def _drain_timerfd(self, mask: int) -> None:
        assert self._timerfd is not None
        self._timerfd.drain()
        self._armed = 0.0  # it fired: a later timer for the same moment must arm it again

    def _drain_waker(self, mask: int) -> None:
        try:
            self._waker_r.recv(4096)
        except OSError:
            pass

    def close(self) -> None:
        for handler in list(self.handlers.values()):
            owner = getattr(handler, "__self__", None)
            if owner is not None and owner is not self:
                owner.close()  # a connection: it unwatches itself
        self.unwatch(self._waker_r.fileno())
        if self._timerfd is not None:
            self.unwatch(self._timerfd.fd)
            self._timerfd.close()
        (self._epoll or self._selector).close()  # type: ignore[union-attr]
        self._waker_r.close()
        self._waker_w.close()
