"""kitt.engines.tokenize's TGI and SGLang dialects against an HTTP double of their documented shapes.

No real TGI or SGLang runs here (DESIGN.md section 11: no build of either in any registry), so a
local server answers as their docs say: TGI's ``POST /tokenize`` (``{"inputs"}`` -> a list of
``{"id", "text", "start", "stop"}``) and ``POST /chat_tokenize`` (a chat request ->
``{"tokenize_response": [...], "templated_text"}``); SGLang's ``POST /tokenize`` (``{"model",
"prompt"}`` -> ``{"tokens", "count", "max_model_len"}``, vLLM's shape). The double counts one
token a word, and the chat template adds 3, so a test sees which route a count took.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

from kitt.engines import get_engine
from kitt.engines.specs import SGLANG, TGI, VLLM
from kitt.engines.tokenize import EngineTokenizer, engine_tokenizer
from kitt.errors import BenchmarkError

TEMPLATE = 3  # tokens the double's chat template adds


def tgi(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    if path == "/tokenize":
        words = body["inputs"].split()
        return 200, [{"id": i, "text": w, "start": 0, "stop": len(w)} for i, w in enumerate(words)]
    if path == "/chat_tokenize":
        words = " ".join(m["content"] for m in body["messages"]).split() + ["<|t|>"] * TEMPLATE
        return 200, {
            "tokenize_response": [{"id": i, "text": w, "start": 0, "stop": 1} for i, w in enumerate(words)],
            "templated_text": " ".join(words),
        }
    return 404, {"error": "not found"}


def sglang(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    if path == "/tokenize" and isinstance(body.get("prompt"), str):
        words = body["prompt"].split()
        return 200, {"tokens": list(range(len(words))), "count": len(words), "max_model_len": 4096}
    return 400, {"error": "prompt must be a string"}  # SGLang's /tokenize takes no messages


def not_vllm(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return 200, {"tokens": [1, 2, 3]}  # an answer without vLLM's count


@pytest.fixture
def double() -> Iterator[Callable[[Callable[[str, dict[str, Any]], tuple[int, Any]]], tuple[str, list]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[str, dict[str, Any]], tuple[int, Any]]) -> tuple[str, list]:
        seen: list[tuple[str, dict[str, Any]]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append((self.path, body))
                status, answer_body = answer(self.path, body)
                raw = json.dumps(answer_body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_tgi_completions_count_the_token_list_of_tokenize(double) -> None:
    base, seen = double(tgi)
    counter = engine_tokenizer(TGI, base, "m", "completions", None)
    assert isinstance(counter, EngineTokenizer)
    assert counter.count(["one two three", "a b c d e"]) == [3, 5]
    assert sorted(seen, key=lambda s: s[1]["inputs"]) == [
        ("/tokenize", {"inputs": "a b c d e"}),
        ("/tokenize", {"inputs": "one two three"}),
    ]
    assert counter.max_model_len is None  # TGI's /tokenize does not say its context


def test_tgi_chat_counts_the_template_through_chat_tokenize(double) -> None:
    base, seen = double(tgi)
    counter = engine_tokenizer(TGI, base, "m", "chat", None)
    assert counter is not None and counter.count(["one two three"]) == [3 + TEMPLATE]
    assert seen == [("/chat_tokenize", {"model": "m", "messages": [{"role": "user", "content": "one two three"}]})]


def test_sglang_completions_read_vllms_shape(double) -> None:
    base, seen = double(sglang)
    counter = engine_tokenizer(SGLANG, base, "m", "completions", None)
    assert counter is not None and counter.count(["one two three"]) == [3]
    assert counter.max_model_len == 4096
    assert seen == [("/tokenize", {"model": "m", "prompt": "one two three"})]


def test_sglang_chat_is_refused_as_documented_and_said(double) -> None:
    """SGLang's /tokenize takes a prompt, not chat messages: kitt's vLLM-shaped chat call fails
    with a clear error (kitt.arm then falls back to approximate lengths and notes why)."""
    base, _ = double(sglang)
    counter = engine_tokenizer(SGLANG, base, "m", "chat", None)
    assert counter is not None
    with pytest.raises(BenchmarkError, match=r"/tokenize answered HTTP 400"):
        counter.count(["one two three"])


def test_a_probe_that_is_not_vllms_shape_means_no_engine_tokenizer(double) -> None:
    base, seen = double(not_vllm)
    assert engine_tokenizer(get_engine("openai"), base, "m", "completions", None) is None
    assert len(seen) == 1  # probed once
    base, _ = double(lambda path, body: (404, {"error": "not found"}))
    assert engine_tokenizer(get_engine("openai"), base, "m", "completions", None) is None
    assert engine_tokenizer(VLLM, base, "m", "completions", None) is not None  # a named engine is not probed
