"""The regression gate's decision over one family of metrics: tests, Holm, thresholds, verdicts.

Each gated metric arrives as a :class:`Candidate` with its change, its threshold, its samples and
the design ``kitt.compare`` chose for it:

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
from typing import Any, Sequence

import numpy as np

from kitt import stats
from kitt.comparison import FAMILY_ALPHA, Design, Reason, Verdict
from kitt.comparison import MIN_HISTORY as MIN_HISTORY  # the comparison's constant, read here by the simulations

CONFIDENCE = 0.95
HISTORY_PRIOR_WEIGHT = 2.0
# Beyond this many repeats a side, more repeats are not a practical way to settle a verdict.
MAX_SUGGESTED_REPEATS = 50

HISTORY, PAIRED, SINGLE, THRESHOLD = Design.HISTORY, Design.PAIRED, Design.SINGLE, Design.THRESHOLD


@dataclass(frozen=True)
class Candidate:
    """A gated metric waiting for the family's decision: its change, its rule and its samples."""

    design: Design
    change_pct: float
    lower_is_better: bool
    threshold_pct: float
    base: Sequence[float]  # the newest baseline job's repeats
    cur: Sequence[float]
    jobs: Sequence[Sequence[float]] = ()  # every baseline job's repeats, newest first (history design)
    pairs: Sequence[tuple[float, float]] | None = None  # (baseline, current) per kept A/B pair


@dataclass(frozen=True)
class Decision:
    """The gate's answer for one candidate; changes and intervals in percent, p Holm-adjusted."""

    verdict: Verdict
    reason: Reason
    p_value: float | None = None  # one-sided, in the direction the metric moved
    ci_low_pct: float | None = None
    ci_high_pct: float | None = None
    repeats_to_settle: int | None = None  # inconclusive: repeats a side that would decide it


@dataclass(frozen=True)
class Judgement:
    """One decision per candidate, in the candidates' order, and the log-scale prior (for the report)."""

    decisions: tuple[Decision, ...]
    prior: dict[str, float]


def beyond_threshold(change_pct: Any, lower_is_better: Any, threshold_pct: Any) -> tuple[np.ndarray, np.ndarray]:
    """(worse, better): is the change past the threshold in the worse or the better direction?"""
    change, lower, limit = (
        np.asarray(change_pct, float),
        np.asarray(lower_is_better, bool),
        np.asarray(threshold_pct, float),
    )
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
    items: list[tuple[int, Candidate]]  # (place among the candidates, candidate)
    test: stats.FamilyTest
    log: bool


def judge(candidates: Sequence[Candidate], alpha: float = FAMILY_ALPHA) -> Judgement:
    """Test, correct and judge every candidate; changes nothing it is given."""
    decisions: dict[int, Decision] = {}
    for index, item in enumerate(candidates):
        if item.design is THRESHOLD:
            worse, better = beyond_threshold(item.change_pct, item.lower_is_better, item.threshold_pct)
            verdict = Verdict.REGRESSION if worse else Verdict.IMPROVEMENT if better else Verdict.UNCHANGED
            decisions[index] = Decision(verdict, Reason.SINGLE_REPEAT)
    tested = _run_tests([(i, c) for i, c in enumerate(candidates) if c.design is not THRESHOLD])
    ordered = [item for group in tested for _, item in group.items]
    if ordered:
        decision = gate_family(
            np.array([c.change_pct for c in ordered], dtype=float),
            np.concatenate([g.test.p_increase for g in tested]),
            np.concatenate([g.test.p_decrease for g in tested]),
            np.array([c.lower_is_better for c in ordered]),
            np.array([c.threshold_pct for c in ordered], dtype=float),
            alpha,
        )
        z_settle = NormalDist().inv_cdf(1.0 - alpha / len(ordered))
        family = 0
        for group in tested:
            for position, (index, item) in enumerate(group.items):
                decisions[index] = _decide(item, group, position, decision, family, z_settle)
                family += 1
    return Judgement(tuple(decisions[i] for i in range(len(candidates))), _prior_summary(tested))


def _decide(
    item: Candidate, group: _Tested, position: int, decision: GateDecision, family: int, z_settle: float
) -> Decision:
    """One tested candidate's verdict from the family's decision (``family``: its place in it)."""
    low, high = _interval(item, float(group.test.ci_low[position]), float(group.test.ci_high[position]), group.log)
    moved_better = (item.change_pct or 0.0) < 0 if item.lower_is_better else (item.change_pct or 0.0) > 0
    p_value = float((decision.p_better if moved_better else decision.p_worse)[family])
    settle = None
    if decision.regression[family]:
        verdict, reason = Verdict.REGRESSION, Reason.SIGNIFICANT
    elif decision.improvement[family]:
        verdict, reason = Verdict.IMPROVEMENT, Reason.SIGNIFICANT
    elif decision.worse_beyond[family] or decision.better_beyond[family]:
        verdict, reason = Verdict.INCONCLUSIVE, Reason.WITHIN_NOISE
        if item.design in (SINGLE, PAIRED) and group.log:
            settle = _repeats_to_settle(item, float(group.test.se[position]), z_settle)
    else:
        verdict, reason = Verdict.UNCHANGED, Reason.WITHIN_THRESHOLD
    return Decision(verdict, reason, p_value, low, high, settle)


def _run_tests(items: list[tuple[int, Candidate]]) -> list[_Tested]:
    """One moderated t per design and scale: a prior is fitted only across like variances."""
    groups: list[_Tested] = []
    history = [(n, i) for n, i in items if i.design is HISTORY]
    if history:
        summaries = np.array([stats.history_summary(i.jobs, i.cur) for _, i in history]).reshape(-1, 4)
        cap = history_prior_cap(min(len(i.jobs) for _, i in history))
        groups.append(_Tested(history, stats.moderated_t(*summaries.T, confidence=CONFIDENCE, max_d0=cap), True))
    paired = [(n, i) for n, i in items if i.design is PAIRED]
    if paired:
        summaries = np.array([stats.paired_summary(*zip(*(i.pairs or []))) for _, i in paired]).reshape(-1, 4)
        # The metrics of one pair share what happened to that pair, like those of one job.
        cap = HISTORY_PRIOR_WEIGHT * min(len(i.pairs or []) - 1 for _, i in paired)
        groups.append(_Tested(paired, stats.moderated_t(*summaries.T, confidence=CONFIDENCE, max_d0=cap), True))
    single = [(n, i) for n, i in items if i.design is SINGLE]
    log_rows = [(n, i) for n, i in single if min([*i.base, *i.cur]) > 0]
    linear_rows = [(n, i) for n, i in single if min([*i.base, *i.cur]) <= 0]
    if log_rows:
        summaries = np.array([stats.log_summary(i.base, i.cur) for _, i in log_rows]).reshape(-1, 4)
        groups.append(_Tested(log_rows, stats.moderated_t(*summaries.T, confidence=CONFIDENCE), True))
    if linear_rows:
        # Values at or below zero (counts such as `failed`) have no logarithm: a plain t on the raw scale.
        summaries = np.array([stats.linear_summary(i.base, i.cur) for _, i in linear_rows]).reshape(-1, 4)
        groups.append(
            _Tested(linear_rows, stats.moderated_t(*summaries.T, confidence=CONFIDENCE, min_family=10**9), False)
        )
    return groups


def _interval(item: Candidate, low: float, high: float, log: bool) -> tuple[float | None, float | None]:
    if log:
        return math.expm1(low) * 100, math.expm1(high) * 100
    base = float(np.mean(item.base))
    if base == 0:
        return None, None
    return low / abs(base) * 100.0, high / abs(base) * 100.0


def _repeats_to_settle(item: Candidate, se: float, z: float) -> int | None:
    """Repeats a side that would make this change significant if it is real (the standard
    error shrinks with the square root of the repeats), or None when more than is practical."""
    delta = abs(math.log1p((item.change_pct or 0.0) / 100.0))
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
            return {
                "d0": float(prior.d0[inliers][0]),
                "s0_pct": 100.0 * math.sqrt(float(prior.s0_sq[inliers][0])),
                "outliers": float(prior.outlier.sum()),
            }
    return {}
