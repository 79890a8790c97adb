"""The sim server as a process, over HTTP: tokens, limits, the serving model, the counters."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
from typing import Any, Iterator

import pytest


@contextlib.contextmanager
def sim(*args: str) -> Iterator[http.client.HTTPConnection]:
    """A sim server with ``args``; yields a keep-alive connection to it."""
    process = subprocess.Popen([sys.executable, "-m", "kitt.engines.simserver", "--port", "0", "--ttft-ms", "2",
                                "--itl-ms", "1", "--ttft-cv", "0", "--itl-cv", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening "), line
        conn = http.client.HTTPConnection("127.0.0.1", int(line.split()[1]), timeout=10)
        yield conn
        conn.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def server() -> Iterator[http.client.HTTPConnection]:
    with sim("--max-model-len", "64") as conn:
        yield conn


def test_tokenize_counts_words_and_detokenize_round_trips(server):
    status, answer = post(server, "/tokenize", {"model": "sim-model", "prompt": "  the quick\tBrown fox, 42 "})
    assert status == 200 and answer["count"] == 5 == len(answer["tokens"]) and answer["max_model_len"] == 64
    assert answer["token_strs"] is None
    status, back = post(server, "/detokenize", {"model": "sim-model", "tokens": answer["tokens"]})
    assert status == 200 and back == {"prompt": "the quick Brown fox, 42"}
    _, strs = post(server, "/tokenize", {"prompt": "a b", "return_token_strs": True})
    assert strs["token_strs"] == ["a", "b"] and strs["tokens"] == [0, 1]
    status, error = post(server, "/detokenize", {"tokens": [2**30 + 7]})
    assert status == 400 and error["error"]["type"] == "BadRequestError" and error["error"]["code"] == 400


def test_usage_agrees_with_tokenize_for_completions_chat_and_token_ids(server):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say three words"}]
    _, chat = post(server, "/tokenize", {"messages": messages, "add_generation_prompt": True})
    _, bare = post(server, "/tokenize", {"messages": messages, "add_generation_prompt": False})
    assert chat["count"] == 2 + 3 + 2 * 3 + 2 and bare["count"] == chat["count"] - 2
    status, reply = post(server, "/v1/chat/completions", {"messages": messages, "max_tokens": 3})
    assert status == 200 and reply["usage"]["prompt_tokens"] == chat["count"]

    prompt = "one two three Four five"
    _, tokenized = post(server, "/tokenize", {"prompt": prompt})
    for sent in (prompt, tokenized["tokens"]):
        status, reply = post(server, "/v1/completions", {"prompt": sent, "max_tokens": 2})
        assert status == 200 and reply["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_max_model_len_answers_vllms_400_and_shortens_the_output(server):
    status, error = post(server, "/v1/completions", {"prompt": "w " * 65, "max_tokens": 1})
    assert status == 400 and error["error"]["param"] == "input_tokens"
    assert "maximum context length is 64 tokens" in error["error"]["message"] and "65 input tokens" in error["error"]["message"]
    status, error = post(server, "/v1/completions", {"prompt": "w", "max_tokens": 65})
    assert status == 400 and error["error"]["param"] == "max_tokens"
    status, reply = post(server, "/v1/completions", {"prompt": "w " * 60, "max_tokens": 10})
    assert status == 200 and reply["usage"]["completion_tokens"] == 4  # 60 + 4 = max_model_len
    status, error = post(server, "/v1/completions", {"prompt": [5, 2**30 + 3], "max_tokens": 1})
    assert status == 400 and "vocabulary" in error["error"]["message"]
