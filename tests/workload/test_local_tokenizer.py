"""The ``tokenizers`` route (``kitt[tokenizers]``): a real model's tokenizer.json fits prompts to
exact lengths, and a run against an endpoint without /tokenize falls back to it.

The model is the tiny Llama the vLLM CPU tests train (tests/e2e/vllm_cpu.py make_tiny_model, cached
by scripts/test): a byte-level BPE of a few hundred tokens, so a word often costs several tokens,
unlike the one-token-a-word counters of the other tests. No vLLM server is needed: the file alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import run_kitt
from kitt.workload.lengths import Normal
from kitt.workload.synthetic import build_requests
from kitt.workload.tokens import LOCAL_METHOD, LocalTokenizer, fit

tokenizers = pytest.importorskip("tokenizers", reason="the test extra installs tokenizers (pip install -e '.[test]')")

# Where tests/e2e/vllm_cpu.py default_model_dir keeps the tiny model.
MODEL = Path(os.environ.get("KITT_TEST_CACHE") or Path.home() / ".cache" / "kitt-tests") / "tiny-llama"
pytestmark = pytest.mark.skipif(
    not (MODEL / "tokenizer.json").is_file(),
    reason=f"no tiny model at {MODEL}: scripts/test builds it (tests/e2e/vllm_cpu.py)",
)


def reference_counts(prompts: list[str]) -> list[int]:
    """The same tokenizer.json, loaded on its own: what the engine would count for these prompts."""
    tokenizer = tokenizers.Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    return [len(tokenizer.encode(prompt).ids) for prompt in prompts]


def test_for_model_loads_the_folders_tokenizer_and_context() -> None:
    counter = LocalTokenizer.for_model(str(MODEL))
    assert counter is not None and counter.method == LOCAL_METHOD == "exact, tokenizer.json"
    assert counter.max_model_len == json.loads((MODEL / "config.json").read_text())["max_position_embeddings"]
    words = "The quick brown fox, 42 times! Hello world."
    assert counter.count([words]) == reference_counts([words])
    assert counter.count([words])[0] > len(words.split())  # a real BPE: not one token a word
    assert LocalTokenizer.for_model(str(MODEL / "missing")) is None


@pytest.mark.parametrize("lengths", [[1, 2, 7, 32, 128, 512], Normal(200, 80, 16, 400)], ids=["fixed", "normal"])
def test_prompts_fit_exactly_as_the_tokenizer_counts(lengths) -> None:
    counter = LocalTokenizer.for_model(str(MODEL))
    assert counter is not None
    if isinstance(lengths, list):
        requests = [r for n in lengths for r in build_requests(4, n, 8, seed=3, salt=f"fixed-{n}")]
    else:
        requests = build_requests(64, lengths, 8, seed=3, salt="normal")
    targets = [r.input_len for r in requests]
    fitted = fit(requests, counter, 3, "local", synthetic=True)
    assert fitted.inexact == 0
    assert reference_counts([r.prompt for r in fitted.requests]) == targets
    if not isinstance(lengths, list):
        assert min(targets) >= 16 and max(targets) <= 400 and len(set(targets)) > 20


def test_a_run_against_an_endpoint_without_tokenize_uses_tokenizer_json(tmp_path) -> None:
    """engine ``openai`` probes /tokenize once; the sim started with --no-tokenize answers 404, so
    kitt falls back to the model folder's tokenizer.json and config.json says so."""
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kitt.engines.simserver",
            "--port",
            "0",
            "--model",
            str(MODEL),
            "--ttft-ms",
            "2",
            "--itl-ms",
            "1",
            "--no-tokenize",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        assert line.startswith("listening "), line
        out = tmp_path / "r"
        done = run_kitt(
            "run",
            "-m",
            str(MODEL),
            "-e",
            "openai",
            "--endpoint",
            f"http://127.0.0.1:{line.split()[1]}",
            "-o",
            str(out),
            "-s",
            "quick",
            "--concurrency",
            "1",
            "--num-requests",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--input-len",
            "48",
            "--output-len",
            "4",
        )
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["workload"]["length_method"] == LOCAL_METHOD
    # The sim counts one token a word; the prompts were fitted to 48 BPE tokens, so it counts fewer.
    for result in json.loads((out / "metrics.json").read_text())["results"]:
        assert 0 < result["metrics"]["mean_input_tokens"] < 48
