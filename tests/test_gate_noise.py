"""The gate under real CI noise: a job effect shared by all metrics plus per-repeat noise (seeded).

Figures for every design are in docs/gate-noise.md (benchmarks/gate_noise.py); these tests hold
the goals: with 10 baseline jobs, A/A false alarms at most 1% whatever the drift; at 3% job-to-job
CV a 20% regression is caught at least 95% of the time; with no drift a 10% regression at least
95%; and the single-job iid case of the first wave does not regress.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from gate_sim import LOWER, METRICS, one_metric_worse, simulate
from kitt import gate, stats
from kitt.compare import compare_result_sets
from kitt.comparison import Verdict
from kitt.results import ResultSet
from kitt.results import TestResult as Result

REPORTS = 20_000  # sampling error about 0.07 points at 1%, 0.15 points at 95%
REPEAT_CV = 0.015


@pytest.mark.parametrize("job_cv", [0.0, 0.02, 0.03])
def test_ten_history_jobs_keep_a_a_false_alarms_at_one_percent(job_cv: float) -> None:
    rate = simulate(REPORTS, jobs=10, job_cv=job_cv, repeat_cv=REPEAT_CV, seed=11).any(axis=-1).mean()
    assert rate <= 0.01, f"A/A with 10 jobs at job CV {job_cv:.0%}: {rate:.2%}"


def test_ten_history_jobs_catch_a_20_percent_regression_at_3_percent_drift() -> None:
    caught = simulate(REPORTS, jobs=10, job_cv=0.03, repeat_cv=REPEAT_CV, shift=one_metric_worse(20), seed=12)[
        :, 0
    ].mean()
    assert caught >= 0.95, f"{caught:.1%}"


def test_ten_history_jobs_lose_nothing_without_drift() -> None:
    caught = simulate(REPORTS, jobs=10, job_cv=0.0, repeat_cv=0.03, shift=one_metric_worse(10), seed=13)[:, 0].mean()
    assert caught >= 0.95, f"{caught:.1%}"


def test_single_job_iid_case_does_not_regress() -> None:
    assert simulate(REPORTS * 3, jobs=1, job_cv=0.0, repeat_cv=0.03, seed=14).any(axis=-1).mean() <= 0.01
    assert (
        simulate(REPORTS * 3, jobs=1, job_cv=0.0, repeat_cv=0.03, shift=one_metric_worse(10), seed=15)[:, 0].mean()
        >= 0.95
    )


def test_one_baseline_job_cannot_tell_drift_from_change() -> None:
    # Why history exists: at 3% job-to-job drift the single-job test cries wolf, as measured on
    # the first wave (27 in 100). The report says so whenever it has only one job.
    rate = simulate(REPORTS, jobs=1, job_cv=0.03, repeat_cv=REPEAT_CV, seed=16).any(axis=-1).mean()
    assert rate > 0.15


def test_history_prior_is_capped_because_metrics_share_the_job_shift() -> None:
    # Uncapped, the prior treats nine metrics' job-level variances as independent evidence
    # although one job effect drives them all: false alarms rise above alpha with few jobs.
    assert gate.history_prior_cap(10) == 18.0
    capped = simulate(REPORTS, jobs=5, job_cv=0.03, repeat_cv=REPEAT_CV, seed=17).any(axis=-1).mean()
    assert capped <= 0.01


def _job(rng: np.random.Generator, when: datetime, effect: float, shift: dict[int, float] | None = None) -> ResultSet:
    names = [
        "median_ttft_ms",
        "p99_ttft_ms",
        "median_tpot_ms",
        "p99_tpot_ms",
        "median_itl_ms",
        "p99_itl_ms",
        "median_e2el_ms",
        "p99_e2el_ms",
        "output_throughput",
    ]
    results = []
    for run in range(1, 6):
        metrics = {}
        for index, name in enumerate(names):
            sign = 1.0 if LOWER[index] else -1.0
            noise = rng.normal(0.0, math.sqrt(math.log1p(REPEAT_CV**2)))
            metrics[name] = 100.0 * (shift or {}).get(index, 1.0) * math.exp(sign * effect + noise)
        results.append(Result("throughput-c8", run, True, metrics))
    return ResultSet(
        directory=Path("."),
        metrics_path=Path("metrics.json"),
        schema_version=1,
        suite_name="quick",
        timestamp=when,
        engine="vllm",
        model="tiny",
        passed=True,
        results=results,
        hardware={"fingerprint": "fp"},
    )


def test_compare_result_sets_decides_history_exactly_like_the_simulation_functions() -> None:
    """The real entry point with ten baseline jobs reaches the verdicts the simulated path computes."""
    rng = np.random.default_rng(18)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for trial in range(20):
        history = [_job(rng, start + timedelta(days=d), rng.normal(0, 0.03)) for d in range(10)]
        current = _job(
            rng, start + timedelta(days=11), rng.normal(0, 0.03), {trial % METRICS: 1.25} if trial % 2 else None
        )
        comparison = compare_result_sets(current, history)
        assert comparison.design == "history"
        rows = {r.metric: r for r in comparison.rows}
        names = list(rows)
        jobs = [[[r.metrics[m] for r in job.results] for job in history] for m in names]
        cur = [[r.metrics[m] for r in current.results] for m in names]
        summaries = np.array([stats.history_summary(j, c) for j, c in zip(jobs, cur)])
        test = stats.moderated_t(*summaries.T, confidence=None, max_d0=gate.history_prior_cap(10))
        expected = gate.gate_family(
            np.expm1(summaries[:, 0]) * 100, test.p_increase, test.p_decrease, LOWER, np.full(METRICS, 5.0)
        )
        assert [rows[m].verdict is Verdict.REGRESSION for m in names] == expected.regression.tolist()
        assert all(rows[m].method == "history t" for m in names)


# --------------------------------------------------------------------------- A/B in one job, under drift


def test_paired_a_b_holds_false_alarms_and_catches_ten_percent_under_drift() -> None:
    from gate_sim import simulate_ab

    # The runner's speed drifts by ±5% over the job (and the job itself is 3% off): 5 pairs.
    common = dict(pairs=5, drift_pct=5.0, repeat_cv=REPEAT_CV)
    assert simulate_ab(REPORTS, seed=21, **common).any(axis=-1).mean() <= 0.01
    assert simulate_ab(REPORTS, shift=one_metric_worse(10), seed=22, **common)[:, 0].mean() >= 0.95


def test_the_same_drift_judged_from_two_separate_runs_cries_wolf() -> None:
    from gate_sim import simulate_ab

    separate = simulate_ab(REPORTS, pairs=5, drift_pct=5.0, repeat_cv=REPEAT_CV, paired=False, seed=23)
    assert separate.any(axis=-1).mean() > 0.10


def test_pair_orders_are_balanced_and_seeded() -> None:
    from kitt.run import pair_orders

    for pairs in range(1, 12):
        orders = pair_orders(pairs, "seed:test-c8")
        assert len(orders) == pairs and abs(2 * sum(orders) - pairs) <= 1
        assert orders == pair_orders(pairs, "seed:test-c8")
    assert len({tuple(pair_orders(10, f"s{i}")) for i in range(20)}) > 1  # shuffled, not fixed
