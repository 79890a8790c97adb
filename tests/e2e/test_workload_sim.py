"""Workloads end to end on the sim engine: distributions, mixtures, gamma arrivals, time-boxed
levels and a dataset, through the real CLI (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import run_kitt, unique_model

NO_NOISE = [
    "--engine-arg=--ttft-ms=30",
    "--engine-arg=--itl-ms=10",
    "--engine-arg=--ttft-cv=0",
    "--engine-arg=--itl-cv=0",
]


def samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_time_boxed_levels_and_gamma_arrivals(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: boxed\nrepeats: 1\nwarmup: 0\nseed: 3\ntests:\n"
        "  - {name: closed, concurrency: [2], duration_s: 1.0, input_len: {uniform: [4, 40]}, output_len: 20}\n"
        "  - {name: bursty, request_rate: [20], arrival: gamma, burstiness: 0.5, duration_s: 1.0,\n"
        "     mix: [{weight: 3, input_len: 8, output_len: 4}, {weight: 1, input_len: 64, output_len: 12}]}\n"
    )
    out = tmp_path / "r"
    done = run_kitt("run", "-m", unique_model(), "-e", "sim", "-s", str(suite), "-o", str(out), *NO_NOISE)
    assert done.returncode == 0, done.stderr
    results = {r["test_name"]: r["metrics"] for r in json.loads((out / "metrics.json").read_text())["results"]}
    lines = samples(out)
    for name in ("closed-c2", "bursty-r20"):
        mine = [s for s in lines if s["test_name"] == name]
        m = results[name]
        longest = max(s["end_ms"] for s in mine) / 1e3  # one request's length, at most
        first = min(s["scheduled_s"] for s in mine)
        assert all(s["scheduled_s"] - first < 1.0 for s in mine)  # nothing was due after the duration
        assert m["completed"] == len(mine) and m["failed"] == 0  # the ones in flight finished and count
        assert m["duration"] <= 1.0 + longest + 0.05, (m["duration"], longest)
    closed = [s for s in lines if s["test_name"] == "closed-c2"]
    assert 1.0 < results["closed-c2"]["duration"] and len(closed) < 1000  # ended by time, not by the cap
    assert {s["prompt_tokens"] for s in closed} <= set(range(4, 41)) and len({s["prompt_tokens"] for s in closed}) > 3
    bursty = [s for s in lines if s["test_name"] == "bursty-r20"]
    assert {(s["prompt_tokens"], s["completion_tokens"]) for s in bursty} <= {(8, 4), (64, 12)}
    config = json.loads((out / "config.json").read_text())
    tests = {t["name"]: t for t in config["suite"]["tests"]}
    assert tests["bursty"]["arrival"] == {"kind": "gamma", "burstiness": 0.5, "ramp_up_s": 0.0}
    assert tests["closed"]["duration_s"] == 1.0 and tests["closed"]["input_len"] == {"uniform": [4, 40]}
    assert results["closed-c2"]["mean_input_tokens"] == sum(s["prompt_tokens"] for s in closed) / len(closed)
    assert config["workload"]["length_method"] == "exact, engine /tokenize" and not config["workload"]["plain"]
    summary = (out / "summary.md").read_text()
    assert "gamma 20 req/s (burstiness 0.5), levels of at most 1 s" in summary
    assert "closed-c2: 1 s, at most 1000 requests x 1 repeats" in done.stdout + done.stderr  # the header says the box


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_exact_lengths_from_the_engines_tokenize(tmp_path: Path, api: str) -> None:
    """The sim counts one token a word plus a chat template; the prompts hit every length exactly."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: exact\nrepeats: 1\nwarmup: 1\ntests:\n"
        "  - {name: dist, concurrency: [4], num_requests: 24, output_len: 4,\n"
        "     input_len: {mean: 60, stdev: 30, min: 20, max: 120}}\n"
    )
    out = tmp_path / "r"
    done = run_kitt("run", "-m", unique_model(), "-e", "sim", "-s", str(suite), "-o", str(out), "--api", api, *NO_NOISE)
    assert done.returncode == 0, done.stderr
    measured = [s for s in samples(out) if not s["warmup"]]
    config = json.loads((out / "config.json").read_text())
    stats = config["workload"]["tests"]["dist"]["input_tokens"]
    counted = sorted(s["prompt_tokens"] for s in measured)
    assert (counted[0], counted[-1]) == (stats["min"], stats["max"]) and 20 <= counted[0] < counted[-1] <= 120
    assert config["workload"]["tests"]["dist"]["inexact"] == 0


def test_a_sharegpt_file_sampled_without_replacement(tmp_path: Path) -> None:
    data = tmp_path / "sg.json"
    conversations = [
        {
            "id": str(i),
            "conversations": [
                {"from": "human", "value": f"q{i} " + "x " * (5 * i)},
                {"from": "gpt", "value": "y " * (i + 1)},
            ],
        }
        for i in range(1, 7)
    ]
    data.write_text(json.dumps(conversations))
    out = tmp_path / "r"
    done = run_kitt(
        "run",
        "-m",
        unique_model(),
        "-e",
        "sim",
        "-s",
        "quick",
        "-o",
        str(out),
        "--concurrency",
        "2",
        "--num-requests",
        "6",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--output-len",
        "4",
        "--dataset",
        str(data),
        "--dataset-format",
        "sharegpt",
        *NO_NOISE,
    )
    assert done.returncode == 0, done.stderr
    run = [s for s in samples(out) if s["test_name"] == "latency-c2"]
    # Each conversation once: its first human turn (1 + 5i words), its answer (i + 1 words) capped at 4.
    assert sorted((s["prompt_tokens"], s["completion_tokens"]) for s in run) == [
        (1 + 5 * i, min(i + 1, 4)) for i in range(1, 7)
    ]
    workload = json.loads((out / "config.json").read_text())["workload"]
    assert workload["tests"]["latency"]["dataset"]["format"] == "sharegpt"
    assert "ShareGPT sample (sha " in (out / "summary.md").read_text()


def test_dataset_prompts_past_the_context_are_skipped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "prompts.txt"
    data.write_text("\n".join(f"prompt {i} " + "word " * (10 * i) for i in range(6)) + "\n")
    out = tmp_path / "r"
    done = run_kitt(
        "run",
        "-m",
        unique_model(),
        "-e",
        "sim",
        "-s",
        "quick",
        "-o",
        str(out),
        "--concurrency",
        "1",
        "--num-requests",
        "6",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--output-len",
        "4",
        "--dataset",
        str(data),
        "--dataset-format",
        "prompts",
        "--engine-arg=--max-model-len=30",
        *NO_NOISE,
    )
    assert done.returncode == 0, done.stderr
    run = [s for s in samples(out) if s["test_name"] == "latency-c1"]
    # Prompts of 2, 12, 22, 32, ... words: with 4 output tokens only the first three fit 30 tokens.
    assert sorted(s["prompt_tokens"] for s in run) == [2, 12, 22] and all(s["error"] is None for s in run)
    workload = json.loads((out / "config.json").read_text())["workload"]
    assert workload["tests"]["latency"]["skipped"] == 3
    summary = (out / "summary.md").read_text()
    assert "3 prompts skipped (past the context)" in summary and "3 dataset prompts were skipped" in summary
