"""Seeded simulation of capacity gated under CI noise, through kitt's own search and gate; shared
by tests/test_capacity_gate.py and benchmarks/capacity_gate.py.

The noise model is docs/gate-noise.md's: every job shifts the deployment's speed by a log-normal
job effect, the runner drifts within a job (a sine of ``drift_pct`` amplitude over the job's
repeat slots, random phase), and every repeat adds its own log-normal noise. A repeat's true knee
is ``knee x exp(job + drift + repeat)`` (a slower runner serves less, so capacity falls when
latencies rise), and what the repeat reports is what kitt's search (:class:`kitt.capacity.CapacitySearch`)
finds on it, told each probe's SLO ratio by an oracle (``load / knee``): over concurrency the
whole streams below the knee, over request rate a load within the search's precision below it.
Those per-repeat capacities become result sets exactly as the arm writes them (``capacity`` and
its bracket), and :func:`kitt.compare.compare_result_sets` judges them: A/B pairs in one job
(balanced order, both arms sharing the job and its drift), a history of baseline jobs, or one
baseline job.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from kitt.capacity import CapacitySearch, slo_ratio
from kitt.comparison import Verdict
from kitt.compare import compare_result_sets
from kitt.config import CapacitySpec
from kitt.results import ResultSet, TestResult

TEST = "chat-capacity"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPECS = {
    "concurrency": CapacitySpec("concurrency", 1, 32, {"p99_ttft_ms": 100.0}),
    "request_rate": CapacitySpec("request_rate", 1, 32, {"p99_ttft_ms": 100.0}),
}


def _sigma(cv: float) -> float:
    return math.sqrt(math.log1p(cv * cv))


@lru_cache(maxsize=None)
def _found(over: str, knee: float) -> tuple[float | None, float, float | None, float | None, int]:
    search = CapacitySearch(SPECS[over])
    while (load := search.next_load()) is not None:
        search.record(load, slo_ratio({"p99_ttft_ms": 100.0 * load / knee, "completed": 1.0}, SPECS[over].slo))
    o = search.outcome()
    return o.capacity, o.bound, o.lower, o.upper, o.probes


def search(over: str, knee: float) -> dict[str, float | None]:
    """What one repeat reports when its true knee is ``knee`` (rounded to 1e-6 so searches repeat)."""
    capacity, bound, lower, upper, probes = _found(over, round(knee, 6))
    return {
        "capacity": capacity,
        "capacity_bound": bound,
        "capacity_lower": lower,
        "capacity_upper": upper,
        "capacity_probes": float(probes),
    }


def result_set(values: list[dict[str, float | None]], day: int, ab: dict | None = None) -> ResultSet:
    results = [TestResult(TEST, run, True, metrics) for run, metrics in enumerate(values, start=1)]
    return ResultSet(
        directory=Path("."),
        metrics_path=Path("metrics.json"),
        schema_version=1,
        suite_name="capacity",
        timestamp=START + timedelta(days=day),
        engine="sim",
        model="tiny",
        passed=True,
        results=results,
        hardware={"fingerprint": "fp"},
        config={"ab": ab} if ab is not None else {},
    )


def verdict(current: ResultSet, baseline: ResultSet | list[ResultSet]) -> Verdict:
    comparison = compare_result_sets(current, baseline)
    (row,) = [r for r in comparison.rows if r.metric == "capacity"]
    return row.verdict


def _drift(rng: np.random.Generator, slots: int, drift_pct: float) -> np.ndarray:
    return np.log1p(drift_pct / 100 * np.sin(2 * np.pi * np.arange(slots) / slots + rng.uniform(0, 2 * np.pi)))


def _job(
    rng: np.random.Generator, over: str, knee: float, repeats: int, job_cv: float, repeat_cv: float, drift_pct: float
) -> list[dict[str, float | None]]:
    noise = (
        rng.normal(0.0, _sigma(job_cv)) + _drift(rng, repeats, drift_pct) + rng.normal(0.0, _sigma(repeat_cv), repeats)
    )
    return [search(over, knee * math.exp(e)) for e in noise]


def simulate(
    reports: int,
    design: str,
    *,
    over: str,
    base_knee: float = 8.5,
    cur_knee: float = 8.5,
    repeats: int = 5,
    jobs: int = 10,
    job_cv: float = 0.03,
    repeat_cv: float = 0.015,
    drift_pct: float = 5.0,
    seed: int = 0,
) -> list[Verdict]:
    """The capacity verdict of ``reports`` simulated reports of one design: "ab" (``repeats`` pairs
    in one job), "history" (``jobs`` baseline jobs) or "single" (one baseline job). Over
    concurrency a knee of 8.5 is 8 slots (8 streams meet the goal, 9 do not)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reports):
        if design == "ab":
            job = rng.normal(0.0, _sigma(job_cv))
            drift = _drift(rng, 2 * repeats, drift_pct)
            first = rng.permutation([True] * ((repeats + 1) // 2) + [False] * (repeats // 2))  # baseline first
            base, cur = [], []
            for pair, baseline_first in enumerate(first):
                b_slot, c_slot = (2 * pair, 2 * pair + 1) if baseline_first else (2 * pair + 1, 2 * pair)
                sigma = _sigma(repeat_cv)
                base.append(search(over, base_knee * math.exp(job + drift[b_slot] + rng.normal(0.0, sigma))))
                cur.append(search(over, cur_knee * math.exp(job + drift[c_slot] + rng.normal(0.0, sigma))))
            positions = {TEST: [1 if f else 0 for f in first]}  # the candidate's place in each pair
            out.append(
                verdict(
                    result_set(cur, 0, {"run_id": "r", "arm": "candidate", "positions": positions}),
                    result_set(base, 0, {"run_id": "r", "arm": "baseline", "positions": positions}),
                )
            )
            continue
        count = jobs if design == "history" else 1
        history = [
            result_set(_job(rng, over, base_knee, repeats, job_cv, repeat_cv, drift_pct), day) for day in range(count)
        ]
        current = result_set(_job(rng, over, cur_knee, repeats, job_cv, repeat_cv, drift_pct), count + 1)
        out.append(verdict(current, history if design == "history" else history[0]))
    return out


def rate(verdicts: list[Verdict], which: Verdict = Verdict.REGRESSION) -> float:
    return sum(v is which for v in verdicts) / len(verdicts)
