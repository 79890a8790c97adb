"""Seeded simulation of A/B jobs judged with a fixed number of pairs or sequentially (``--repeats auto``),
shared by tests/test_sequential.py and benchmarks/gpu_minutes.py.

The noise model is docs/gate-noise.md's and docs/ab.md's: each job shifts every metric by a
log-normal job effect (latencies up, throughput down), each repeat adds log-normal noise, and
the runner's speed drifts within the job by a sine of the wall clock (here: of the repeat slot,
``period_pairs`` pairs per period, random phase), shared by every metric and both arms. The two
arms run as back-to-back pairs, balanced at every stop (``kitt.sequential.pair_orders``).

The verdict is the report's: after the run stops, the gate's paired test (kitt.stats.moderated_t
with the prior capped as kitt.gate caps it, kitt.gate.gate_family with Holm) on the pairs that
ran. So a false alarm counts wherever it comes from, the sequential decision or the final test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kitt import gate, sequential, stats

METRICS = 9
LOWER = np.array([True] * 8 + [False])
SIGN = np.where(LOWER, 1.0, -1.0)


def _sigma(cv: float) -> float:
    return math.sqrt(math.log1p(cv * cv))


def one_metric_worse(percent: float, metric: int = 0) -> np.ndarray:
    shift = np.ones(METRICS)
    shift[metric] = 1 + percent / 100 if LOWER[metric] else 1 / (1 + percent / 100)
    return shift


def pair_diffs(
    jobs: int,
    pairs: int,
    *,
    repeat_cv: float,
    drift_pct: float,
    period_pairs: float = 10.0,
    job_cv: float = 0.03,
    shift: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Per-pair log differences (candidate - baseline), shaped (jobs, METRICS, pairs)."""
    rng = np.random.default_rng(seed)
    shift = np.ones(METRICS) if shift is None else np.asarray(shift, float)
    slots = np.arange(2 * pairs)[None, :]
    phase = rng.uniform(0, 2 * np.pi, (jobs, 1))
    drift = np.log1p(drift_pct / 100 * np.sin(2 * np.pi * slots / (2 * period_pairs) + phase))
    job = rng.normal(0.0, _sigma(job_cv), (jobs, 1))
    # Balanced in every block of two pairs: one baseline-first, one candidate-first, in random order.
    first_of_block = rng.random((jobs, (pairs + 1) // 2)) < 0.5
    first = np.stack([first_of_block, ~first_of_block], axis=-1).reshape(jobs, -1)[:, :pairs]
    base_slot = 2 * np.arange(pairs)[None, :] + np.where(first, 0, 1)
    cur_slot = 2 * np.arange(pairs)[None, :] + np.where(first, 1, 0)
    sigma = _sigma(repeat_cv)

    def side(slot: np.ndarray) -> np.ndarray:
        common = (job + np.take_along_axis(drift, slot, axis=1))[:, None, :] * SIGN[None, :, None]
        return common + rng.normal(0.0, sigma, (jobs, METRICS, pairs))

    return side(cur_slot) + np.log(shift)[None, :, None] - side(base_slot)


def report_regressions(diffs: np.ndarray, threshold_pct: float = 5.0) -> np.ndarray:
    """The report's verdict on these pairs: regressions flagged, shaped (jobs, METRICS)."""
    n = diffs.shape[-1]
    full = np.ones(diffs.shape[:-1])
    delta, s2 = diffs.mean(-1), diffs.var(-1, ddof=1)
    test = stats.moderated_t(
        delta, s2, full * (n - 1), full * math.sqrt(1 / n), confidence=None, max_d0=gate.HISTORY_PRIOR_WEIGHT * (n - 1)
    )
    return gate.gate_family(
        np.expm1(delta) * 100, test.p_increase, test.p_decrease, LOWER, full * threshold_pct
    ).regression


@dataclass(frozen=True)
class Outcome:
    regression: np.ndarray  # (jobs, METRICS): the report's verdict after the stop
    pairs: np.ndarray  # (jobs,): pairs run


def fixed(diffs: np.ndarray, pairs: int, threshold_pct: float = 5.0) -> Outcome:
    return Outcome(report_regressions(diffs[..., :pairs], threshold_pct), np.full(diffs.shape[0], pairs))


def auto(diffs: np.ndarray, design: sequential.Design, threshold_pct: float = 5.0) -> Outcome:
    """Look after every pair from ``min_pairs``; stop when every metric is decided or at ``max_pairs``."""
    jobs = diffs.shape[0]
    stopped = np.full(jobs, design.max_pairs)
    done = np.zeros(jobs, dtype=bool)
    for n in range(design.min_pairs, design.max_pairs):
        codes = sequential.decide(diffs[..., :n], LOWER, threshold_pct, design)
        now = ~done & (codes != sequential.Decision.UNDECIDED).all(-1)  # decided or out of reach
        stopped[now] = n
        done |= now
    regression = np.zeros((jobs, METRICS), dtype=bool)
    for n in np.unique(stopped):
        rows = stopped == n
        regression[rows] = report_regressions(diffs[rows][..., :n], threshold_pct)
    return Outcome(regression, stopped)


# --------------------------------------------------------------------------- against a history (single arm)


@dataclass(frozen=True)
class History:
    """K simulated baseline jobs per simulated current job, as the history test takes them (log scale)."""

    means: np.ndarray  # (jobs, METRICS, K): each baseline job's mean log value
    sizes: np.ndarray  # (K,): its repeats
    within_ss: np.ndarray  # (jobs, METRICS): the pooled within-job sum of squares
    within_df: np.ndarray  # (jobs, METRICS)


def _job_logs(
    rng: np.random.Generator, jobs: int, repeats: int, *, repeat_cv: float, drift_pct: float, job_cv: float
) -> np.ndarray:
    """Log values of one single-arm job per row, (jobs, METRICS, repeats): a job effect shared by
    every metric, the runner's drift (a sine of the repeat slot, one period per 20 repeats, as one
    per 10 pairs is for A/B), each repeat's own noise."""
    slots = np.arange(repeats)[None, :]
    phase = rng.uniform(0, 2 * np.pi, (jobs, 1))
    drift = np.log1p(drift_pct / 100 * np.sin(2 * np.pi * slots / 20.0 + phase))
    job = rng.normal(0.0, _sigma(job_cv), (jobs, 1))
    common = (job + drift)[:, None, :] * SIGN[None, :, None]
    return common + rng.normal(0.0, _sigma(repeat_cv), (jobs, METRICS, repeats))


def history_jobs(
    jobs: int,
    baseline_jobs: int = 10,
    baseline_repeats: int = 5,
    *,
    repeat_cv: float,
    drift_pct: float,
    job_cv: float = 0.03,
    seed: int = 0,
) -> History:
    """Each simulated current job's history: ``baseline_jobs`` jobs of ``baseline_repeats`` repeats."""
    rng = np.random.default_rng(seed)
    logs = np.stack(
        [
            _job_logs(rng, jobs, baseline_repeats, repeat_cv=repeat_cv, drift_pct=drift_pct, job_cv=job_cv)
            for _ in range(baseline_jobs)
        ],
        axis=-2,
    )  # (jobs, METRICS, K, repeats)
    means = logs.mean(-1)
    within_ss = ((logs - means[..., None]) ** 2).sum((-1, -2))
    return History(
        means,
        np.full(baseline_jobs, float(baseline_repeats)),
        within_ss,
        np.full(within_ss.shape, baseline_jobs * (baseline_repeats - 1.0)),
    )


def current_jobs(
    jobs: int,
    repeats: int,
    *,
    repeat_cv: float,
    drift_pct: float,
    job_cv: float = 0.03,
    shift: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The current jobs' log values, (jobs, METRICS, repeats), with ``shift`` applied to each metric."""
    rng = np.random.default_rng(seed)
    shift = np.ones(METRICS) if shift is None else np.asarray(shift, float)
    logs = _job_logs(rng, jobs, repeats, repeat_cv=repeat_cv, drift_pct=drift_pct, job_cv=job_cv)
    return logs + np.log(shift)[None, :, None]


def report_history_regressions(history: History, current: np.ndarray, threshold_pct: float = 5.0) -> np.ndarray:
    """The report's verdict on these repeats against the history (kitt.gate's history test, its
    prior cap and Holm over the family): regressions flagged, (jobs, METRICS)."""
    n = current.shape[-1]
    cur_mean = current.mean(-1)
    ss = history.within_ss + ((current - cur_mean[..., None]) ** 2).sum(-1)
    df = history.within_df + (n - 1)
    delta, s2, k_df, scale = stats.history_terms(history.means, history.sizes, ss, df, cur_mean, np.float64(n))
    k = history.means.shape[-1]
    test = stats.moderated_t(delta, s2, k_df, scale, confidence=None, max_d0=gate.history_prior_cap(k))
    full = np.ones(delta.shape)
    return gate.gate_family(
        np.expm1(delta) * 100, test.p_increase, test.p_decrease, LOWER, full * threshold_pct
    ).regression


def fixed_history(history: History, current: np.ndarray, repeats: int, threshold_pct: float = 5.0) -> Outcome:
    regression = report_history_regressions(history, current[..., :repeats], threshold_pct)
    return Outcome(regression, np.full(current.shape[0], repeats))


def _rows(history: History, rows: np.ndarray) -> History:
    return History(history.means[rows], history.sizes, history.within_ss[rows], history.within_df[rows])


def auto_history(
    history: History, current: np.ndarray, design: sequential.Design, threshold_pct: float = 5.0
) -> Outcome:
    """Look after every repeat from ``min_repeats``; stop when no metric is undecided or at ``max_repeats``."""
    jobs = current.shape[0]
    stopped = np.full(jobs, design.max_pairs)
    done = np.zeros(jobs, dtype=bool)
    for n in range(design.min_pairs, design.max_pairs):
        codes = sequential.decide_history(
            history.means,
            history.sizes,
            history.within_ss,
            history.within_df,
            current[..., :n],
            LOWER,
            threshold_pct,
            design,
        )
        now = ~done & (codes != sequential.Decision.UNDECIDED).all(-1)
        stopped[now] = n
        done |= now
    regression = np.zeros((jobs, METRICS), dtype=bool)
    for n in np.unique(stopped):
        rows = stopped == n
        regression[rows] = report_history_regressions(_rows(history, rows), current[rows][..., :n], threshold_pct)
    return Outcome(regression, stopped)
