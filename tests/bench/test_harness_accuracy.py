"""kitt's clock against the reference server's truth, at 64 streams (an accuracy test, not a timed one).

The reference server (benchmarks/reference_server.py) logs when each request arrived and when each
event was written; kitt's TTFT and inter-event gaps must match that truth to within 1 ms at the
median. benchmarks/harness_accuracy.py does the same for every client and row, with the figures in
docs/performance.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import subprocess
import sys
from pathlib import Path

from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.workload.synthetic import build_requests
from kitt.config import Level

ROOT = Path(__file__).resolve().parents[2]
STREAMS, REQUESTS, OUTPUT = 64, 128, 32


def load_harness():
    spec = importlib.util.spec_from_file_location("harness_accuracy", ROOT / "benchmarks" / "harness_accuracy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_kitt_matches_the_reference_server_at_64_streams(tmp_path: Path) -> None:
    harness = load_harness()
    log = tmp_path / "truth.json"
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "reference_server.py"),
            "--port",
            "0",
            "--ttft-ms",
            "50",
            "--itl-ms",
            "10",
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert line.startswith("listening "), line
        url = f"http://127.0.0.1:{line.split()[1]}"
        specs = build_requests(REQUESTS, 32, OUTPUT, seed=0, salt="accuracy-test")
        records: list[RequestRecord] = []
        asyncio.run(
            run_level(
                Target(base_url=url, model="reference"),
                specs,
                Level("concurrency", STREAMS),
                test_name="accuracy",
                run_number=1,
                sink=records,
            )
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    truth = json.loads(log.read_text())
    by_prompt = {r["prompt_head"]: r["rid"] for r in truth["requests"]}
    prompts = {spec.index: spec.prompt[:48] for spec in specs}
    assert [r.error for r in records if r.error] == []
    seen = [
        harness.Seen(
            by_prompt[prompts[r.index]],
            r.events[0] - r.sent,
            [b - a for a, b in zip(r.events, r.events[1:])],
            r.events[-1] - r.events[0],
        )
        for r in records
    ]
    row = harness.Row("short", STREAMS, 1, OUTPUT, REQUESTS)
    result = harness.score(harness.Kitt(), row, seen, truth, None)
    assert result["matched"] == REQUESTS and result["event_count_mismatch"] == 0
    summary = {k: round(v, 3) for k, v in result.items() if isinstance(v, float)}
    assert result["ttft_err_ms_median"] <= 1.0, summary
    assert result["itl_err_ms_median"] <= 1.0, summary
    assert result["ttft_err_ms_median"] >= -0.05, summary  # the client cannot see an event before it was sent
