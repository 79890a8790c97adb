"""The engine's own tokenizer over HTTP, in each engine's dialect (``EngineSpec.tokenizer``).

- ``vllm`` (vLLM, SGLang, the sim): ``POST /tokenize`` with ``{"model", "prompt"}``, or for chat
  ``{"model", "messages", "add_generation_prompt": true}`` so the template counts too; the answer
  holds ``count`` and ``max_model_len``. SGLang's ``/tokenize`` takes a prompt only, by its
  documented request shape (not run here): with the chat API its lengths fall back to approximate, noted.
- ``llama.cpp``: ``POST /tokenize`` with ``{"content", "add_special": true}`` answers ``tokens``;
  for chat, ``POST /apply-template`` renders the messages first.
- ``tgi``: ``POST /tokenize`` (``{"inputs"}``) or, for chat, ``POST /chat_tokenize`` answer lists of tokens.
- ``probe`` (an endpoint of unknown kind): one ``vllm``-shaped call; used when it answers in that shape.

Prompts are counted by a few threads at once, before a level's clock starts (never on its hot path).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from kitt.net import NetPolicy, open_url
from kitt.engines.base import EngineSpec
from kitt.errors import BenchmarkError
from kitt.workload.tokens import ENGINE_METHOD

DIALECTS = ("vllm", "llama.cpp", "tgi", "probe")
_THREADS = 8
_TIMEOUT = 60.0


class EngineTokenizer:
    """Counts prompt tokens with the engine's ``/tokenize`` (a ``kitt.workload.tokens.Counter``)."""

    method = ENGINE_METHOD

    def __init__(self, dialect: str, base_url: str, model: str, api: str, net: NetPolicy | None) -> None:
        self.dialect = "vllm" if dialect == "probe" else dialect
        self.base = base_url.rstrip("/")
        self.model, self.chat, self.net = model, api == "chat", net
        self.max_model_len: int | None = None

    def count(self, prompts: Sequence[str]) -> list[int]:
        if len(prompts) <= 1:
            return [self._count(p) for p in prompts]
        with ThreadPoolExecutor(min(_THREADS, len(prompts)), thread_name_prefix="kitt-tokenize") as pool:
            return list(pool.map(self._count, prompts))

    def _count(self, prompt: str) -> int:
        messages = [{"role": "user", "content": prompt}]
        if self.dialect == "vllm":
            body: dict[str, Any] = (
                {"model": self.model, "messages": messages, "add_generation_prompt": True}
                if self.chat
                else {"model": self.model, "prompt": prompt}
            )
            answer = self._post("/tokenize", body)
            if isinstance(answer.get("max_model_len"), int):
                self.max_model_len = answer["max_model_len"]
            return _whole(answer.get("count"), "/tokenize")
        if self.dialect == "llama.cpp":
            text = prompt
            if self.chat:
                text = self._post("/apply-template", {"messages": messages}).get("prompt")
                if not isinstance(text, str):
                    raise BenchmarkError("the engine's /apply-template answered without a prompt")
            # A chat prompt carries its template's own special tokens as text: parse them, add no BOS.
            body = {"content": text, "add_special": not self.chat, "parse_special": True}
            tokens = self._post("/tokenize", body).get("tokens")
            return _whole(len(tokens) if isinstance(tokens, list) else None, "/tokenize")
        if self.chat:  # tgi
            tokens = self._post("/chat_tokenize", {"model": self.model, "messages": messages}).get("tokenize_response")
        else:
            tokens = self._post("/tokenize", {"inputs": prompt})
        return _whole(len(tokens) if isinstance(tokens, list) else None, "/tokenize")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            status, raw = open_url(self.net, "POST", self.base + path, json.dumps(body).encode(), _TIMEOUT)
        except OSError as exc:
            raise BenchmarkError(
                f"the engine's {path} failed: {exc}",
                hint="The engine stopped answering while kitt measured prompt lengths.",
            ) from None
        if status != 200:
            raise BenchmarkError(f"the engine's {path} answered HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
        try:
            return json.loads(raw)
        except ValueError:
            raise BenchmarkError(f"the engine's {path} answered with something that is not JSON") from None


def _whole(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BenchmarkError(f"the engine's {path} answered without a token count")
    return value


def engine_tokenizer(
    spec: EngineSpec, base_url: str, model: str, api: str, net: NetPolicy | None
) -> EngineTokenizer | None:
    """The engine's tokenizer, or None where it has none (or, for ``probe``, does not answer in vLLM's shape)."""
    if spec.tokenizer is None:
        return None
    counter = EngineTokenizer(spec.tokenizer, base_url, model, api, net)
    if spec.tokenizer == "probe":
        try:
            counter.count(["probe"])
        except BenchmarkError:
            return None
    return counter
