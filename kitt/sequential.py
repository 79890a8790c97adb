"""Sequential decisions for ``--repeats auto``: after each balanced A/B pair, is every gated metric settled?

(One arm against a history of baseline jobs, ``--history-dir``, is judged the same way after each
repeat, with the gate's history test in place of the paired one: :func:`decide_history`.)

A fixed design spends as many pairs on an obvious answer as on a borderline one. Here the
pairs of one test and load level are judged after each new pair, from ``min_pairs`` on, and
the level stops as soon as every gated metric is *decided*, or at ``max_pairs``:

- ``beyond`` the threshold (worse or better): the change is past the threshold and significant,
  exactly the gate's rule (``kitt.gate``), at a stricter level (below);
- ``within`` it: both ends of the metric's interval lie inside ``±threshold`` (two one-sided
  tests, TOST), so more pairs would not make it a regression;
- otherwise ``undecided``, or ``out of reach`` when even ``max_pairs`` pairs could not settle it
  at the noise measured so far (below).

A metric out of reach no longer holds the level up: the level stops when every gated metric is
decided or out of reach. If its change stayed as measured, its standard error projected to
``max_pairs`` pairs (it shrinks with the square root of the pairs) would still be too wide to
show it within the threshold or beyond it: the "conditional power under the current trend" of a
group-sequential futility rule. A p99 of a few requests on a busy runner is such a metric: its
pairs differ by tens of percent, and ten pairs would not settle it either. Stopping there spends no error budget (any
stopping rule keeps the union bound), and the report still tests it on the pairs that ran.

Each look uses the gate's own statistics: the per-pair log differences, the moderated t
(``kitt.stats.moderated_t``, the prior capped at two metrics' worth of pairs as the gate caps
it), one-sided p-values.

**Why the error rates hold under optional stopping.** Looking after every pair and stopping at
the first decision would inflate both errors if each look used the fixed design's level. Each
look ``k`` of the ``K = max_pairs - min_pairs + 1`` possible looks gets its own share of the
error budget, ``alpha / K`` for a false "beyond" and ``beta / K`` for a false "within" (an
alpha-spending function that spends evenly, bounded by the union bound over looks). Whatever
rule stops the run, the chance that any look makes a false decision is at most the sum of the
shares: the budget. The union bound needs no joint distribution of the looks (unknown here: the
variance is estimated and moderated anew at each look), and with at most a handful of looks it
costs little: docs/gpu-minutes.md compares it by simulation with a fixed design, with no
correction, and with an always-valid confidence sequence, which pays for infinitely many looks.

``alpha`` is the gate's family level divided by the number of gated metrics in the whole run
(Bonferroni over every test and level), so a metric decided "beyond" here is significant under
the report's Holm correction too; ``beta`` bounds, per metric, the chance of calling a change
beyond the threshold "within" it (a missed regression).

Every function broadcasts over leading axes (the family of metrics is the last axis, the pairs
follow it), so the benchmark runs thousands of simulated jobs through the very code the run uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Sequence

import numpy as np

from kitt import stats

FAMILY_ALPHA = 0.01  # the gate's family level (kitt.gate.FAMILY_ALPHA)
# Per metric: the chance of calling a change beyond the threshold "within" it, at worst: a change
# right at the threshold, which the fixed design also calls "unchanged" half the time (its point
# estimate falls on either side); a change 20% past the threshold is caught as often as with ten
# fixed pairs, one twice the threshold always. Chosen by simulation: docs/gpu-minutes.md.
MISS_BETA = 0.5
PRIOR_WEIGHT = 2.0  # the prior counts for at most two metrics' worth of pairs (kitt.gate.HISTORY_PRIOR_WEIGHT)
MIN_PAIRS, MAX_PAIRS = 3, 10  # the defaults of --repeats auto
OPTIMISM = 1.0  # out of reach: standard errors by which the change may be more favourable than measured


class Decision(IntEnum):
    """What one look says about one metric."""

    UNDECIDED = 0
    WITHIN = 1  # shown within ±threshold
    WORSE = 2  # beyond the threshold in the worse direction, significant: a regression
    BETTER = 3  # beyond it in the better direction, significant: an improvement
    OUT_OF_REACH = 4  # undecided, and max_pairs pairs would not settle it at the noise measured

    @property
    def decided(self) -> bool:
        return self in (Decision.WITHIN, Decision.WORSE, Decision.BETTER)


@dataclass(frozen=True)
class Design:
    """A sequential design: when to look and how much of each error budget each look may spend.

    ``family_size``: the gated metrics of the whole run (tests × levels × metrics), over which
    ``alpha`` is split as Bonferroni does. ``spending`` is ``"even"`` (the design used) or
    ``"none"`` (every look at the full level: not valid under optional stopping, kept to show
    by simulation what the correction buys).
    """

    min_pairs: int = MIN_PAIRS
    max_pairs: int = MAX_PAIRS
    family_size: int = 9
    alpha: float = FAMILY_ALPHA
    beta: float = MISS_BETA
    spending: str = "even"

    def __post_init__(self) -> None:
        if not 2 <= self.min_pairs <= self.max_pairs:
            raise ValueError(f"need 2 <= min_pairs <= max_pairs, got {self.min_pairs} and {self.max_pairs}")
        if self.family_size < 1 or not (0 < self.alpha < 1 and 0 < self.beta < 1):
            raise ValueError("family_size must be >= 1, alpha and beta between 0 and 1")
        if self.spending not in ("even", "none"):
            raise ValueError(f"unknown spending {self.spending!r}")

    @property
    def looks(self) -> int:
        return self.max_pairs - self.min_pairs + 1

    def levels(self, pairs: int) -> tuple[float, float]:
        """(per-metric one-sided level for "beyond", per-metric level for "within") at this look."""
        share = 1.0 if self.spending == "none" else 1.0 / self.looks
        return self.alpha / self.family_size * share, self.beta * share


def decide(
    diffs: np.ndarray,
    lower_is_better: np.ndarray,
    threshold_pct: np.ndarray,
    design: Design,
) -> np.ndarray:
    """The decision (a :class:`Decision` code) for every metric, from its per-pair log differences.

    ``diffs`` is shaped ``(..., metrics, pairs)``: ``log(candidate) - log(baseline)`` of each pair
    so far, all pairs present (the caller keeps only pairs whose two repeats passed). Fewer than
    ``design.min_pairs`` pairs, or fewer than 2, decide nothing. ``lower_is_better`` and
    ``threshold_pct`` broadcast against ``(..., metrics)``; a metric with no threshold (NaN) is
    not gated and always counts as decided (``WITHIN``).
    """
    diffs = np.asarray(diffs, dtype=float)
    n = diffs.shape[-1]
    shape = diffs.shape[:-1]
    threshold = np.broadcast_to(np.asarray(threshold_pct, float), shape)
    lower = np.broadcast_to(np.asarray(lower_is_better, bool), shape)
    out = np.full(shape, int(Decision.UNDECIDED), dtype=np.int8)
    out = np.where(np.isnan(threshold), int(Decision.WITHIN), out)
    if n < max(design.min_pairs, 2):
        return out
    delta = diffs.mean(-1)
    s2 = diffs.var(-1, ddof=1)
    df = np.full(shape, n - 1.0)
    test = stats.moderated_t(
        delta, s2, df, np.full(shape, math.sqrt(1.0 / n)), confidence=None, max_d0=PRIOR_WEIGHT * (n - 1)
    )
    # The pairs' df and the prior's cap grow alike with the pairs; the standard error shrinks as 1/sqrt(pairs).
    last = design.max_pairs
    se_last = test.se * math.sqrt(n / last)
    df_last = test.df * (last - 1) / (n - 1)
    gated = ~np.isnan(threshold) & ~np.isnan(s2)
    return _codes(out, delta, test, lower, threshold, gated, design, n, se_last, df_last)


def decide_history(
    job_means: np.ndarray,
    job_sizes: np.ndarray,
    within_ss: np.ndarray,
    within_df: np.ndarray,
    current: np.ndarray,
    lower_is_better: np.ndarray,
    threshold_pct: np.ndarray,
    design: Design,
) -> np.ndarray:
    """The decision for every metric of a single-arm run judged against a history of baseline jobs.

    The history test is the gate's (``kitt.stats.history_terms``): the current job's mean log value
    against the mean of the K baseline jobs' means, with the variance of a prediction interval,
    ``s2 / K + tau2 + sigma2 / n``, on ``K - 1`` degrees of freedom (moderated across the family,
    the prior capped at two metrics' worth of jobs as ``kitt.gate`` caps it). Each look spends
    ``alpha / K_looks`` and ``beta / K_looks`` exactly as :func:`decide` does, so the error rates
    hold under optional stopping by the same union bound.

    More current repeats shrink only ``sigma2 / n``: the job-to-job part, ``s2 / K + tau2``, and the
    history's degrees of freedom stay what they are. So "out of reach" projects the standard error
    to ``max_repeats`` repeats through that formula, not as ``1 / sqrt(n)``, and is optimistic by
    one standard error of the current mean only (``sqrt(sigma2 / n)``): the current job's own shift,
    which every later repeat shares, does not move either. A metric whose jobs spread about as wide
    as the threshold can be shown neither within nor beyond it by any number of repeats, and stops
    the level early.

    ``job_means``, ``job_sizes``: each baseline job's mean log value and repeat count, shaped
    ``(..., metrics, K)``; ``within_ss`` and ``within_df``: the history's pooled within-job sum of
    squares and its degrees of freedom, ``(..., metrics)``; ``current``: the current job's log
    values so far, ``(..., metrics, n)``. Fewer than ``design.min_pairs`` current values, or fewer
    than 2 baseline jobs, decide nothing.
    """
    job_means = np.asarray(job_means, float)
    current = np.asarray(current, float)
    n, jobs = current.shape[-1], job_means.shape[-1]
    shape = np.broadcast_shapes(job_means.shape[:-1], current.shape[:-1])
    threshold = np.broadcast_to(np.asarray(threshold_pct, float), shape)
    lower = np.broadcast_to(np.asarray(lower_is_better, bool), shape)
    out = np.full(shape, int(Decision.UNDECIDED), dtype=np.int8)
    out = np.where(np.isnan(threshold), int(Decision.WITHIN), out)
    if n < max(design.min_pairs, 2) or jobs < 2:
        return out
    sizes = np.broadcast_to(np.asarray(job_sizes, float), job_means.shape)
    cur_mean = current.mean(-1)
    ss = np.asarray(within_ss, float) + ((current - cur_mean[..., None]) ** 2).sum(-1)
    df = np.asarray(within_df, float) + (n - 1)
    delta, s2, k_df, scale = stats.history_terms(job_means, sizes, ss, df, cur_mean, np.float64(n))
    delta, s2, k_df, scale = (np.broadcast_to(v, shape) for v in (delta, s2, k_df, scale))
    test = stats.moderated_t(delta, s2, k_df, scale, confidence=None, max_d0=PRIOR_WEIGHT * (jobs - 1))
    # At max_repeats only the current job's share of the variance has shrunk (sigma2 as measured now).
    last = design.max_pairs
    grown = np.where(df > 0, ss / np.where(df > 0, df, 1.0), 0.0) * (df + last - n)
    *_, scale_last = stats.history_terms(job_means, sizes, grown, df + last - n, cur_mean, np.float64(last))
    with np.errstate(invalid="ignore", divide="ignore"):
        se_last = test.se * np.broadcast_to(scale_last, shape) / scale
    gated = ~np.isnan(threshold) & ~np.isnan(s2)
    # More repeats move the change only by the current mean's noise, sigma2 / n.
    movable = np.broadcast_to(np.sqrt(np.where(df > 0, ss / np.where(df > 0, df, 1.0), 0.0) / n), shape)
    return _codes(out, delta, test, lower, threshold, gated, design, n, se_last, test.df, movable)


def _codes(
    out: np.ndarray,
    delta: np.ndarray,
    test: stats.FamilyTest,
    lower: np.ndarray,
    threshold: np.ndarray,
    gated: np.ndarray,
    design: Design,
    n: int,
    se_last: np.ndarray,
    df_last: np.ndarray,
    movable: np.ndarray | None = None,
) -> np.ndarray:
    """Beyond, within, out of reach or undecided, from a look's test of each metric's log change
    ``delta`` (either design): the gate's rule at this look's share of alpha, TOST at its share of beta."""
    alpha_k, beta_k = design.levels(n)
    change = np.expm1(delta) * 100.0
    limit = np.where(np.isnan(threshold), np.inf, threshold)
    up = np.log1p(limit / 100.0)
    down = np.where(limit < 100.0, np.log1p(-np.minimum(limit, 99.999999) / 100.0), -np.inf)
    p_worse = np.where(lower, test.p_increase, test.p_decrease)
    p_better = np.where(lower, test.p_decrease, test.p_increase)
    worse_beyond = np.where(lower, change > limit, change < -limit)
    better_beyond = np.where(lower, change < -limit, change > limit)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = test.se
        # TOST: the change is significantly below the upper limit and above the lower one.
        t_up = np.where(se > 0, (up - delta) / np.where(se > 0, se, 1.0), np.where(delta < up, np.inf, -np.inf))
        t_down = np.where(se > 0, (delta - down) / np.where(se > 0, se, 1.0), np.where(delta > down, np.inf, -np.inf))
    p_within = np.maximum(stats.t_sf(t_up, test.df), stats.t_sf(t_down, test.df))
    within = gated & (p_within <= beta_k)
    worse = gated & worse_beyond & (p_worse <= alpha_k)
    better = gated & better_beyond & (p_better <= alpha_k)
    out = np.where(within, int(Decision.WITHIN), out)
    out = np.where(worse, int(Decision.WORSE), out)
    out = np.where(better, int(Decision.BETTER), out)
    if n >= design.max_pairs:  # the last look: what is left is undecided, not out of reach
        return out
    reach = _within_reach(delta, se if movable is None else movable, se_last, df_last, up, down, alpha_k, beta_k)
    return np.where(gated & ~(within | worse | better) & ~reach, int(Decision.OUT_OF_REACH), out)


def _within_reach(
    delta: np.ndarray,
    movable: np.ndarray,
    se_last: np.ndarray,
    df_last: np.ndarray,
    up: np.ndarray,
    down: np.ndarray,
    alpha_k: float,
    beta_k: float,
) -> np.ndarray:
    """Could the last look settle the metric, if its change and its noise stay as measured?

    ``se_last`` and ``df_last`` are the standard error and degrees of freedom the last look would
    have (the design's projection). Within is in reach when that interval around the change
    measured fits inside the limits; beyond is in reach when the change measured would be
    significant then. ``movable``: the standard error of the part of the change that more looks
    can still move (A/B: all of it; against a history, only the current repeats' mean, not the
    current job's own shift, which every later repeat shares).
    """
    with np.errstate(invalid="ignore"):
        half_within = _t_upper(beta_k, df_last) * se_last
        half_beyond = _t_upper(alpha_k, df_last) * se_last
        # Optimistic by one standard error of what can still move: the change may end that much
        # closer to zero (for within) or further from it (for beyond) than measured.
        toward = np.sign(delta) * np.maximum(np.abs(delta) - OPTIMISM * movable, 0.0)
        away = delta + np.sign(delta) * OPTIMISM * movable
        within = (toward + half_within < up) & (toward - half_within > down)
        beyond = ((away > up) | (away < down)) & (np.abs(away) > half_beyond)
    return within | beyond | ~np.isfinite(se_last)


def _t_upper(p: float, df: np.ndarray) -> np.ndarray:
    """The t quantile with upper tail ``p``, once per distinct df."""
    df = np.asarray(df, float)
    out = np.full(df.shape, np.nan)
    finite = np.isfinite(df) & (df > 0)
    if finite.any():
        values, inverse = np.unique(df[finite], return_inverse=True)
        out[finite] = stats.t_ppf(np.full(values.shape, 1.0 - p), values)[inverse]
    return out


@dataclass(frozen=True)
class Look:
    """One level's state after a pair (A/B) or a repeat (against a history): the decision per gated
    metric, and whether to stop. ``pairs`` counts what ran, in ``unit``s."""

    pairs: int
    decisions: dict[str, Decision]
    stop: bool
    why: str  # "decided", "out_of_reach", "max_pairs" or "max_repeats" (the unit's), or "" (go on)
    unit: str = "pairs"

    @property
    def undecided(self) -> list[str]:
        return [name for name, d in self.decisions.items() if not d.decided]

    @property
    def out_of_reach(self) -> list[str]:
        return [name for name, d in self.decisions.items() if d is Decision.OUT_OF_REACH]

    def reason(self) -> str:
        """Why the level stopped, in one clause: "all 9 gated metrics decided after 4 pairs"."""
        gated, ran = len(self.decisions), f"{self.pairs} {self.unit}"
        if self.why == "decided":
            return f"all {gated} gated metrics decided after {ran}"
        if self.why == "out_of_reach":
            left = self.out_of_reach
            return (
                f"{gated - len(left)} of {gated} gated metrics decided after {ran}; "
                f"{', '.join(left)} too noisy to settle within max_repeats"
            )
        if self.why.startswith("max_"):
            left = self.undecided
            return (
                f"max_repeats reached: {len(left)} of {gated} gated metrics undecided after {ran} ({', '.join(left)})"
            )
        return f"{len(self.undecided)} of {gated} gated metrics undecided after {ran}"


def _stop(decisions: dict[str, Decision], design: Design, ran: int, unit: str) -> Look:
    """Stop when every metric is decided, at the last look, or when what is left is out of reach."""
    if ran >= design.min_pairs and all(d.decided for d in decisions.values()):
        return Look(ran, decisions, True, "decided", unit)
    if ran >= design.max_pairs:
        return Look(ran, decisions, True, f"max_{unit}", unit)
    if ran >= design.min_pairs and all(d is not Decision.UNDECIDED for d in decisions.values()):
        return Look(ran, decisions, True, "out_of_reach", unit)
    return Look(ran, decisions, False, "", unit)


def look(
    pairs: dict[str, list[tuple[float, float]]],
    lower_is_better: dict[str, bool],
    threshold_pct: dict[str, float],
    design: Design,
    pairs_run: int,
) -> Look:
    """Judge one level from its ``(baseline, candidate)`` values per gated metric.

    ``pairs_run`` counts the pairs measured, failed ones included (what ``max_pairs`` bounds);
    ``pairs`` holds, per metric, only the pairs whose two values are positive and finite. A
    metric with fewer usable pairs than ``min_pairs`` is undecided.
    """
    names = list(threshold_pct)
    decisions: dict[str, Decision] = {}
    by_count: dict[int, list[str]] = {}
    for name in names:
        usable = [(b, c) for b, c in pairs.get(name, []) if b > 0 and c > 0 and math.isfinite(b) and math.isfinite(c)]
        by_count.setdefault(len(usable), []).append(name)
    # Metrics with the same number of usable pairs are judged together, as the gate fits its prior
    # across the family; usually every metric has every pair, so this is one call.
    for count, group in by_count.items():
        diffs = np.array(
            [
                [
                    math.log(c) - math.log(b)
                    for b, c in pairs.get(name, [])
                    if b > 0 and c > 0 and math.isfinite(b) and math.isfinite(c)
                ]
                for name in group
            ]
        )
        codes = decide(
            diffs.reshape(len(group), count),
            np.array([lower_is_better[n] for n in group]),
            np.array([threshold_pct[n] for n in group], float),
            design,
        )
        decisions.update({name: Decision(int(code)) for name, code in zip(group, codes)})
    return _stop({name: decisions[name] for name in names}, design, pairs_run, "pairs")


def _usable(values: Sequence[float]) -> list[float]:
    return [v for v in values if v > 0 and math.isfinite(v)]


def look_history(
    history: dict[str, Sequence[Sequence[float]]],
    current: dict[str, Sequence[float]],
    lower_is_better: dict[str, bool],
    threshold_pct: dict[str, float],
    design: Design,
    repeats_run: int,
) -> Look:
    """Judge one level of a single-arm run from its repeats so far against the baseline jobs.

    ``history`` holds, per gated metric, each baseline job's values of this level (newest first, as
    ``kitt.gate`` takes them); ``current`` the values of this run's passed repeats. ``repeats_run``
    counts the repeats measured, failed ones included (what ``max_repeats`` bounds). Only positive,
    finite values count; a baseline job left with none is left out, and a metric with fewer than
    two baseline jobs or ``min_repeats`` current values is undecided.
    """
    names = list(threshold_pct)
    decisions: dict[str, Decision] = {}
    by_shape: dict[tuple[int, int], list[str]] = {}
    kept: dict[str, tuple[list[list[float]], list[float]]] = {}
    for name in names:
        jobs = [job for job in (_usable(j) for j in history.get(name, [])) if job]
        kept[name] = (jobs, _usable(current.get(name, [])))
        by_shape.setdefault((len(jobs), len(kept[name][1])), []).append(name)
    # As in look(): metrics of the same shape are judged together (one prior across the family).
    for (jobs, n), group in by_shape.items():
        logs = [[np.log(np.asarray(job, float)) for job in kept[name][0]] for name in group]
        means = np.array([[job.mean() for job in per] for per in logs]).reshape(len(group), jobs)
        sizes = np.array([[job.size for job in per] for per in logs], float).reshape(len(group), jobs)
        ss = np.array([sum(float(((job - job.mean()) ** 2).sum()) for job in per) for per in logs])
        df = np.array([sum(job.size - 1 for job in per) for per in logs], float)
        codes = decide_history(
            means,
            sizes,
            ss,
            df,
            np.log(np.array([kept[name][1] for name in group], float).reshape(len(group), n)),
            np.array([lower_is_better[name] for name in group]),
            np.array([threshold_pct[name] for name in group], float),
            design,
        )
        decisions.update({name: Decision(int(code)) for name, code in zip(group, codes)})
    return _stop({name: decisions[name] for name in names}, design, repeats_run, "repeats")


def pair_orders(max_pairs: int, seed: str) -> list[bool]:
    """Seeded pair orders (True: baseline first) balanced at every stop: in each block of two
    pairs one runs baseline first and the other candidate first, in a shuffled order, so after
    any number of pairs the two orders differ by one at most."""
    import random

    rng = random.Random(seed)
    orders: list[bool] = []
    while len(orders) < max_pairs:
        first = rng.random() < 0.5
        orders += [first, not first]
    return orders[:max_pairs]
