"""Progress output: a live line on a terminal, foldable groups under GitHub Actions, plain lines otherwise.

Progress goes to stderr so that stdout stays clean for whatever a command prints as its result.
Every line carries user input (model, test names, URLs), so each passes :func:`kitt.redact.safe_line`:
no URL password, and no line the Actions runner would take for a workflow command; the only
commands written are the reporter's own ``::group::`` and ``::warning::``, with their text escaped.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Protocol, TextIO

from kitt.redact import one_line, safe_line


class Progress(Protocol):
    """What a redraw reads: requests done of the total (``kitt.bench.loadgen.Progress`` is one)."""

    @property
    def done(self) -> int: ...

    @property
    def total(self) -> int: ...


class Reporter:
    def __init__(
        self, stream: TextIO | None = None, *, live: bool | None = None, groups: bool = False, redraw_s: float = 0.5
    ) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.groups = groups
        self.redraw_s = redraw_s  # how often a live line is redrawn

    def line(self, text: str) -> None:
        self._write(safe_line(text))

    def _write(self, raw: str) -> None:
        self.stream.write(raw + "\n")
        self.stream.flush()

    def warn(self, text: str) -> None:
        if self.groups:
            self._write(f"::warning::{command_data(text)}")
        else:
            self.line(f"warning: {text}")

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        if self.groups:
            self._write(f"::group::{command_data(title)}")
        else:
            self.line(title)
        try:
            yield
        finally:
            if self.groups:
                self._write("::endgroup::")

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


def command_data(text: str) -> str:
    """A workflow command's message, escaped as the Actions toolkit does (% CR LF), on one line."""
    text = safe_line(one_line(text))
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
