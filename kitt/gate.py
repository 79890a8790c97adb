"""The regression gate's decision over one family of metrics: tests, Holm, thresholds, verdicts.

Each gated metric arrives as a :class:`Pending` item with its samples and the design it can be
tested under:

- ``history t``: three or more baseline jobs. The current job is judged against the spread of
  the baseline jobs' means (a prediction interval, ``kitt.stats.history_terms``), so the shift
  that every CI job gives all of its metrics is measured, not mistaken for a change.
- ``paired t``: an A/B run in one job (``kitt run --baseline-…``): the two arms' repeats ran as
  back-to-back pairs in balanced order, and the test is on the per-pair log differences, so the
  job's shift and slow drift cancel.
- ``moderated t``: one baseline job, two or more repeats a side. Only the repeats' noise is
  measured; a shift of the whole job is not (the report says so).
- ``threshold only``: one repeat on a side; the plain threshold decides.

Variances are moderated across the metrics of a design (Smyth's empirical-Bayes prior). The
metrics of one job share its shift, so their job-level variances are not independent: the
history prior may count for at most ``HISTORY_PRIOR_WEIGHT`` metrics' worth of jobs (measured,
docs/gate-noise.md). One-sided p-values of every design then go through Holm's procedure
together, bounding the chance of any false alarm in the report by ``alpha``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from kitt import stats
from kitt.thresholds import LOWER

if TYPE_CHECKING:
    from kitt.comparison import MetricRow

FAMILY_ALPHA = 0.01
CONFIDENCE = 0.95
MIN_HISTORY = 3
HISTORY_PRIOR_WEIGHT = 2.0
# Beyond this many repeats a side, more repeats are not a practical way to settle a verdict.
MAX_SUGGESTED_REPEATS = 50

HISTORY, PAIRED, SINGLE, THRESHOLD = "history t", "paired t", "moderated t", "threshold only"


@dataclass
class Pending:
    """A gated row waiting for the family's decision, with its samples on the log or raw scale."""

    row: MetricRow
    base: list[float]  # the newest baseline job's repeats
    cur: list[float]
    jobs: list[list[float]]  # every baseline job's repeats, newest first (history design)
    method: str = SINGLE
    pairs: list[tuple[float, float]] | None = None  # (baseline, current) per kept A/B pair


def beyond_threshold(change_pct: Any, lower_is_better: Any, threshold_pct: Any) -> tuple[np.ndarray, np.ndarray]:
    """(worse, better): is the change past the threshold in the worse or the better direction?"""
    change, lower, limit = np.asarray(change_pct, float), np.asarray(lower_is_better, bool), np.asarray(threshold_pct, float)
    worse = np.where(lower, change > limit, change < -limit)
    better = np.where(lower, change < -limit, change > limit)
    return worse, better


@dataclass(frozen=True)
class GateDecision:
    """The gate's rule applied to a family (the last axis); p-values are Holm-adjusted."""

    regression: np.ndarray
    improvement: np.ndarray
    worse_beyond: np.ndarray
    better_beyond: np.ndarray
    p_worse: np.ndarray
    p_better: np.ndarray


def gate_family(
    change_pct: np.ndarray,
    p_increase: np.ndarray,
    p_decrease: np.ndarray,
    lower_is_better: np.ndarray,
    threshold_pct: np.ndarray,
    alpha: float = FAMILY_ALPHA,
) -> GateDecision:
    """A regression is past its threshold in the worse direction AND significant after Holm's
    correction over the whole family; improvements are judged the same way, on their own side,
    so an improvement can never fail the gate. Works on any leading axes (the simulation)."""
    lower = np.asarray(lower_is_better, bool)
    p_worse = stats.holm_adjust(np.where(lower, p_increase, p_decrease))
    p_better = stats.holm_adjust(np.where(lower, p_decrease, p_increase))
    worse, better = beyond_threshold(change_pct, lower, threshold_pct)
    return GateDecision(worse & (p_worse <= alpha), better & (p_better <= alpha), worse, better, p_worse, p_better)


def history_prior_cap(jobs: int) -> float:
    """The most degrees of freedom the history prior may add: ``HISTORY_PRIOR_WEIGHT`` metrics' worth."""
    return HISTORY_PRIOR_WEIGHT * (jobs - 1)


@dataclass(frozen=True)
class _Tested:
    items: list[Pending]
    test: stats.FamilyTest
    log: bool


def judge(items: list[Pending], alpha: float = FAMILY_ALPHA) -> dict[str, float]:
    """Test, correct and judge every pending row in place; return the log-scale prior (for the report)."""
    from kitt.comparison import Reason, Verdict

    for item in items:
        if item.method == THRESHOLD:
            worse, better = beyond_threshold(item.row.change_pct, item.row.direction == LOWER, item.row.threshold_pct)
            item.row.verdict = Verdict.REGRESSION if worse else Verdict.IMPROVEMENT if better else Verdict.UNCHANGED
            item.row.reason = Reason.SINGLE_REPEAT
    tested = _run_tests([i for i in items if i.method != THRESHOLD])
    ordered = [item for group in tested for item in group.items]
    if not ordered:
        return {}
    decision = gate_family(
        np.array([p.row.change_pct for p in ordered], dtype=float),
        np.concatenate([g.test.p_increase for g in tested]),
        np.concatenate([g.test.p_decrease for g in tested]),
        np.array([p.row.direction == LOWER for p in ordered]),
        np.array([p.row.threshold_pct for p in ordered], dtype=float),
        alpha,
    )
    z_settle = NormalDist().inv_cdf(1.0 - alpha / len(ordered))
    index = 0
    for group in tested:
        for position, item in enumerate(group.items):
            row = item.row
            low, high = float(group.test.ci_low[position]), float(group.test.ci_high[position])
            row.ci_low_pct, row.ci_high_pct = _interval(item, low, high, group.log)
            moved_better = (row.change_pct or 0.0) < 0 if row.direction == LOWER else (row.change_pct or 0.0) > 0
            row.p_value = float((decision.p_better if moved_better else decision.p_worse)[index])
            if decision.regression[index]:
                row.verdict, row.reason = Verdict.REGRESSION, Reason.SIGNIFICANT
            elif decision.improvement[index]:
                row.verdict, row.reason = Verdict.IMPROVEMENT, Reason.SIGNIFICANT
            elif decision.worse_beyond[index] or decision.better_beyond[index]:
                row.verdict, row.reason = Verdict.INCONCLUSIVE, Reason.WITHIN_NOISE
                if item.method in (SINGLE, PAIRED) and group.log:
                    row.repeats_to_settle = _repeats_to_settle(item, float(group.test.se[position]), z_settle)
            else:
                row.verdict, row.reason = Verdict.UNCHANGED, Reason.WITHIN_THRESHOLD
            index += 1
    return _prior_summary(tested)


def _run_tests(items: list[Pending]) -> list[_Tested]:
    """One moderated t per design and scale: a prior is fitted only across like variances."""
    groups: list[_Tested] = []
    history = [i for i in items if i.method == HISTORY]
    if history:
        summaries = np.array([stats.history_summary(i.jobs, i.cur) for i in history]).reshape(-1, 4)
        cap = history_prior_cap(min(len(i.jobs) for i in history))
        groups.append(_Tested(history, stats.moderated_t(*summaries.T, confidence=CONFIDENCE, max_d0=cap), True))
    paired = [i for i in items if i.method == PAIRED]
    if paired:
        summaries = np.array([stats.paired_summary(*zip(*(i.pairs or []))) for i in paired]).reshape(-1, 4)
        # The metrics of one pair share what happened to that pair, like those of one job.
        cap = HISTORY_PRIOR_WEIGHT * min(len(i.pairs or []) - 1 for i in paired)
        groups.append(_Tested(paired, stats.moderated_t(*summaries.T, confidence=CONFIDENCE, max_d0=cap), True))
    single = [i for i in items if i.method == SINGLE]
    log_rows = [i for i in single if min(i.base + i.cur) > 0]
    linear_rows = [i for i in single if min(i.base + i.cur) <= 0]
    if log_rows:
        summaries = np.array([stats.log_summary(i.base, i.cur) for i in log_rows]).reshape(-1, 4)
        groups.append(_Tested(log_rows, stats.moderated_t(*summaries.T, confidence=CONFIDENCE), True))
    if linear_rows:
        # Values at or below zero (counts such as `failed`) have no logarithm: a plain t on the raw scale.
        summaries = np.array([stats.linear_summary(i.base, i.cur) for i in linear_rows]).reshape(-1, 4)
        groups.append(_Tested(linear_rows, stats.moderated_t(*summaries.T, confidence=CONFIDENCE, min_family=10**9), False))
    return groups


def _interval(item: Pending, low: float, high: float, log: bool) -> tuple[float | None, float | None]:
    if log:
        return math.expm1(low) * 100, math.expm1(high) * 100
    base = float(np.mean(item.base))
    if base == 0:
        return None, None
    return low / abs(base) * 100.0, high / abs(base) * 100.0


def _repeats_to_settle(item: Pending, se: float, z: float) -> int | None:
    """Repeats a side that would make this change significant if it is real (the standard
    error shrinks with the square root of the repeats), or None when more than is practical."""
    delta = abs(math.log1p((item.row.change_pct or 0.0) / 100.0))
    if not (delta > 0 and math.isfinite(se)):
        return None
    n = len(item.pairs) if item.pairs is not None else min(len(item.base), len(item.cur))
    needed = math.ceil(n * (z * se / delta) ** 2)
    return needed if needed <= MAX_SUGGESTED_REPEATS else None


def _prior_summary(tested: list[_Tested]) -> dict[str, float]:
    for group in tested:
        prior = group.test.prior
        inliers = ~prior.outlier & (prior.d0 > 0)
        if group.log and inliers.any():
            return {"d0": float(prior.d0[inliers][0]), "s0_pct": 100.0 * math.sqrt(float(prior.s0_sq[inliers][0])),
                    "outliers": float(prior.outlier.sum())}  # fmt: skip
    return {}
