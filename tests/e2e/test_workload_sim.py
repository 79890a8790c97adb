"""Workloads end to end on the sim engine: distributions, mixtures, gamma arrivals, time-boxed
levels and a dataset, through the real CLI (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

from support import run_kitt, unique_model

NO_NOISE = ["--engine-arg=--ttft-ms=30", "--engine-arg=--itl-ms=10", "--engine-arg=--ttft-cv=0",
            "--engine-arg=--itl-cv=0"]


def samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_time_boxed_levels_and_gamma_arrivals(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: boxed\nrepeats: 1\nwarmup: 0\nseed: 3\ntests:\n"
        "  - {name: closed, concurrency: [2], duration_s: 1.0, input_len: {uniform: [4, 40]}, output_len: 20}\n"
        "  - {name: bursty, request_rate: [20], arrival: gamma, burstiness: 0.5, duration_s: 1.0,\n"
        "     mix: [{weight: 3, input_len: 8, output_len: 4}, {weight: 1, input_len: 64, output_len: 12}]}\n")
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
        assert all(s["sent_s"] - first < 1.0 for s in mine)  # nothing started after the duration
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
