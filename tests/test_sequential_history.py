"""kitt.sequential against a history of baseline jobs: ``kitt run --repeats auto --history-dir DIR``.

The decisions on simulated histories (tests/seq_sim.py: a job effect shared by every metric, each
repeat's own noise, the runner's drift within a job), the level's look on real values, and every
bad ``--history-dir`` refused in one line before an engine starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from seq_sim import LOWER, auto_history, current_jobs, fixed_history, history_jobs, one_metric_worse
from support import assert_one_line_error, run_kitt

from kitt import sequential
from kitt.config import Overrides, RunConfig, apply_overrides, check_run_config, load_suite
from kitt.errors import UsageError
from kitt.results import SCHEMA_VERSION
from kitt.sequential import Decision, Design, decide_history, look_history

GATED = {"median_ttft_ms": 5.0, "p99_ttft_ms": 5.0, "output_throughput": 5.0}
LOWER_BY_NAME = {"median_ttft_ms": True, "p99_ttft_ms": True, "output_throughput": False}
DESIGN = Design(3, 10)  # nine gated metrics, one level: the run's family


def codes_at_every_look(history, current, design=DESIGN):
    return [
        decide_history(
            history.means, history.sizes, history.within_ss, history.within_df, current[..., :n], LOWER, 5.0, design
        )
        for n in range(design.min_pairs, design.max_pairs + 1)
    ]


def test_aa_jobs_are_rarely_called_beyond_at_any_look_and_the_report_keeps_its_alpha():
    # A 2% job effect and ±5% drift: the history's jobs differ, and so does the current one.
    history = history_jobs(3000, repeat_cv=0.015, drift_pct=5, job_cv=0.02, seed=31)
    current = current_jobs(3000, 10, repeat_cv=0.015, drift_pct=5, job_cv=0.02, seed=32)
    looks = codes_at_every_look(history, current)
    beyond = np.any([((c == Decision.WORSE) | (c == Decision.BETTER)).any(-1) for c in looks], axis=0)
    # Whatever look stops the job, a false "beyond" anywhere in it is within the family's alpha.
    assert beyond.mean() <= sequential.FAMILY_ALPHA, beyond.mean()
    outcome = auto_history(history, current, DESIGN)
    assert outcome.regression.any(-1).mean() <= sequential.FAMILY_ALPHA
    assert outcome.pairs.mean() < DESIGN.max_pairs


def test_a_20pct_regression_is_decided_beyond_and_the_level_stops_early():
    history = history_jobs(1000, repeat_cv=0.015, drift_pct=0, job_cv=0.01, seed=41)
    current = current_jobs(1000, 10, repeat_cv=0.015, drift_pct=0, job_cv=0.01, shift=one_metric_worse(20), seed=42)
    looks = codes_at_every_look(history, current)
    assert np.any([c[:, 0] == Decision.WORSE for c in looks], axis=0).mean() >= 0.99
    assert (looks[0][:, 1:] == Decision.WITHIN).mean() >= 0.9  # the unchanged metrics are shown within
    outcome = auto_history(history, current, DESIGN)
    assert outcome.regression[:, 0].mean() >= 0.99 and outcome.regression[:, 1:].mean() < 0.01
    assert outcome.pairs.mean() < 5, outcome.pairs.mean()
    # The fixed design with all ten repeats catches no more of them.
    assert fixed_history(history, current, 10).regression[:, 0].mean() <= outcome.regression[:, 0].mean() + 0.01


def test_a_history_spread_wider_than_the_threshold_is_out_of_reach_at_the_first_look():
    # Jobs that differ by 10%: no number of current repeats can show a change within ±5% or beyond it.
    history = history_jobs(500, repeat_cv=0.015, drift_pct=0, job_cv=0.10, seed=51)
    current = current_jobs(500, 10, repeat_cv=0.015, drift_pct=0, job_cv=0.10, seed=52)
    first = codes_at_every_look(history, current)[0]
    assert (first == Decision.OUT_OF_REACH).mean() >= 0.9
    outcome = auto_history(history, current, DESIGN)
    assert outcome.pairs.mean() < 4.5 and outcome.regression.any(-1).mean() <= sequential.FAMILY_ALPHA


def jobs_of(center: float, spread: float, count: int = 5, repeats: int = 5, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [list(center * np.exp(rng.normal(0, spread) + rng.normal(0, 0.005, repeats))) for _ in range(count)]


def test_the_look_decides_a_level_from_values_and_says_so_in_repeats():
    design = Design(3, 10, family_size=3)
    history = {m: jobs_of(100.0, 0.003, seed=i) for i, m in enumerate(GATED)}
    same = {m: [100.0, 100.4, 99.7, 100.1] for m in GATED}
    early = look_history(history, {m: v[:2] for m, v in same.items()}, LOWER_BY_NAME, GATED, design, 2)
    assert not early.stop and set(early.decisions.values()) == {Decision.UNDECIDED}
    result = look_history(history, same, LOWER_BY_NAME, GATED, design, 4)
    assert result.stop and result.why == "decided" and set(result.decisions.values()) == {Decision.WITHIN}
    assert result.reason() == "all 3 gated metrics decided after 4 repeats"
    slower = {**same, "median_ttft_ms": [130.0, 131.0, 129.5, 130.4], "output_throughput": [70.0, 70.3, 69.8, 70.1]}
    verdict = look_history(history, slower, LOWER_BY_NAME, GATED, design, 4)
    assert verdict.decisions == {
        "median_ttft_ms": Decision.WORSE,
        "p99_ttft_ms": Decision.WITHIN,
        "output_throughput": Decision.WORSE,  # throughput down is worse
    }
    last = look_history(history, {m: [106.0] * 10 for m in GATED}, LOWER_BY_NAME, GATED, Design(3, 10, 3), 10)
    assert last.why in ("max_repeats", "decided") and last.unit == "repeats"


def test_a_wide_history_stops_the_level_as_out_of_reach_and_failed_repeats_count_towards_max():
    design = Design(3, 10, family_size=3)
    history = {m: jobs_of(100.0, 0.003, seed=i) for i, m in enumerate(GATED)}
    history["p99_ttft_ms"] = jobs_of(100.0, 0.15, seed=9)  # jobs 15% apart
    current = {m: [100.0, 100.4, 99.7] for m in GATED}
    result = look_history(history, current, LOWER_BY_NAME, GATED, design, 3)
    assert result.stop and result.why == "out_of_reach" and result.out_of_reach == ["p99_ttft_ms"]
    assert "p99_ttft_ms too noisy to settle within max_repeats" in result.reason()
    # Two usable repeats of three run: nothing is decided, and the third still counts towards max.
    failed = look_history(history, {m: v[:2] for m, v in current.items()}, LOWER_BY_NAME, GATED, design, 3)
    assert not failed.stop and set(failed.decisions.values()) == {Decision.UNDECIDED}
    # A metric with fewer than two usable baseline jobs is never decided.
    thin = {**history, "median_ttft_ms": [[100.0, 101.0]]}
    assert (
        look_history(thin, current, LOWER_BY_NAME, GATED, design, 3).decisions["median_ttft_ms"] is Decision.UNDECIDED
    )


def test_the_history_needs_auto_on_one_arm(tmp_path):
    suite = apply_overrides(load_suite("quick"), Overrides(repeats="auto"))
    fixed = load_suite("quick")
    check_run_config(RunConfig(model="m", engine="sim", suite=suite, output=tmp_path, history_dir=tmp_path))
    with pytest.raises(UsageError, match="--history-dir needs --repeats auto"):
        check_run_config(RunConfig(model="m", engine="sim", suite=fixed, output=tmp_path, history_dir=tmp_path))
    # The action downloads the history after its preflight: a single-arm auto run passes until then.
    check_run_config(RunConfig(model="m", engine="sim", suite=suite, output=tmp_path), history_to_come=True)


# --------------------------------------------------------------------------- the CLI, before any engine starts


def write_job(
    folder: Path, tests: tuple[str, ...] = ("latency-c1", "throughput-c8"), day: int = 1, engine: str = "sim"
) -> None:
    folder.mkdir(parents=True)
    results = [
        {"test_name": name, "run_number": run, "passed": True, "metrics": {"median_ttft_ms": 50.0 + run}, "errors": []}
        for name in tests
        for run in (1, 2, 3)
    ]
    document = {
        "schema_version": SCHEMA_VERSION,
        "suite_name": "quick",
        "timestamp": f"2026-12-0{day}T10:00:00Z",
        "engine": engine,
        "model": "m",
        "passed": True,
        "results": results,
    }
    (folder / "metrics.json").write_text(json.dumps(document))


def history_of(root: Path, jobs: int, **kw) -> Path:
    for index in range(jobs):
        write_job(root / f"{index + 1:02d}-run{100 + index}", day=index + 1, **kw)
    return root


@pytest.mark.parametrize(
    ("case", "extra", "fragments"),
    [
        ("missing", ("--repeats", "auto"), ("does not exist",)),
        ("empty", ("--repeats", "auto"), ("holds no result sets",)),
        ("two-jobs", ("--repeats", "auto"), ("holds 2 baseline jobs", "at least 3")),
        (
            "other-suite",
            ("--repeats", "auto"),
            ("latency-c1", "throughput-c8", "in fewer than 3 of the history's 3 jobs"),
        ),
        ("other-engine", ("--repeats", "auto"), ("only 0 of its 3 jobs measured", "engine sim", "engine vllm")),
        ("no-auto", ("--repeats", "5"), ("--history-dir needs --repeats auto",)),
        (
            "ab",
            ("--repeats", "auto", "--baseline-engine-arg=--slowdown=1"),
            ("--history-dir and an A/B baseline arm exclude each other",),
        ),
    ],
)
def test_the_cli_refuses_a_bad_history_in_one_line_before_anything_starts(tmp_path, case, extra, fragments):
    history = tmp_path / "history"
    if case == "empty":
        history.mkdir()
    elif case == "two-jobs":
        history_of(history, 2)
    elif case == "other-suite":
        history_of(history, 3, tests=("chat-c1",))
    elif case == "other-engine":
        history_of(history, 3, engine="vllm")
    elif case != "missing":
        history_of(history, 3)
    out = tmp_path / "out" / "r"
    done = run_kitt("run", "-m", "m", "-e", "sim", "-o", str(out), "--history-dir", str(history), *extra)
    assert done.returncode == 2, done.stderr
    assert_one_line_error(done.stderr, *fragments)
    assert not (tmp_path / "out").exists()  # nothing created, no engine started
