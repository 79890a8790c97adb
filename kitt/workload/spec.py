"""Request specs: what one request sends, and its JSON body for the OpenAI-compatible APIs.

``kitt.bench`` receives ready specs and imports nothing else from ``kitt.workload``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestSpec:
    index: int
    prompt: str
    max_tokens: int
    input_len: int = 0  # the prompt length asked for, in tokens (0: not known, e.g. a dataset prompt before measuring)
    prefix: str = ""  # a shared prefix sent before ``prompt`` (kitt.workload.prefixes); input_len counts both

    @property
    def text(self) -> str:
        """The whole prompt as sent: the shared prefix, if any, then the request's own prompt."""
        return f"{self.prefix} {self.prompt}" if self.prefix else self.prompt


def request_body(
    spec: RequestSpec,
    *,
    api: str,
    model: str,
    stream_options: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The JSON body of one streaming request to ``/v1/completions`` or ``/v1/chat/completions``."""
    body: dict[str, Any] = {"model": model, "max_tokens": spec.max_tokens, "stream": True, "temperature": 0.0}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": spec.text}]  # a prefix opens the user message
    else:
        body["prompt"] = spec.text
    if stream_options:
        body["stream_options"] = stream_options
    for key, value in extra.items():
        body[key] = spec.max_tokens if value == "{output_len}" else value
    return body


def api_path(api: str) -> str:
    return "/v1/chat/completions" if api == "chat" else "/v1/completions"
