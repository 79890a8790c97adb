"""Sequential decisions for ``--repeats auto``: after each balanced A/B pair, is every gated metric settled?

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
    alpha_k, beta_k = design.levels(n)
    delta = diffs.mean(-1)
    s2 = diffs.var(-1, ddof=1)
    df = np.full(shape, n - 1.0)
    test = stats.moderated_t(
        delta, s2, df, np.full(shape, math.sqrt(1.0 / n)), confidence=None, max_d0=PRIOR_WEIGHT * (n - 1)
    )
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
    gated = ~np.isnan(threshold) & ~np.isnan(s2)
    within = gated & (p_within <= beta_k)
    worse = gated & worse_beyond & (p_worse <= alpha_k)
    better = gated & better_beyond & (p_better <= alpha_k)
    out = np.where(within, int(Decision.WITHIN), out)
    out = np.where(worse, int(Decision.WORSE), out)
    out = np.where(better, int(Decision.BETTER), out)
    reach = _within_reach(delta, se, test.df, n, up, down, alpha_k, beta_k, design)
    return np.where(gated & ~(within | worse | better) & ~reach, int(Decision.OUT_OF_REACH), out)


def _within_reach(
    delta: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    n: int,
    up: np.ndarray,
    down: np.ndarray,
    alpha_k: float,
    beta_k: float,
    design: Design,
) -> np.ndarray:
    """Could ``max_pairs`` pairs settle the metric, if its change and its noise stay as measured?

    At ``max_pairs`` the standard error is ``se * sqrt(n / max_pairs)`` on ``df`` grown in
    proportion to the pairs (the prior's cap grows with them). Within is in reach when that interval
    around the change measured fits inside the limits; beyond is in reach when the change measured
    would be significant then.
    """
    last = design.max_pairs
    if n >= last:  # the last look: what is left is undecided, not out of reach
        return np.ones(np.shape(delta), dtype=bool)
    with np.errstate(invalid="ignore"):
        se_last = se * math.sqrt(n / last)
        df_last = df * (last - 1) / (n - 1)  # the pairs' df and the prior's cap grow alike
        half_within = _t_upper(beta_k, df_last) * se_last
        half_beyond = _t_upper(alpha_k, df_last) * se_last
        # Optimistic by one standard error of today's estimate: the change may be that much closer
        # to zero (for within) or further from it (for beyond) than measured.
        toward = np.sign(delta) * np.maximum(np.abs(delta) - OPTIMISM * se, 0.0)
        away = delta + np.sign(delta) * OPTIMISM * se
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
    """One level's state after a pair: the decision per gated metric, and whether to stop."""

    pairs: int
    decisions: dict[str, Decision]
    stop: bool
    why: str  # "decided", "max_pairs" or "" (go on)

    @property
    def undecided(self) -> list[str]:
        return [name for name, d in self.decisions.items() if not d.decided]

    @property
    def out_of_reach(self) -> list[str]:
        return [name for name, d in self.decisions.items() if d is Decision.OUT_OF_REACH]

    def reason(self) -> str:
        """Why the level stopped, in one clause: "all 9 gated metrics decided after 4 pairs"."""
        gated = len(self.decisions)
        if self.why == "decided":
            return f"all {gated} gated metrics decided after {self.pairs} pairs"
        if self.why == "out_of_reach":
            left = self.out_of_reach
            return (
                f"{gated - len(left)} of {gated} gated metrics decided after {self.pairs} pairs; "
                f"{', '.join(left)} too noisy to settle within max_repeats"
            )
        if self.why == "max_pairs":
            left = self.undecided
            return (
                f"max_repeats reached: {len(left)} of {gated} gated metrics undecided after {self.pairs} pairs "
                f"({', '.join(left)})"
            )
        return f"{len(self.undecided)} of {gated} gated metrics undecided after {self.pairs} pairs"


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
    decisions = {name: decisions[name] for name in names}
    if pairs_run >= design.min_pairs and all(d.decided for d in decisions.values()):
        return Look(pairs_run, decisions, True, "decided")
    if pairs_run >= design.max_pairs:
        return Look(pairs_run, decisions, True, "max_pairs")
    if pairs_run >= design.min_pairs and all(d is not Decision.UNDECIDED for d in decisions.values()):
        return Look(pairs_run, decisions, True, "out_of_reach")
    return Look(pairs_run, decisions, False, "")


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
