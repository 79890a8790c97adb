"""--repeats auto against a history of baseline jobs, on drifting sim servers (issue 28, one arm).

Five baseline jobs of a fixed four repeats make the history; then ten A/A jobs and ten whose
server is 10% slower each run ``--repeats auto`` (3 to 10 repeats) against it, and are judged as
`kitt ci report --baseline-dir HISTORY` judges them. The sim's speed drifts with the wall clock,
so the jobs differ from one another as CI jobs do: the history test's job-to-job spread is real
here. Asserted: at most 1 A/A job in 10 fails, the slower jobs are caught (at least 8 in 10),
the jobs use fewer repeats than the ten a fixed design runs, and config.json, summary.md and the
report record each level as an A/B auto run does. The runs are in-process library calls (the
engines are real processes); the simulated error rates are benchmarks/gpu_minutes.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

from support import assert_no_engine_left, unique_model

from kitt.compare import compare_result_sets
from kitt.config import Overrides, RunConfig, apply_overrides, load_suite
from kitt.importers import load_baseline_history
from kitt.progress import Reporter
from kitt.report import render_report
from kitt.results import load_result_set
from kitt.run import run_benchmark

HISTORY, JOBS = 5, 10
SUITE = """name: repeats-auto-history
warmup: 2
repeats: 4
seed: 7
tests:
  - name: solo
    concurrency: [4]
    num_requests: 8
    input_len: 32
    output_len: 8
"""
# A slow drift (±1% over 20 s) shifts each job as a runner's state does; the latencies are long
# enough (test_repeats_auto_sim.py says why) that a busy runner's millisecond jitter does not
# swamp a p99 of eight requests.
SIM = ("--drift-pct=1", "--drift-period-s=20", "--ttft-ms=100", "--itl-ms=20")


def run(tmp: Path, model: str, out: Path, slowdown: float, history: Path | None) -> None:
    # One seed for every job, as CI's jobs of one suite have: the history test needs the same workload.
    overrides = Overrides(repeats="auto" if history else None)
    config = RunConfig(
        model=model,
        engine="sim",
        suite=apply_overrides(load_suite(str(tmp / "suite.yaml")), overrides),
        output=out,
        engine_args=(f"--slowdown={slowdown}", *SIM),
        history_dir=history,
    )
    with (tmp / "progress.log").open("a") as log:
        run_benchmark(config, Reporter(log, live=False))


def job(tmp: Path, model: str, index: int, slowdown: float) -> tuple[bool, int, str]:
    """One current job: (did the report find a regression, repeats run, why the level stopped)."""
    out = tmp / f"job{index}-{slowdown}"
    run(tmp, model, out, slowdown, tmp / "history")
    written = json.loads((out / "config.json").read_text())
    record = written["repeats_auto"]
    assert record["against"] == "history" and record["history_jobs"] == HISTORY
    level = record["levels"]["solo-c4"]
    assert level["repeats"] == len(json.loads((out / "metrics.json").read_text())["results"])
    assert set(level["decisions"]) == set(record["gated"]) and len(record["gated"]) == 9
    note = f"solo-c4: {level['reason']} (repeats: auto, 3 to 10 repeats)."
    assert note in (out / "summary.md").read_text()
    comparison = compare_result_sets(load_result_set(out), load_baseline_history(tmp / "history"))
    # Stopping before the history's four repeats is not "short of repeats": the gate judges the job.
    assert comparison.design == "history" and not comparison.incomplete and comparison.gating
    if index == 0:  # the report says how many repeats ran and why the level stopped
        assert note in render_report(comparison, marker="<!-- kitt-benchmark -->")
    return bool(comparison.regressions), int(level["repeats"]), level["reason"]


def test_auto_against_a_history_keeps_the_error_rates_with_fewer_repeats(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    model = unique_model()
    for index in range(HISTORY):
        run(tmp_path, model, tmp_path / "history" / f"{index + 1:02d}-run{index + 1}", 1.0, None)
    same = [job(tmp_path, model, i, 1.0) for i in range(JOBS)]
    slower = [job(tmp_path, model, i, 1.1) for i in range(JOBS)]
    repeats = [r for _, r, _ in same + slower]
    summary = (
        f"A/A failing {sum(f for f, _, _ in same)}/{JOBS}, 10% caught {sum(f for f, _, _ in slower)}/{JOBS}, "
        f"repeats {repeats}; " + "; ".join(why for _, _, why in same + slower)
    )
    print(summary)  # pytest -s shows the figures docs/gpu-minutes.md quotes
    assert sum(failed for failed, _, _ in same) <= 1, summary
    assert sum(caught for caught, _, _ in slower) >= 8, summary
    assert sum(repeats) / len(repeats) < 10, summary
    assert all(3 <= r <= 10 for r in repeats), summary
    assert_no_engine_left(model)
