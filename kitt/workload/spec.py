"""Request specs: what one request sends, and its JSON body for the OpenAI-compatible APIs.

``kitt.bench`` receives ready specs and imports nothing else from ``kitt.workload``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestSpec:
    index: int
    prompt: str
    max_tokens: int
    input_len: int = 0  # the prompt length asked for, in tokens (0: not known, e.g. a dataset prompt before measuring)
    prefix: str = ""  # a shared prefix sent before ``prompt`` (kitt.workload.prefixes); input_len counts both
    history: tuple[str, ...] = ()  # a session's earlier turns: user, answer, user, answer, ... (see Session)

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
        body["messages"] = [
            {"role": "assistant" if i % 2 else "user", "content": text} for i, text in enumerate(spec.history)
        ]
        body["messages"].append({"role": "user", "content": spec.text})  # a prefix opens the user message
    elif spec.history:
        body["prompt"] = conversation_text(spec.history, spec.text)
    else:
        body["prompt"] = spec.text
    if stream_options:
        body["stream_options"] = stream_options
    for key, value in extra.items():
        body[key] = spec.max_tokens if value == "{output_len}" else value
    return body


def api_path(api: str) -> str:
    return "/v1/chat/completions" if api == "chat" else "/v1/completions"


@dataclass(frozen=True, slots=True)
class Session:
    """A conversation of ``len(turns)`` requests (kitt.workload.sessions builds them).

    ``turns[k]`` holds turn k's own new user message and its ``max_tokens``; its ``history`` is
    filled in by :func:`next_turn` when turn k-1's answer is known, so every turn carries the
    answers the engine actually returned. ``think_s[k-1]`` is the pause between turn k-1's end
    and turn k's send."""

    index: int
    turns: tuple[RequestSpec, ...]
    think_s: tuple[float, ...] = ()


def next_turn(previous: RequestSpec, answer: str, following: RequestSpec) -> RequestSpec:
    """``following`` carrying everything sent and answered before it: ``previous``'s history, its
    user message (with its shared prefix, if any) and the engine's ``answer`` to it."""
    return replace(following, history=previous.history + (previous.text, answer))


def conversation_text(history: tuple[str, ...], text: str) -> str:
    """A conversation as one completions prompt: each answer continues its prompt's text, each
    new user message starts a new line, so turn k+1's prompt begins with turn k's prompt and answer."""
    parts = []
    for i, part in enumerate(history):
        parts.append(part if i % 2 else ("\n" if i else "") + part)
    return "".join(parts) + "\n" + text
