"""Endpoint mode: an OpenAI-compatible server that someone else runs. Nothing to start or stop."""

from __future__ import annotations

from urllib.parse import urlparse

from kitt.engines.base import EngineSpec, ServerHandle
from kitt.errors import UsageError


class EndpointRunner:
    def __init__(self, spec: EngineSpec, *, endpoint: str, served: str) -> None:
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(
                f"--endpoint must be an http(s) URL like http://127.0.0.1:8000, got {endpoint!r}",
            )
        # Users paste both http://host:8000 and http://host:8000/v1; requests add /v1 themselves.
        self.base_url = endpoint.rstrip("/").removesuffix("/v1")
        self.spec = spec
        self.served = served

    def start(self) -> ServerHandle:
        return ServerHandle(base_url=self.base_url, served_model=self.served, mode="endpoint")

    def exit_status(self) -> int | None:
        return None

    def log_tail(self, lines: int = 50) -> str:
        return ""

    def stop(self) -> None:
        pass
