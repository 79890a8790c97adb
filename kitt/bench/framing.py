"""The parser half of a :class:`kitt.bench.http.Connection`: HTTP/1.1 response framing and SSE lines.

One read's plaintext bytes go into :meth:`ResponseParsing.data_received` with the read's stamp;
the status line and headers, chunked encoding, ``Content-Length`` or connection-close framing,
interim 1xx responses and the ``data:`` lines of the body come out in the :class:`Response` of
the request in flight. This is the hot path, moved here unchanged: ``Connection`` inherits
these methods, so a read still costs the same calls and attribute lookups as before.
:class:`ResponseParsing` is a mixin that only ``Connection`` uses; it works on the
connection's own state (``_response``, ``_state``, ``_buffer``, ``_sse``...) and calls its
``close`` and ``_cancel_deadline``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from kitt.stamps import clock

_MAX_HEAD = 64 * 1024
_MAX_ERROR_BODY = 4096
# The longest SSE line kept: a stream that never sends a newline fails once a held line passes this,
# instead of being buffered (and re-joined on every read) without limit.
MAX_LINE = 4 * 1024 * 1024


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


class ResponseParsing:
    """Framing and SSE lines over the state of a :class:`kitt.bench.http.Connection` (its only user)."""

    _response: Response | None
    _on_done: Callable[[Response], None] | None
    _interim: bool
    _buffer: bytes
    _state: str
    _left: int
    _sse: bytes
    _keep: bool
    reusable: bool

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
                elif data[end : end + 2] == b"\r\n":  # the whole chunk is in this read: the usual case
                    body.append(data[pos:end])
                    pos = end + 2
                else:
                    self._state = "chunk-data"
            elif state == "chunk-data" or state == "length":
                take = min(self._left, size - pos)
                body.append(data[pos : pos + take])
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


def _chunk_size(line: bytes) -> int:
    try:
        size = int(line, 16)
    except ValueError:
        size = int(line.split(b";", 1)[0].strip(), 16)  # a chunk extension; raises when malformed
    if size < 0:
        raise ValueError(f"negative chunk size {line[:20]!r}")
    return size
