"""Seeded histories of CI jobs for the change-point search, shared by the tests and benchmarks/trend_accuracy.py.

The noise model is the gate simulation's (tests/gate_sim.py, DESIGN.md §10): every job shifts all
of its metrics together by a log-normal job effect (latencies up, throughput down, by the same
factor), and every repeat adds its own log-normal noise: ``value = true × job effect × repeat
noise``. A step multiplies the true latencies (and divides the throughput) of every job from
its index on, at every load level: serving got slower. Each job is a real in-memory
``kitt.results.ResultSet``, so the search runs through ``kitt.trend.analyse`` exactly as on a
downloaded history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from kitt.results import ResultSet, TestResult
from kitt.thresholds import LOWER, metric_direction
from kitt.trend import Trend, analyse

START = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)
LEVELS = (1, 8)


def true_values(concurrency: int) -> dict[str, float]:
    return {
        "median_ttft_ms": 30.0 + 4 * concurrency,
        "p99_ttft_ms": 80.0 + 9 * concurrency,
        "median_tpot_ms": 8.0 + 0.3 * concurrency,
        "p99_tpot_ms": 11.0 + 0.5 * concurrency,
        "median_itl_ms": 7.8 + 0.3 * concurrency,
        "p99_itl_ms": 15.0 + 0.6 * concurrency,
        "median_e2el_ms": 1050.0 + 40 * concurrency,
        "p99_e2el_ms": 1500.0 + 70 * concurrency,
        "output_throughput": 120.0 * concurrency**0.85,
    }


def _sigma(cv: float) -> float:
    return math.sqrt(math.log1p(cv * cv))


def job(
    index: int,
    effect: float,
    noise: np.ndarray,
    factor: float,
    *,
    levels: tuple[int, ...] = LEVELS,
    commit: str | None = None,
) -> ResultSet:
    """One job: ``effect`` (a log shift shared by all metrics), ``noise`` (levels × repeats × metrics,
    log) and the true slowdown ``factor`` from the steps so far."""
    results = []
    for li, level in enumerate(levels):
        for run in range(noise.shape[1]):
            metrics: dict[str, float | None] = {"concurrency": float(level)}
            for mi, (name, value) in enumerate(true_values(level).items()):
                sign = 1.0 if metric_direction(name) == LOWER else -1.0
                metrics[name] = value * factor**sign * math.exp(sign * effect + noise[li, run, mi])
            results.append(TestResult(f"chat-c{level}", run + 1, True, metrics))
    when = START + timedelta(hours=6 * index)
    return ResultSet(
        directory=Path(f"/sim/job-{index:03d}"),
        metrics_path=Path(f"/sim/job-{index:03d}/metrics.json"),
        schema_version=1,
        suite_name="standard",
        timestamp=when,
        engine="vllm",
        model="sim-model",
        passed=True,
        results=results,
        config={"commit": commit or f"{index:02d}{'c0ffee' * 6}"[:40], "branch": "main"},
    )


def history(
    jobs: int,
    *,
    steps: dict[int, float] | None = None,
    job_cv: float = 0.02,
    repeat_cv: float = 0.015,
    repeats: int = 5,
    levels: tuple[int, ...] = LEVELS,
    seed: int = 0,
) -> list[ResultSet]:
    """``jobs`` result sets, oldest first; ``steps`` maps a job index to the slowdown that starts there."""
    rng = np.random.default_rng(seed)
    tau, sigma = _sigma(job_cv), _sigma(repeat_cv)
    effects = rng.normal(0.0, tau, jobs)
    noise = rng.normal(0.0, sigma, (jobs, len(levels), repeats, len(true_values(1))))
    factor, out = 1.0, []
    for index in range(jobs):
        factor *= (steps or {}).get(index, 1.0)
        out.append(job(index, float(effects[index]), noise[index], factor, levels=levels))
    return out


@dataclass(frozen=True)
class Outcome:
    """One simulated history: were all true steps found within ±tolerance in every series, any false ones?"""

    all_found: bool
    series_found: int  # series x steps located within tolerance
    series_total: int
    false_points: int


def judge(trend: Trend, steps: dict[int, float], tolerance: int = 1) -> Outcome:
    found = 0
    for series in trend.series:
        for index in steps:
            found += any(
                c.test == series.test and c.metric == series.metric and abs(c.index - index) <= tolerance
                for c in trend.change_points
            )
    false = sum(1 for c in trend.change_points if not any(abs(c.index - i) <= tolerance for i in steps))
    total = len(trend.series) * len(steps)
    return Outcome(found == total, found, total, false)


def run(
    histories: int,
    *,
    jobs: int = 30,
    step_pct: float = 10.0,
    n_steps: int = 1,
    min_segment: int = 3,
    job_cv: float = 0.02,
    repeat_cv: float = 0.015,
    seed: int = 0,
    **analyse_args: object,
) -> list[Outcome]:
    """Simulate ``histories`` histories with ``n_steps`` steps (0: flat) at seeded random jobs."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for h in range(histories):
        steps: dict[int, float] = {}
        if n_steps == 1:
            steps = {int(rng.integers(min_segment, jobs - min_segment + 1)): 1 + step_pct / 100}
        elif n_steps == 2:  # two steps at least two segments apart, so both can be located
            first = int(rng.integers(min_segment, jobs - 3 * min_segment + 1))
            second = int(rng.integers(first + 2 * min_segment, jobs - min_segment + 1))
            steps = {first: 1 + step_pct / 100, second: 1 + step_pct / 100}
        sets = history(jobs, steps=steps, job_cv=job_cv, repeat_cv=repeat_cv, seed=seed * 100003 + h)
        outcomes.append(judge(analyse(sets, min_segment=min_segment, **analyse_args), steps))  # type: ignore[arg-type]
    return outcomes


def write(result_set: ResultSet, directory: Path) -> Path:
    """Write a simulated job to disk as ``kitt run`` would (metrics.json and config.json)."""
    from kitt.results import CONFIG_FILE, METRICS_FILE, metrics_document, utc_timestamp, write_json

    document = metrics_document(
        suite_name=result_set.suite_name,
        engine=result_set.engine,
        model=result_set.model,
        kitt_version="0.0.0-test",
        timestamp=utc_timestamp(result_set.timestamp),
        total_time_seconds=60.0,
        results=result_set.results,
        passed=result_set.passed,
    )
    write_json(directory / METRICS_FILE, document)
    write_json(directory / CONFIG_FILE, result_set.config)
    return directory
