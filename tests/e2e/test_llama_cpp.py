"""`kitt run -e llama-cpp --native` against a real llama.cpp `llama-server` serving a tiny GGUF.

The server is built from the llama-cpp-python sdist's vendored llama.cpp and the GGUF is
converted from the tiny test model, both once into the test cache (tests/e2e/llama_cpp.py).
kitt starts the server itself, with the argument template Docker mode uses too. llama.cpp's
server closes kept-alive connections as the client reuses them, so these runs also exercise the
load generator's retry on a fresh connection.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kitt.engines import get_engine, served_name
from kitt.engines.docker import docker_run_command
from kitt.workload.lengths import Uniform
from kitt.workload.synthetic import build_requests
from support import (
    REPO,
    assert_exact_quick_suite,
    assert_kill_left_a_clear_failure,
    clean_environ,
    free_port,
    processes_with,
    run_kitt,
    wait_for_samples,
)

pytestmark = pytest.mark.llama

from e2e import llama_cpp  # noqa: E402  (tests/ is on the path: pyproject)

# llama-server's per-request timing line: "eval time = 13.85 ms / 64 tokens (...)".
EVAL_TIME = re.compile(r"\|\s+eval time =\s+([\d.]+) ms /\s+(\d+) tokens")
# One generation thread: the tiny model needs no more, and the test machines are shared.
ENGINE_ARGS = ["--engine-arg=--threads", "--engine-arg=1"]


@pytest.fixture(scope="module")
def llama():
    """(llama-server binary, tiny GGUF): built on first use, then reused from the cache."""
    return llama_cpp.tiny_gguf()


def kitt_env(binary: Path) -> dict[str, str]:
    """kitt's environment with llama-server first on PATH, as a user who installed it would have."""
    return clean_environ(PATH=f"{binary.parent}{os.pathsep}{os.environ['PATH']}")


def servers_on(port: int) -> list[str]:
    return [p for p in processes_with("llama-server") if f"--port {port}" in p]


def wait_until_gone(port: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while servers_on(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    return servers_on(port)


def test_quick_suite_on_real_llama_cpp(llama, tmp_path):
    binary, gguf = llama
    out = tmp_path / "results"
    port = free_port()
    done = run_kitt(
        "run",
        "-e",
        "llama-cpp",
        "--native",
        "-m",
        str(gguf),
        "-s",
        "quick",
        "-o",
        str(out),
        "--port",
        str(port),
        "--repeats",
        "2",
        *ENGINE_ARGS,
        env=kitt_env(binary),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = assert_exact_quick_suite(out, "llama-cpp")
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(r["metrics"]["mean_tpot_ms"] > 0 for r in metrics["results"])
    for result in metrics["results"]:  # a stream whose text llama.cpp held back is complete, and counted
        rows = [s for s in measured if (s["test_name"], s["run_number"]) == (result["test_name"], result["run_number"])]
        assert result["metrics"]["completed_without_text"] == sum(s["text_withheld"] for s in rows)
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    for s in measured:
        assert s["retries"] in (0, 1) and (s["retries"] == 1) == (s["retry_error"] is not None)
        # One event per token here; a retried request's events are the fresh attempt's only.
        assert len(s["event_ms"]) == 64
        assert s["prompt_tokens"] == 128  # exact through llama.cpp's /tokenize (issue 24)

    # TPOT stays right on a server this fast (a token every 0.1-0.3 ms, where events that arrive
    # in one read share its stamp and many ITL gaps are 0): at concurrency 1, each request's TPOT
    # is compared with llama.cpp's own decode time per token for it, from its log, in the same
    # order. Both clock the same stretch, first token to last. A request whose events all came
    # in one read has TPOT 0 (they did arrive together; see docs/performance.md), so the check
    # is on the median over the repeats' requests, and 10% leaves room for scheduling noise.
    serial = [s for s in samples if s["test_name"] == "latency-c1"]
    log = (out / "engine.log").read_text(errors="replace")
    decoded = [(float(ms), int(n)) for ms, n in EVAL_TIME.findall(log) if int(n) == 64][: len(serial)]
    assert len(decoded) == len(serial)
    differences = [
        abs((s["event_ms"][-1] - s["event_ms"][0]) / (s["completion_tokens"] - 1) - ms / (n - 1)) / (ms / (n - 1))
        for s, (ms, n) in zip(serial, decoded)
        if not s["warmup"]
    ]
    assert len(differences) == 16 and statistics.median(differences) < 0.10, differences

    config = json.loads((out / "config.json").read_text())
    assert config["mode"] == "native" and config["served_model"] == gguf.stem
    command = config["server_command"]
    assert command[0] == "llama-server" and command[command.index("--model") + 1] == str(gguf)
    assert "--metrics" in command and config["exact_output_len"] is True
    # Docker mode passes the same arguments to the image; only host and port differ.
    spec = get_engine("llama-cpp")
    docker = docker_run_command(
        spec,
        image=spec.image or "",
        model=str(gguf),
        served=served_name(spec, str(gguf)),
        host_port=port,
        extra_args=tuple(command[len(spec.native_command) + len(spec.server_args) :]),
        name="n",
        run_id="r",
        environ={"HOME": str(tmp_path)},
        owner_pid=1,
        owner_host="h",
    )
    docker_args = docker[docker.index(spec.image) + 1 :]
    swap = {"0.0.0.0": "127.0.0.1", str(spec.container_port): str(port), f"/models/{gguf.name}": str(gguf)}
    assert [swap.get(a, a) for a in docker_args] == command[len(spec.native_command) :]
    assert "llama-cpp" in (out / "summary.md").read_text()
    assert wait_until_gone(port) == []


def test_chat_lengths_exact_on_real_llama_cpp(llama, tmp_path):
    """Issue 24 through the chat API: kitt renders each prompt with llama-server's /apply-template
    and counts it with its /tokenize, so usage.prompt_tokens (the template included) equals every
    requested length, fixed and drawn from a uniform."""
    binary, gguf = llama
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: chat-lengths\napi: chat\nrepeats: 1\nwarmup: 0\nseed: 7\ntests:\n"
        "  - {name: fixed, concurrency: [2], num_requests: 4, input_len: 48, output_len: 4}\n"
        "  - {name: uniform, concurrency: [2], num_requests: 8, output_len: 4, input_len: {uniform: [20, 120]}}\n"
    )
    out = tmp_path / "results"
    done = run_kitt(
        "run",
        "-e",
        "llama-cpp",
        "--native",
        "-m",
        str(gguf),
        "-s",
        str(suite),
        "-o",
        str(out),
        "--port",
        str(free_port()),
        *ENGINE_ARGS,
        env=kitt_env(binary),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["api"] == "chat" and config["workload"]["length_method"] == "exact, engine /tokenize"
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    fixed = [s for s in samples if s["test_name"] == "fixed-c2"]
    uniform = [s for s in samples if s["test_name"] == "uniform-c2"]
    assert len(fixed) == 4 and len(uniform) == 8
    assert all(s["error"] is None and s["usage_from_server"] for s in fixed + uniform)
    assert [s["prompt_tokens"] for s in fixed] == [48] * 4
    stats = config["workload"]["tests"]["uniform"]["input_tokens"]
    # The lengths kitt drew for the level (its seed and salt, kitt.arm): each one sent exactly.
    drawn = [r.input_len for r in build_requests(8, Uniform(20, 120), 4, seed=7, salt="uniform-c2:1")]
    assert sorted(s["prompt_tokens"] for s in uniform) == sorted(drawn) and len(set(drawn)) > 1
    assert (stats["min"], stats["max"]) == (
        min(s["prompt_tokens"] for s in uniform),
        max(s["prompt_tokens"] for s in uniform),
    )


def test_llama_cpp_killed_mid_run(llama, tmp_path):
    binary, gguf = llama
    out = tmp_path / "results"
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kitt",
            "run",
            "-e",
            "llama-cpp",
            "--native",
            "-m",
            str(gguf),
            "-s",
            "quick",
            "-o",
            str(out),
            "--port",
            str(port),
            "--concurrency",
            "2",
            "--num-requests",
            "2000",
            "--repeats",
            "1",
            "--output-len",
            "64",
            *ENGINE_ARGS,
        ],
        cwd=REPO,
        env=kitt_env(binary),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # On an observed event, not by the clock: the warm-up's samples are written (see the vLLM test).
        seen = wait_for_samples(out, process, 300)
        server = servers_on(port)
        assert len(server) == 1, server
        os.kill(int(server[0].split(":")[0]), signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert_kill_left_a_clear_failure(process.returncode, stderr, out, "llama-cpp", seen)
    assert wait_until_gone(port) == []


def test_shared_prefix_hits_the_prompt_cache_on_real_llama_cpp(llama, tmp_path):
    """Issue 25 on llama.cpp: requests that share a 384-token prefix are served from its prompt
    cache (its own `llamacpp:prompt_tokens_cached_total` counter, and a lower median TTFT) where
    prompts of the same length with nothing in common are not. One request at a time, so each
    request follows one whose prompt is still in the slot."""
    binary, gguf = llama
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: prefix\napi: chat\nrepeats: 1\nwarmup: 0\nseed: 3\ntests:\n"
        "  - {name: shared, concurrency: [1], num_requests: 12, input_len: 16, output_len: 2,\n"
        "     prefix: {groups: 1, len: 384}}\n"
        "  - {name: unique, concurrency: [1], num_requests: 12, input_len: 400, output_len: 2}\n"
    )
    out = tmp_path / "results"
    port = free_port()
    done = run_kitt(
        "run",
        "-e",
        "llama-cpp",
        "--native",
        "-m",
        str(gguf),
        "-s",
        str(suite),
        "-o",
        str(out),
        "--port",
        str(port),
        *ENGINE_ARGS,
        env=kitt_env(binary),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert {s["prompt_tokens"] for s in samples} == {400} and all(s["error"] is None for s in samples)
    metrics = {r["test_name"]: r["metrics"] for r in json.loads((out / "metrics.json").read_text())["results"]}
    shared, unique = metrics["shared-c1"], metrics["unique-c1"]
    # Only the first shared request misses the prefix: 11 of 12 reuse at least its 384 tokens.
    assert shared["prefix_cache_hit_rate"] > 0.5 and shared["cached_prompt_tokens"] > 0, shared
    assert unique["prefix_cache_hit_rate"] < shared["prefix_cache_hit_rate"] / 2, unique
    assert shared["median_ttft_ms"] < unique["median_ttft_ms"], (shared, unique)
    assert wait_until_gone(port) == []
