"""Compare a current result set with a baseline: matching, statistics and verdicts, as data.

Results are matched by test and load level (concurrency or request rate); the repeats of a
test (its ``run_number``\\s) are the samples. A gated metric is a regression only when its
change is beyond its threshold in the worse direction AND the moderated t of ``kitt.stats``,
Holm-corrected over every gated metric of the report, calls it significant. With one repeat on
either side there is no test, and the plain threshold decides.

The :class:`Comparison` this module returns is complete and holds no words: every number the
report shows (centres, spreads, changes, intervals, chart series) and every fact it explains
(hardware, tests or metrics on one side only, failed tests) is a field. ``kitt.report`` only
formats it; nothing downstream computes a statistic again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from kitt import stats
from kitt.results import ResultSet
from kitt.results import TestResult as Result
from kitt.thresholds import DEFAULT_GATED, LOAD_PARAMETERS, LOWER, Thresholds, is_known_metric, metric_direction

# The chance of any false alarm in a report (the whole family of gated metrics).
FAMILY_ALPHA = 0.01
CONFIDENCE = 0.95
# The key metrics drawn across a sweep of load levels.
CHART_METRICS = ("output_throughput", "median_e2el_ms")
_LEVEL_SUFFIX = re.compile(r"^(?P<base>.+?)-(?P<kind>[cr])(?P<level>\d+(?:\.\d+)?)$")

# --------------------------------------------------------------------------- matching


@dataclass(frozen=True, order=True)
class MatchKey:
    """What matches a test across runs: its name without the level suffix, and its load level."""

    base: str
    kind: str  # "concurrency", "rate" or "" (no level known)
    level: float


def match_key(result: Result) -> MatchKey:
    match = _LEVEL_SUFFIX.match(result.test_name)
    base = match.group("base") if match else result.test_name
    for kind, metric, letter in (("concurrency", "concurrency", "c"), ("rate", "request_rate", "r")):
        value = result.metrics.get(metric)
        if isinstance(value, float) and math.isfinite(value):
            return MatchKey(base if match and match.group("kind") == letter else result.test_name, kind, value)
    if match:
        return MatchKey(base, "concurrency" if match.group("kind") == "c" else "rate", float(match.group("level")))
    return MatchKey(result.test_name, "", 0.0)


@dataclass
class RepeatGroup:
    """The repeats of one test at one level in one result set."""

    key: MatchKey
    name: str
    repeats: list[Result]

    def samples(self, metric: str) -> list[float]:
        values = (r.metrics.get(metric) for r in self.repeats)
        return [v for v in values if v is not None and math.isfinite(v)]

    def metric_names(self) -> list[str]:
        names = {name for r in self.repeats for name in r.metrics if name not in LOAD_PARAMETERS}
        return sorted(names, key=metric_sort_key)


def group_tests(result_set: ResultSet) -> dict[MatchKey, RepeatGroup]:
    groups: dict[MatchKey, RepeatGroup] = {}
    for result in result_set.results:
        key = match_key(result)
        groups.setdefault(key, RepeatGroup(key, result.test_name, [])).repeats.append(result)
    return dict(sorted(groups.items()))


def metric_sort_key(name: str) -> tuple[int, int, str]:
    """Default-gated metrics first, in their listed order, then known ones, then the rest."""
    if name in DEFAULT_GATED:
        return (0, DEFAULT_GATED.index(name), name)
    return (1 if is_known_metric(name) else 2, 0, name)


@dataclass(frozen=True)
class Spread:
    """The repeats of one metric on one side: the typical value and how they vary."""

    n: int
    center: float | None
    cv_pct: float | None  # sample standard deviation over |mean|, with two or more repeats
    low: float | None
    high: float | None

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        typical = center(values)
        cv = None
        if len(values) >= 2 and typical:
            mean = sum(values) / len(values)
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            cv = 100.0 * sd / abs(mean) if mean else None
        return cls(len(values), typical, cv, min(values, default=None), max(values, default=None))


def center(values: list[float]) -> float | None:
    """The typical value of the repeats: the geometric mean when all are positive, else the mean."""
    if not values:
        return None
    if all(v > 0 for v in values):
        return float(math.exp(sum(math.log(v) for v in values) / len(values)))
    return float(sum(values) / len(values))


# --------------------------------------------------------------------------- verdicts


class Verdict(str, Enum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    UNCHANGED = "unchanged"
    NOT_GATED = "not gated"
    MISSING = "missing"
    ONLY_BASELINE = "only in baseline"
    ONLY_CURRENT = "only in current"


class Reason(str, Enum):
    """Why a row got its verdict; the report words each one."""

    SIGNIFICANT = "significant"
    WITHIN_NOISE = "within noise"
    WITHIN_THRESHOLD = "within threshold"
    SINGLE_REPEAT = "single repeat"
    NOT_GATED = "not gated"
    NO_DIRECTION = "no direction"
    MISSING = "missing"
    NONE = ""


@dataclass
class MetricRow:
    """One metric of one test, compared. Changes and intervals are in percent."""

    test: str
    key: MatchKey
    metric: str
    direction: str | None
    threshold_pct: float | None
    baseline_spread: Spread | None
    current_spread: Spread | None
    change_pct: float | None = None
    ci_low_pct: float | None = None
    ci_high_pct: float | None = None
    p_value: float | None = None  # Holm-adjusted, one-sided in the direction the metric moved
    method: str = "none"  # "moderated t", "threshold only" or "none"
    verdict: Verdict = Verdict.NOT_GATED
    reason: Reason = Reason.NONE

    @property
    def gated(self) -> bool:
        return self.threshold_pct is not None

    @property
    def baseline(self) -> float | None:
        return self.baseline_spread.center if self.baseline_spread else None

    @property
    def current(self) -> float | None:
        return self.current_spread.center if self.current_spread else None

    @property
    def n_baseline(self) -> int:
        return self.baseline_spread.n if self.baseline_spread else 0

    @property
    def n_current(self) -> int:
        return self.current_spread.n if self.current_spread else 0


@dataclass
class TestComparison:
    """One test at one load level: its repeats on each side and its rows, in metric order."""

    key: MatchKey
    name: str
    n_baseline: int  # repeats; 0 when the test is only in the current run (or there is no baseline)
    n_current: int
    rows: list[MetricRow]


@dataclass(frozen=True)
class ChartSeries:
    """One key metric across the load levels of one test family, per side."""

    family: str
    kind: str
    metric: str
    levels: list[float]
    current: list[float]
    baseline: list[float] | None


@dataclass(frozen=True)
class FailedTest:
    name: str
    error: str | None


@dataclass
class Comparison:
    """A whole comparison: every test and metric compared, and the facts the gate weighed."""

    current: ResultSet
    baseline: ResultSet | None
    tests: list[TestComparison] = field(default_factory=list)
    charts: list[ChartSeries] = field(default_factory=list)
    hardware_mismatch: bool = False
    allow_hardware_mismatch: bool = False
    failed_tests: list[FailedTest] = field(default_factory=list)
    missing_gated: dict[str, list[str]] = field(default_factory=dict)  # test -> gated metrics it lacks
    tests_only_in_baseline: list[str] = field(default_factory=list)
    tests_only_in_current: list[str] = field(default_factory=list)
    alpha: float = FAMILY_ALPHA
    prior: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> list[MetricRow]:
        return [row for test in self.tests for row in test.rows]

    @property
    def gating(self) -> bool:
        """False: shown only (no baseline, or other hardware not allowed)."""
        return self.baseline is not None and (not self.hardware_mismatch or self.allow_hardware_mismatch)

    @property
    def unknown_fingerprint(self) -> str | None:
        """"baseline" or "current" when that side has no hardware fingerprint (so no check)."""
        if self.baseline is None:
            return None
        for side, result_set in (("baseline", self.baseline), ("current", self.current)):
            if not result_set.fingerprint:
                return side
        return None

    def metrics_only_in(self, verdict: Verdict) -> list[str]:
        return sorted({r.metric for r in self.rows if r.verdict is verdict})

    @property
    def regressions(self) -> list[MetricRow]:
        return [r for r in self.rows if r.verdict is Verdict.REGRESSION]

    @property
    def improvements(self) -> list[MetricRow]:
        return [r for r in self.rows if r.verdict is Verdict.IMPROVEMENT]

    @property
    def unchanged(self) -> list[MetricRow]:
        return [r for r in self.rows if r.verdict is Verdict.UNCHANGED]

    @property
    def problems(self) -> bool:
        """Results that fail the gate like a regression: failed tests, missing gated metrics."""
        return bool(self.failed_tests or self.missing_gated)

    @property
    def gate_failed(self) -> bool:
        return self.problems or (self.gating and bool(self.regressions))

    @property
    def verdict(self) -> str:
        """One of: regression, problem, not gated, no baseline, nothing compared, improvement, unchanged."""
        if self.gating and self.regressions:
            return "regression"
        if self.problems:
            return "problem"
        if self.baseline is None:
            return "no baseline"
        if self.hardware_mismatch and not self.gating:
            return "not gated"
        if not any(r.gated and r.baseline is not None and r.current is not None for r in self.rows):
            return "nothing compared"
        return "improvement" if self.improvements else "unchanged"


def compare_result_sets(
    current: ResultSet,
    baseline: ResultSet | None,
    thresholds: Thresholds | None = None,
    *,
    allow_hardware_mismatch: bool = False,
    alpha: float = FAMILY_ALPHA,
) -> Comparison:
    """Match, test and judge every metric; ``baseline=None`` gives a current-only comparison."""
    thresholds = thresholds or Thresholds()
    current_groups = group_tests(current)
    comparison = Comparison(current, baseline, allow_hardware_mismatch=allow_hardware_mismatch, alpha=alpha)
    comparison.failed_tests = [
        FailedTest(g.name, next((e for r in g.repeats for e in r.errors), None))
        for g in current_groups.values()
        if not all(r.passed for r in g.repeats)
    ]
    if baseline is None:
        comparison.tests = [_current_only(group, thresholds) for group in current_groups.values()]
        comparison.charts = _charts(current_groups, None)
        return comparison

    base_fp, cur_fp = baseline.fingerprint, current.fingerprint
    comparison.hardware_mismatch = bool(base_fp and cur_fp and base_fp != cur_fp)
    baseline_groups = group_tests(baseline)
    pending: list[_Pending] = []
    for key in sorted(set(current_groups) | set(baseline_groups)):
        base_group, cur_group = baseline_groups.get(key), current_groups.get(key)
        if base_group is None or cur_group is None:
            if base_group is not None:
                comparison.tests_only_in_baseline.append(base_group.name)
            elif cur_group is not None:
                comparison.tests_only_in_current.append(cur_group.name)
            continue
        names = sorted(set(base_group.metric_names()) | set(cur_group.metric_names()), key=metric_sort_key)
        items = [_paired_row(base_group, cur_group, name, thresholds) for name in names]
        items = [p for p in items if p.base or p.cur]  # all null on both sides (no GPU): nothing to show
        pending.extend(items)
        comparison.tests.append(
            TestComparison(key, cur_group.name, len(base_group.repeats), len(cur_group.repeats), [p.row for p in items])
        )
    _judge(comparison, pending)
    comparison.charts = _charts(current_groups, baseline_groups)
    return comparison


def _current_only(group: RepeatGroup, thresholds: Thresholds) -> TestComparison:
    rows = []
    for metric in group.metric_names():
        values = group.samples(metric)
        if values:  # null in every repeat (no GPU, say): nothing to show
            rows.append(MetricRow(
                test=group.name, key=group.key, metric=metric, direction=metric_direction(metric),
                threshold_pct=thresholds.for_metric(metric), baseline_spread=None, current_spread=Spread.of(values),
                verdict=Verdict.ONLY_CURRENT,
            ))  # fmt: skip
    return TestComparison(group.key, group.name, 0, len(group.repeats), rows)


def _charts(current: dict[MatchKey, RepeatGroup], baseline: dict[MatchKey, RepeatGroup] | None) -> list[ChartSeries]:
    """Each key metric across every test family swept over two or more load levels."""
    families: dict[tuple[str, str], list[MatchKey]] = {}
    for key in current:
        if key.kind and (baseline is None or key in baseline):
            families.setdefault((key.base, key.kind), []).append(key)
    charts = []
    for (base, kind), keys in families.items():
        if len(keys) < 2:
            continue
        keys.sort(key=lambda k: k.level)
        for metric in CHART_METRICS:
            sides = [current] if baseline is None else [current, baseline]
            lines = [[center(groups[k].samples(metric)) for k in keys] for groups in sides]
            if any(v is None for line in lines for v in line):
                continue
            numbers: list[list[float]] = [[float(v) for v in line if v is not None] for line in lines]
            charts.append(ChartSeries(base, kind, metric, [k.level for k in keys], numbers[0],
                                      numbers[1] if baseline is not None else None))  # fmt: skip
    return charts


@dataclass
class _Pending:
    row: MetricRow
    base: list[float]
    cur: list[float]


def _paired_row(base: RepeatGroup, cur: RepeatGroup, metric: str, thresholds: Thresholds) -> _Pending:
    b, c = base.samples(metric), cur.samples(metric)
    row = MetricRow(
        test=cur.name, key=cur.key, metric=metric, direction=metric_direction(metric),
        threshold_pct=thresholds.for_metric(metric),
        baseline_spread=Spread.of(b) if b else None, current_spread=Spread.of(c) if c else None,
    )  # fmt: skip
    return _Pending(row, b, c)


def _judge(comparison: Comparison, paired: list[_Pending]) -> None:
    """Decide every row's verdict; the statistics run once over the whole family of gated rows."""
    log_rows: list[_Pending] = []
    linear_rows: list[_Pending] = []
    for item in paired:
        row, b, c = item.row, item.base, item.cur
        if not b or not c:
            row.verdict = Verdict.ONLY_CURRENT if c else Verdict.ONLY_BASELINE
            if row.gated and b and not c:
                row.verdict, row.reason = Verdict.MISSING, Reason.MISSING
                comparison.missing_gated.setdefault(row.test, []).append(row.metric)
            continue
        row.change_pct = _change_pct(b, c)
        if not row.gated:
            row.verdict, row.reason = Verdict.NOT_GATED, Reason.NOT_GATED if row.direction else Reason.NO_DIRECTION
        elif len(b) < 2 or len(c) < 2:
            row.method = "threshold only"
            row.verdict = _threshold_verdict(row)
            row.reason = Reason.SINGLE_REPEAT
        else:
            row.method = "moderated t"
            (log_rows if min(b + c) > 0 else linear_rows).append(item)
    _test_family(comparison, log_rows, linear_rows)


def _change_pct(b: list[float], c: list[float]) -> float:
    base, cur = center(b), center(c)
    assert base is not None and cur is not None
    if base == cur:
        return 0.0
    if base == 0:
        return math.copysign(math.inf, cur)
    return (cur / base - 1.0) * 100.0 if base > 0 and cur > 0 else (cur - base) / abs(base) * 100.0


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


def _threshold_verdict(row: MetricRow) -> Verdict:
    worse, better = beyond_threshold(row.change_pct, row.direction == LOWER, row.threshold_pct)
    return Verdict.REGRESSION if worse else Verdict.IMPROVEMENT if better else Verdict.UNCHANGED


def _test_family(comparison: Comparison, log_rows: list[_Pending], linear_rows: list[_Pending]) -> None:
    pending = log_rows + linear_rows
    if not pending:
        return
    summaries = np.array([stats.log_summary(p.base, p.cur) for p in log_rows]).reshape(-1, 4)
    log_test = stats.moderated_t(*summaries.T, confidence=CONFIDENCE)
    prior = log_test.prior
    inliers = ~prior.outlier & (prior.d0 > 0)
    if inliers.any():
        comparison.prior = {
            "d0": float(prior.d0[inliers][0]),
            "s0_pct": 100.0 * math.sqrt(float(prior.s0_sq[inliers][0])),
            "outliers": float(prior.outlier.sum()),
        }
    linear = np.array([stats.linear_summary(p.base, p.cur) for p in linear_rows]).reshape(-1, 4)
    # Values at or below zero (counts such as `failed`) have no logarithm: a plain t on the raw scale.
    linear_test = stats.moderated_t(*linear.T, confidence=CONFIDENCE, min_family=10**9)
    decision = gate_family(
        np.array([p.row.change_pct for p in pending], dtype=float),
        np.concatenate([log_test.p_increase, linear_test.p_increase]),
        np.concatenate([log_test.p_decrease, linear_test.p_decrease]),
        np.array([p.row.direction == LOWER for p in pending]),
        np.array([p.row.threshold_pct for p in pending], dtype=float),
        comparison.alpha,
    )
    ci: list[tuple[float | None, float | None]] = [
        (math.expm1(lo) * 100, math.expm1(hi) * 100) for lo, hi in zip(log_test.ci_low, log_test.ci_high)
    ]
    ci += [_linear_ci(p, lo, hi) for p, lo, hi in zip(linear_rows, linear_test.ci_low, linear_test.ci_high)]
    for index, (item, (low, high)) in enumerate(zip(pending, ci)):
        row = item.row
        change = row.change_pct or 0.0
        moved_better = change < 0 if row.direction == LOWER else change > 0
        p_side = decision.p_better if moved_better else decision.p_worse
        row.p_value, row.ci_low_pct, row.ci_high_pct = float(p_side[index]), low, high
        if decision.regression[index]:
            row.verdict, row.reason = Verdict.REGRESSION, Reason.SIGNIFICANT
        elif decision.improvement[index]:
            row.verdict, row.reason = Verdict.IMPROVEMENT, Reason.SIGNIFICANT
        elif decision.worse_beyond[index] or decision.better_beyond[index]:
            row.verdict, row.reason = Verdict.UNCHANGED, Reason.WITHIN_NOISE
        else:
            row.verdict, row.reason = Verdict.UNCHANGED, Reason.WITHIN_THRESHOLD


def _linear_ci(item: _Pending, low: float, high: float) -> tuple[float | None, float | None]:
    base = float(np.mean(item.base))
    if base == 0:
        return None, None
    return low / abs(base) * 100.0, high / abs(base) * 100.0
