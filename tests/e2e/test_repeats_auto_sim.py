"""--repeats auto on the drifting reference servers of the A/B tests (issue 28's check, kept cheap).

Ten A/A jobs and ten jobs whose candidate is 10% slower, each a real A/B run of two sim
processes whose speed drifts together with the wall clock, judged as `kitt ci report` judges
them: at most 1 A/A job in 10 fails, at least 9 slower ones in 10 are caught, and the jobs use at
most 5 pairs on average (half of the 10 a fixed design needs). The runs are in-process library
calls (the engines are real processes) to keep the Python start-ups out of the budget; the
hundreds of simulated jobs behind the error rates are benchmarks/gpu_minutes.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

from support import assert_no_engine_left, unique_model

from kitt.compare import compare_result_sets
from kitt.config import BaselineArm, Overrides, RunConfig, apply_overrides, load_suite
from kitt.progress import Reporter
from kitt.report import render_report
from kitt.results import load_result_set
from kitt.run import run_benchmark

JOBS = 10
SUITE = """name: repeats-auto
warmup: 2
repeats: auto
min_repeats: 3
max_repeats: 10
seed: 7
tests:
  - name: ab
    concurrency: [4]
    num_requests: 8
    input_len: 32
    output_len: 8
"""
# The A/B tests' drift (10% over a 20 s period), on latencies long enough (100 ms to the first
# token, 20 ms a token) that a busy 2-core runner's millisecond jitter does not swamp a p99 of
# eight requests: at the sim's default 40 ms and 8 ms, back-to-back repeats' p99s differ by 8-9%.
SIM = ("--drift-pct=10", "--drift-period-s=20", "--ttft-ms=100", "--itl-ms=20")


def job(tmp: Path, model: str, index: int, slowdown: float) -> tuple[bool, int, str]:
    """One A/B job: (did the report find a regression, pairs run, why it stopped)."""
    out = tmp / f"job{index}-{slowdown}"
    suite = apply_overrides(load_suite(str(tmp / "suite.yaml")), Overrides(seed=index))
    config = RunConfig(
        model=model,
        engine="sim",
        suite=suite,
        output=out,
        engine_args=(f"--slowdown={slowdown}", *SIM),
        baseline=BaselineArm(engine_args=("--slowdown=1", *SIM)),
    )
    with (tmp / "progress.log").open("a") as log:
        run_benchmark(config, Reporter(log, live=False))
    written = json.loads((out / "candidate" / "config.json").read_text())
    # The engine's start-up is measured and recorded (issue 28): launch, then the readiness stages.
    (startup,) = written["startup"]
    assert startup["mode"] == written["mode"] and startup["total_s"] >= startup["ready_s"] > 0 and "start_s" in startup
    assert any("health" in stage for stage in startup["stages"])
    assert any(
        n.startswith("Engine start-up of the candidate arm")
        for n in json.loads((out / "candidate" / "metrics.json").read_text())["notes"]
    )
    record = written["ab"]["repeats"]
    level = record["levels"]["ab-c4"]
    assert level["pairs"] == len(json.loads((out / "candidate" / "metrics.json").read_text())["results"])
    positions = written["ab"]["positions"]["ab-c4"]
    assert len(positions) == level["pairs"] and abs(2 * sum(positions) - len(positions)) <= 1  # balanced at the stop
    comparison = compare_result_sets(load_result_set(out / "candidate"), load_result_set(out / "baseline"))
    assert comparison.paired
    if index == 0:  # the report says how many pairs ran and why the level stopped
        report = render_report(comparison, marker="<!-- kitt-benchmark -->")
        assert f"ab-c4: {level['reason']} (repeats: auto, 3 to 10 pairs)." in report
    return bool(comparison.regressions), int(level["pairs"]), level["reason"]


def test_auto_on_drifting_sims_keeps_the_error_rates_with_half_the_pairs(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    model = unique_model()
    same = [job(tmp_path, model, i, 1.0) for i in range(JOBS)]
    slower = [job(tmp_path, model, i, 1.1) for i in range(JOBS)]
    pairs = [p for _, p, _ in same + slower]
    summary = (
        f"A/A failing {sum(f for f, _, _ in same)}/{JOBS}, 10% caught {sum(f for f, _, _ in slower)}/{JOBS}, "
        f"pairs {pairs}; " + "; ".join(why for _, _, why in same + slower)
    )
    print(summary)  # pytest -s shows the figures docs/gpu-minutes.md quotes
    assert sum(failed for failed, _, _ in same) <= 1, summary
    assert sum(caught for caught, _, _ in slower) >= 9, summary
    assert sum(pairs) / len(pairs) <= 5.0, summary
    assert all(3 <= p <= 10 for p in pairs), summary
    assert_no_engine_left(model)
