"""Seeded simulation of the gate under real CI noise, shared by the tests and benchmarks/gate_noise.py.

The noise model (DESIGN.md §10): every job shifts all of its metrics together by a log-normal job
effect (latencies up, throughput down, by the same factor), and every repeat adds its own
log-normal noise. ``value = true × job_effect × repeat_noise``. The current job is one more job
of the same kind, with ``shift`` applied to its true values. The decision is made by the very
functions the gate uses: kitt.stats (log_summary / history_terms, moderated_t) and
kitt.gate (the history prior's cap, gate_family).
"""

from __future__ import annotations

import math

import numpy as np

from kitt import gate, stats

METRICS = 9  # the default gated family: eight latencies (lower is better) and output throughput
LOWER = np.array([True] * 8 + [False])
SIGN = np.where(LOWER, 1.0, -1.0)  # a slower job raises latencies and lowers throughput


def _sigma(cv: float) -> float:
    return math.sqrt(math.log1p(cv * cv))


def simulate(
    reports: int,
    *,
    jobs: int,
    job_cv: float,
    repeat_cv: float,
    shift: np.ndarray | None = None,
    repeats: int = 5,
    threshold_pct: float = 5.0,
    seed: int = 0,
) -> np.ndarray:
    """Regressions flagged, shaped (reports, METRICS), for ``jobs`` baseline jobs (1: the single-job test)."""
    rng = np.random.default_rng(seed)
    shift = np.ones(METRICS) if shift is None else np.asarray(shift, float)
    tau, sigma = _sigma(job_cv), _sigma(repeat_cv)
    base_jobs = rng.normal(0.0, tau, (reports, 1, jobs, 1)) * SIGN[None, :, None, None]
    base = base_jobs + rng.normal(0.0, sigma, (reports, METRICS, jobs, repeats))
    cur_job = rng.normal(0.0, tau, (reports, 1, 1)) * SIGN[None, :, None]
    cur = cur_job + rng.normal(0.0, sigma, (reports, METRICS, repeats)) + np.log(shift)[None, :, None]
    full = np.ones((reports, METRICS))
    if jobs >= gate.MIN_HISTORY:
        within_ss = ((base - base.mean(-1, keepdims=True)) ** 2).sum((-1, -2)) + (
            (cur - cur.mean(-1, keepdims=True)) ** 2
        ).sum(-1)
        within_df = full * (jobs * (repeats - 1) + repeats - 1)
        delta, s2, df, scale = stats.history_terms(
            base.mean(-1), full[..., None] * repeats, within_ss, within_df, cur.mean(-1), full * repeats
        )
        test = stats.moderated_t(delta, s2, df, scale, confidence=None, max_d0=gate.history_prior_cap(jobs))
        change = np.expm1(delta) * 100
    else:
        newest = base[:, :, 0, :]
        delta = cur.mean(-1) - newest.mean(-1)
        s2 = (newest.var(-1, ddof=1) + cur.var(-1, ddof=1)) / 2
        test = stats.moderated_t(delta, s2, full * (2 * repeats - 2), full * math.sqrt(2 / repeats), confidence=None)
        change = np.expm1(delta) * 100
    decision = gate.gate_family(change, test.p_increase, test.p_decrease, LOWER, full * threshold_pct)
    return decision.regression


def one_metric_worse(percent: float, metric: int = 0) -> np.ndarray:
    shift = np.ones(METRICS)
    shift[metric] = 1 + percent / 100 if LOWER[metric] else 1 / (1 + percent / 100)
    return shift


def simulate_ab(
    reports: int,
    *,
    pairs: int,
    drift_pct: float,
    repeat_cv: float,
    shift: np.ndarray | None = None,
    paired: bool = True,
    job_cv: float = 0.03,
    threshold_pct: float = 5.0,
    seed: int = 0,
) -> np.ndarray:
    """Regressions flagged, shaped (reports, METRICS), for both arms measured in one job.

    Within the job the runner's speed drifts: a sine of ``drift_pct`` amplitude with a random
    phase over the job's ``2 * pairs`` repeat slots (shared by every metric, latencies up and
    throughput down), on top of the job's own shift and each repeat's noise.
    ``paired``: the arms run as back-to-back pairs in balanced shuffled order and the gate tests
    the per-pair differences (kitt.stats.paired_summary's arithmetic, vectorised). Otherwise the
    baseline's repeats all run first and the candidate's after, as two sequential runs would, and
    the gate compares them unpaired, as it compares two separate result sets.
    """
    rng = np.random.default_rng(seed)
    shift = np.ones(METRICS) if shift is None else np.asarray(shift, float)
    slots = 2 * pairs
    phase = rng.uniform(0, 2 * np.pi, (reports, 1))
    drift = np.log1p(drift_pct / 100 * np.sin(2 * np.pi * np.arange(slots)[None, :] / slots + phase))  # (R, slots)
    job = rng.normal(0.0, _sigma(job_cv), (reports, 1))
    if paired:
        first = np.zeros((reports, pairs), dtype=bool)
        first[:, : (pairs + 1) // 2] = True
        first = rng.permuted(first, axis=1)  # True: baseline first in the pair
        base_slot = 2 * np.arange(pairs)[None, :] + np.where(first, 0, 1)
        cur_slot = 2 * np.arange(pairs)[None, :] + np.where(first, 1, 0)
    else:
        base_slot = np.broadcast_to(np.arange(pairs), (reports, pairs))
        cur_slot = base_slot + pairs
    sigma = _sigma(repeat_cv)

    def side(slot: np.ndarray) -> np.ndarray:
        common = (job + np.take_along_axis(drift, slot, axis=1))[:, None, :] * SIGN[None, :, None]
        return common + rng.normal(0.0, sigma, (reports, METRICS, pairs))

    base, cur = side(base_slot), side(cur_slot) + np.log(shift)[None, :, None]
    full = np.ones((reports, METRICS))
    if paired:
        diff = cur - base
        delta, s2 = diff.mean(-1), diff.var(-1, ddof=1)
        test = stats.moderated_t(
            delta,
            s2,
            full * (pairs - 1),
            full * math.sqrt(1 / pairs),
            confidence=None,
            max_d0=gate.HISTORY_PRIOR_WEIGHT * (pairs - 1),
        )
    else:
        delta = cur.mean(-1) - base.mean(-1)
        s2 = (base.var(-1, ddof=1) + cur.var(-1, ddof=1)) / 2
        test = stats.moderated_t(delta, s2, full * (2 * pairs - 2), full * math.sqrt(2 / pairs), confidence=None)
    return gate.gate_family(
        np.expm1(delta) * 100, test.p_increase, test.p_decrease, LOWER, full * threshold_pct
    ).regression
