"""Progress output: a live line on a terminal, foldable groups under GitHub Actions, plain lines otherwise.

Progress goes to stderr so that stdout stays clean for whatever a command prints as its result.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Protocol, TextIO


class Progress(Protocol):
    """What a redraw reads: requests done of the total (``kitt.bench.loadgen.Progress`` is one)."""

    @property
    def done(self) -> int: ...

    @property
    def total(self) -> int: ...


class Reporter:
    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, groups: bool = False,
                 redraw_s: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.groups = groups
        self.redraw_s = redraw_s  # how often a live line is redrawn

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def warn(self, text: str) -> None:
        self.line(f"::warning::{text}" if self.groups else f"warning: {text}")

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        if self.groups:
            self.line(f"::group::{title}")
        else:
            self.line(title)
        try:
            yield
        finally:
            if self.groups:
                self.line("::endgroup::")

    @contextmanager
    def track(self, label: str, progress: Progress) -> Iterator[None]:
        """Redraw ``label: done/total`` every ``redraw_s`` (twice a second) on a terminal; silent elsewhere."""
        if not self.live:
            yield
            return
        stop = threading.Event()

        def draw() -> None:
            while not stop.wait(self.redraw_s):
                self.stream.write(f"\r  {label}: {progress.done}/{progress.total} requests\x1b[K")
                self.stream.flush()

        thread = threading.Thread(target=draw, name="kitt-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.stream.write("\r\x1b[K")
            self.stream.flush()
