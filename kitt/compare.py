"""Compare a current result set with a baseline: matching, directions, thresholds and verdicts.

Results are matched by test and load level (concurrency or request rate); the repeats of a
test (its ``run_number``\\s) are the samples. A gated metric is a regression only when its
change is beyond its threshold in the worse direction AND the moderated t of ``kitt.stats``,
Holm-corrected over every gated metric of the report, calls it significant. With one repeat on
either side there is no test, and the plain threshold decides.
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
_LEVEL_SUFFIX = re.compile(r"^(?P<base>.+?)-(?P<kind>[cr])(?P<level>\d+(?:\.\d+)?)$")

# --------------------------------------------------------------------------- matching


@dataclass(frozen=True, order=True)
class MatchKey:
    """What matches a test across runs: its name without the level suffix, and its load level."""

    base: str
    kind: str  # "concurrency", "rate" or "" (no level known)
    level: float

    @property
    def level_label(self) -> str:
        if not self.kind:
            return ""
        number = f"{self.level:g}"
        return f"concurrency {number}" if self.kind == "concurrency" else f"{number} req/s"


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


# --------------------------------------------------------------------------- verdicts


class Verdict(str, Enum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    UNCHANGED = "unchanged"
    NOT_GATED = "not gated"
    MISSING = "missing"
    ONLY_BASELINE = "only in baseline"
    ONLY_CURRENT = "only in current"


@dataclass
class MetricRow:
    """One metric of one test, compared. Changes and intervals are in percent."""

    test: str
    key: MatchKey
    metric: str
    direction: str | None
    threshold_pct: float | None
    baseline: float | None
    current: float | None
    n_baseline: int
    n_current: int
    change_pct: float | None = None
    ci_low_pct: float | None = None
    ci_high_pct: float | None = None
    p_value: float | None = None  # Holm-adjusted, one-sided in the direction the metric moved
    method: str = "none"  # "moderated t", "threshold only" or "none"
    verdict: Verdict = Verdict.NOT_GATED
    reason: str = ""

    @property
    def gated(self) -> bool:
        return self.threshold_pct is not None


@dataclass
class Comparison:
    """A whole comparison: rows per test and metric, and what the gate concluded."""

    current: ResultSet
    baseline: ResultSet | None
    rows: list[MetricRow]
    hardware_mismatch: bool = False
    gating: bool = True  # False: shown only (no baseline, or other hardware not allowed)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # fail the gate like a regression
    alpha: float = FAMILY_ALPHA
    prior: dict[str, float] = field(default_factory=dict)

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
    def gate_failed(self) -> bool:
        return bool(self.problems) or (self.gating and bool(self.regressions))

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
    problems = [
        f"{g.name} failed in the current run" + (f": {errors[0]}" if (errors := _errors(g)) else "")
        for g in current_groups.values()
        if not all(r.passed for r in g.repeats)
    ]
    if baseline is None:
        rows = [
            _current_only_row(group, metric, thresholds)
            for group in current_groups.values()
            for metric in group.metric_names()
            if group.samples(metric)
        ]
        note = "No baseline yet: nothing to compare against, so nothing is gated. This run can become the baseline."
        return Comparison(current, None, rows, gating=False, notes=[note], problems=problems, alpha=alpha)

    comparison = Comparison(current, baseline, [], problems=problems, alpha=alpha)
    _check_hardware(comparison, allow_hardware_mismatch)
    baseline_groups = group_tests(baseline)
    paired: list[_Pending] = []
    for key in sorted(set(current_groups) | set(baseline_groups)):
        base_group, cur_group = baseline_groups.get(key), current_groups.get(key)
        if base_group is None or cur_group is None:
            name, where = (base_group.name, "baseline") if base_group else (cur_group.name, "current run")  # type: ignore[union-attr]
            comparison.notes.append(f"Test {name} is only in the {where}, so it is not compared.")
            continue
        names = sorted(set(base_group.metric_names()) | set(cur_group.metric_names()), key=metric_sort_key)
        pairs = (_paired_row(base_group, cur_group, name, thresholds) for name in names)
        paired.extend(p for p in pairs if p.base or p.cur)  # all null on both sides (no GPU): nothing to show
    comparison.rows = [p.row for p in paired]
    _judge(comparison, paired)
    _summarise_notes(comparison)
    return comparison


def _errors(group: RepeatGroup) -> list[str]:
    return [e for r in group.repeats for e in r.errors]


def _check_hardware(comparison: Comparison, allow: bool) -> None:
    base, cur = comparison.baseline.fingerprint, comparison.current.fingerprint  # type: ignore[union-attr]
    if base and cur and base != cur:
        comparison.hardware_mismatch = True
        comparison.gating = allow
        described = f"baseline {hardware_label(comparison.baseline)} ({base}), current {hardware_label(comparison.current)} ({cur})"  # type: ignore[arg-type]
        if allow:
            comparison.notes.append(f"Hardware differs ({described}); gated anyway because of --allow-hardware-mismatch.")
        else:
            comparison.notes.append(
                f"Hardware differs ({described}), so the comparison is shown but not gated: "
                "numbers from different machines are not comparable. Pass --allow-hardware-mismatch to gate anyway."
            )
    elif not (base and cur):
        side = "baseline" if not base else "current run"
        comparison.notes.append(f"The {side} has no hardware fingerprint (hardware.json), so the hardware could not be checked.")


def hardware_label(result_set: ResultSet) -> str:
    """A short description of the hardware, e.g. ``1× NVIDIA H100 80GB HBM3``."""
    hw = result_set.hardware
    gpus = hw.get("gpus")
    names = [str(g["name"]) for g in gpus if isinstance(g, dict) and g.get("name")] if isinstance(gpus, list) else []
    if names:
        count = hw.get("gpu_count") if isinstance(hw.get("gpu_count"), int) else len(names)
        return f"{count}× {names[0]}"
    if hw.get("cpu_model"):
        return f"CPU {hw['cpu_model']}"
    return "unknown hardware"


def _current_only_row(group: RepeatGroup, metric: str, thresholds: Thresholds) -> MetricRow:
    values = group.samples(metric)
    return MetricRow(
        test=group.name, key=group.key, metric=metric, direction=metric_direction(metric),
        threshold_pct=thresholds.for_metric(metric), baseline=None, current=center(values),
        n_baseline=0, n_current=len(values), verdict=Verdict.ONLY_CURRENT,
    )  # fmt: skip


def center(values: list[float]) -> float | None:
    """The typical value of the repeats: the geometric mean when all are positive, else the mean."""
    if not values:
        return None
    if all(v > 0 for v in values):
        return float(math.exp(sum(math.log(v) for v in values) / len(values)))
    return float(sum(values) / len(values))


@dataclass
class _Pending:
    row: MetricRow
    base: list[float]
    cur: list[float]


def _paired_row(base: RepeatGroup, cur: RepeatGroup, metric: str, thresholds: Thresholds) -> _Pending:
    b, c = base.samples(metric), cur.samples(metric)
    row = MetricRow(
        test=cur.name, key=cur.key, metric=metric, direction=metric_direction(metric),
        threshold_pct=thresholds.for_metric(metric), baseline=center(b), current=center(c),
        n_baseline=len(b), n_current=len(c),
    )  # fmt: skip
    return _Pending(row, b, c)


def _judge(comparison: Comparison, paired: list[_Pending]) -> None:
    """Decide every row's verdict; the statistics run once over the whole family of gated rows."""
    log_rows: list[_Pending] = []
    linear_rows: list[_Pending] = []
    missing: dict[str, list[str]] = {}
    for item in paired:
        row, b, c = item.row, item.base, item.cur
        if not b or not c:
            row.verdict = Verdict.ONLY_CURRENT if c else Verdict.ONLY_BASELINE
            if row.gated and b and not c:
                row.verdict, row.reason = Verdict.MISSING, "gated metric missing from the current run"
                missing.setdefault(row.test, []).append(row.metric)
            continue
        row.change_pct = _change_pct(b, c)
        if not row.gated:
            row.verdict, row.reason = Verdict.NOT_GATED, "not gated" if row.direction else "no known direction"
        elif len(b) < 2 or len(c) < 2:
            row.method = "threshold only"
            row.verdict = _threshold_verdict(row)
            row.reason = "one repeat on a side: plain threshold, no significance test"
        else:
            row.method = "moderated t"
            (log_rows if min(b + c) > 0 else linear_rows).append(item)
    for test, names in missing.items():
        comparison.problems.append(
            f"{test}: gated metrics missing from the current run (present in the baseline): {', '.join(names)}."
        )
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
            row.verdict, row.reason = Verdict.REGRESSION, "beyond threshold and significant"
        elif decision.improvement[index]:
            row.verdict, row.reason = Verdict.IMPROVEMENT, "beyond threshold and significant"
        elif decision.worse_beyond[index] or decision.better_beyond[index]:
            row.verdict, row.reason = Verdict.UNCHANGED, "beyond threshold but within noise"
        else:
            row.verdict, row.reason = Verdict.UNCHANGED, "within threshold"


def _linear_ci(item: _Pending, low: float, high: float) -> tuple[float | None, float | None]:
    base = float(np.mean(item.base))
    if base == 0:
        return None, None
    return low / abs(base) * 100.0, high / abs(base) * 100.0


def _summarise_notes(comparison: Comparison) -> None:
    single = [r for r in comparison.rows if r.method == "threshold only"]
    if single:
        comparison.notes.append(
            f"{len(single)} gated metrics have a single repeat on a side, so only the plain threshold "
            "applies: the significance test needs repeats (set `repeats: 5` in the suite)."
        )
    few = min((min(r.n_baseline, r.n_current) for r in comparison.rows if r.method == "moderated t"), default=5)
    if few < 5:
        comparison.notes.append(
            f"Some gated metrics have only {few} repeats on a side, so the significance test is weak: by simulation, "
            "a 10% regression of one metric is caught about 2 times in 3 with 3 repeats, 95% of the time with 5."
        )
    for side, verdict in (("baseline", Verdict.ONLY_BASELINE), ("current run", Verdict.ONLY_CURRENT)):
        names = sorted({r.metric for r in comparison.rows if r.verdict is verdict})
        if names:
            comparison.notes.append(f"Only in the {side}, so not compared: {', '.join(names)}.")
