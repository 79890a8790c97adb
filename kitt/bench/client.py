"""Where requests go and how connections to it are opened: :class:`Endpoint` and :class:`Client`.

A :class:`Client` builds the request bytes for one URL once (headers, the proxy's absolute URI or
``CONNECT`` tunnel, the proxy's credentials), resolves the host before the pump runs, and opens
:class:`kitt.bench.http.Connection`\\s on a pump, trying every resolved address in turn.
"""

from __future__ import annotations

import socket
import ssl as _ssl
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from kitt.bench.http import _READ_SIZE, Connection
from kitt.net import Proxy
from kitt.bench.pump import Pump


@dataclass(frozen=True)
class Endpoint:
    """Where one URL's requests go."""

    host: str
    port: int
    path: str
    tls: bool
    host_header: str

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(host, port, path, tls, shown if port == (443 if tls else 80) else f"{shown}:{port}")


class Client:
    """Builds request bytes for one endpoint and opens connections to it on a :class:`Pump`.

    A client and its connections share one read buffer: they belong to one pump (one thread).
    """

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        connect_timeout: float = 30.0,
        ssl_context: _ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        from kitt import __version__

        self.endpoint = Endpoint.from_url(url)
        self.connect_timeout = connect_timeout
        self.ssl = (ssl_context or _ssl.create_default_context()) if self.endpoint.tls else None
        self.proxy = proxy
        self._tunnel: bytes | None = None
        target = self.endpoint.path
        proxy_auth = [f"Proxy-Authorization: {proxy.authorization}"] if proxy and proxy.authorization else []
        if proxy is not None and self.endpoint.tls:  # a CONNECT tunnel, then TLS end to end
            host = self.endpoint.host
            authority = f"[{host}]:{self.endpoint.port}" if ":" in host else f"{host}:{self.endpoint.port}"
            self._tunnel = "\r\n".join(
                [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", *proxy_auth, "", ""]
            ).encode("latin-1")
        elif proxy is not None:  # a plain proxy: the absolute URI, and the proxy's credentials
            target = f"http://{self.endpoint.host_header}{self.endpoint.path}"
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {self.endpoint.host_header}",
            *(proxy_auth if self._tunnel is None else []),
            f"User-Agent: kitt/{__version__}",
            "Accept: text/event-stream, application/json",
            "Content-Type: application/json",
        ]
        lines += [
            f"{name}: {value}"
            for name, value in (headers or {}).items()
            if name.lower() not in ("host", "content-length", "transfer-encoding", "connection")
        ]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._read_buffer = memoryview(bytearray(_READ_SIZE))
        self._addresses: list[tuple[Any, ...]] | None = None

    def request_bytes(self, body: bytes) -> bytes:
        return b"%s%d\r\n\r\n%s" % (self._head, len(body), body)

    def resolve(self) -> None:
        """Look the host up once (blocking); call it before the pump runs, off the timing path."""
        host, port = (self.proxy.host, self.proxy.port) if self.proxy else (self.endpoint.host, self.endpoint.port)
        self._addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

    def open(self, pump: Pump, on_open: Callable[[Connection, str | None], None]) -> Connection:
        """Start connecting; ``on_open(connection, error)`` runs on the pump when done or failed."""
        if self._addresses is None:
            self.resolve()
        assert self._addresses
        return self._open_at(pump, 0, on_open, [])

    def _open_at(
        self, pump: Pump, index: int, on_open: Callable[[Connection, str | None], None], failures: list[str]
    ) -> Connection:
        """Connect to the ``index``-th resolved address; on failure try the next (IPv6 and IPv4, in order)."""
        assert self._addresses is not None
        family, kind, proto, _, address = self._addresses[index]
        sock = socket.socket(family, kind, proto)
        tls = None
        if self.ssl is not None:
            incoming, outgoing = _ssl.MemoryBIO(), _ssl.MemoryBIO()
            tls = (self.ssl.wrap_bio(incoming, outgoing, server_hostname=self.endpoint.host), incoming, outgoing)
        connection = Connection(pump, sock, self._read_buffer, tls, self._tunnel)

        def opened(conn: Connection, error: str | None) -> None:
            if (
                error is not None
                and conn.ready is False
                and index + 1 < len(self._addresses or ())
                and not error.startswith(("SSL", "the proxy"))
            ):
                failures.append(error)
                self._open_at(pump, index + 1, on_open, failures)
                return
            on_open(conn, error if error is None or not failures else "; ".join([*failures, error]))

        connection._start_connect(address, self.connect_timeout, opened)
        return connection
