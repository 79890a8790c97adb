"""Compare a current result set with its baseline jobs: matching, identity, coverage and verdicts, as data.

Results are matched by test and load level (concurrency or request rate); the repeats of a
test (its ``run_number``\\s) are the samples. The baseline is one job or a history of jobs
(newest first); ``kitt.gate`` decides each gated metric: a regression only when its change is
beyond its threshold in the worse direction AND significant after Holm's correction over the
whole report. Beyond the threshold but not significant is *inconclusive*, never "unchanged".

The gate fails closed: a current run that did not pass, a failed repeat, a missing repeat or a
test that the baseline has and the current run lacks makes the comparison *incomplete*, and
an incomplete comparison never passes. Another model, engine, suite or workload on the baseline side is
shown but not gated (like other hardware) unless the caller allows it.

The :class:`Comparison` this module returns (its types are ``kitt.comparison``'s) is complete and holds no words: every number the
report shows (centres, spreads, changes, intervals, chart series) and every fact it explains
(hardware, tests or metrics on one side only, failed tests) is a field. ``kitt.report`` only
formats it; nothing downstream computes a statistic again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from kitt import gate
from kitt.comparison import (
    CapacityCurve,
    ChartSeries,
    Comparison,
    CurvePoint,
    Design,
    FailedTest,
    HistorySeries,
    Identity,
    Incomplete,
    MatchKey,
    MetricRow,
    Reason,
    Spread,
    TestComparison,
    Verdict,
    center,
)
from kitt.results import ResultSet
from kitt.results import TestResult as Result
from kitt.thresholds import CHART_METRICS, LOAD_PARAMETERS, LOWER, Thresholds, metric_direction, metric_sort_key

FAMILY_ALPHA = gate.FAMILY_ALPHA  # the chance of any false alarm in a report
_LEVEL_SUFFIX = re.compile(r"^(?P<base>.+?)-(?P<kind>[cr])(?P<level>\d+(?:\.\d+)?)$")

# --------------------------------------------------------------------------- matching


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


def compare_result_sets(
    current: ResultSet,
    baseline: ResultSet | list[ResultSet] | None,
    thresholds: Thresholds | None = None,
    *,
    allow_hardware_mismatch: bool = False,
    allow_mismatch: bool = False,
    upstream_failure: str | None = None,
    alpha: float = gate.FAMILY_ALPHA,
) -> Comparison:
    """Match, test and judge every metric.

    ``baseline`` is one result set, a history of them (one per baseline job, any order: the
    newest by timestamp is "the baseline"), or None for a current-only comparison.
    ``upstream_failure`` is the benchmark job's own conclusion when it was not a success
    (report mode reads it from the workflow run), which makes the results incomplete.
    """
    thresholds = thresholds or Thresholds()
    history = sorted(
        baseline if isinstance(baseline, list) else [baseline] if baseline else [],
        key=lambda r: r.timestamp,
        reverse=True,
    )
    history, excluded = _same_identity_history(history, current)
    newest = history[0] if history else None
    comparison = Comparison(
        current,
        newest,
        history,
        allow_hardware_mismatch=allow_hardware_mismatch,
        allow_mismatch=allow_mismatch,
        alpha=alpha,
    )
    comparison.history_excluded = excluded
    current_groups = group_tests(current)
    if newest is None:
        comparison.incomplete = _incompleteness(current, current_groups, None, upstream_failure, {})
        comparison.tests = [_current_only(group, thresholds) for group in current_groups.values()]
        comparison.charts = _charts(current_groups, None)
        comparison.curves = _same_limit(capacity_curves(current, "current"))
        return comparison

    base_fp, cur_fp = newest.fingerprint, current.fingerprint
    comparison.hardware_mismatch = bool(base_fp and cur_fp and base_fp != cur_fp)
    positions = _ab_positions(newest, current) if len(history) == 1 else None
    comparison.paired = positions is not None
    # The arms of an A/B run differ on purpose (that is what it measures): only other runs are a mismatch.
    comparison.identity = _identity(newest, current, arms=comparison.paired)
    # A baseline of another model, engine, suite or tool measured something else: the tests and
    # metrics it has and this run lacks are no sign that this run is incomplete.
    same_thing = not comparison.identity.differs or allow_mismatch
    job_groups = [group_tests(job) for job in history]
    baseline_groups = job_groups[0]
    planned: list[tuple[TestComparison, list[_Plan]]] = []
    candidates: list[gate.Candidate] = []
    missing_metrics: dict[str, list[str]] = {}
    for key in sorted(set(current_groups) | set(baseline_groups)):
        base_group, cur_group = baseline_groups.get(key), current_groups.get(key)
        if base_group is None or cur_group is None:
            if base_group is not None:
                comparison.tests_only_in_baseline.append(base_group.name)
            elif cur_group is not None:
                comparison.tests_only_in_current.append(cur_group.name)
            continue
        jobs = [groups[key] for groups in job_groups if key in groups]
        names = sorted(set(base_group.metric_names()) | set(cur_group.metric_names()), key=metric_sort_key)
        samples = [_samples(jobs, cur_group, name, thresholds) for name in names]
        samples = [m for m in samples if m.base or m.cur]  # all null on both sides (no GPU): nothing to show
        if positions is not None:
            kept, dropped = _balanced_pairs(base_group, cur_group, positions.get(cur_group.name, []))
            if dropped:
                comparison.pairs_dropped[cur_group.name] = dropped
            samples = [replace(m, pairs=_pair_values(kept, m.metric)) for m in samples]
        plans = []
        for metric in samples:
            plan = _plan(metric)
            if plan.candidate is not None:
                plan = replace(plan, index=len(candidates))
                candidates.append(plan.candidate)
            elif plan.verdict is Verdict.INCOMPLETE and not same_thing:
                plan = replace(plan, verdict=Verdict.ONLY_BASELINE, reason=Reason.NONE)
            elif plan.verdict is Verdict.INCOMPLETE:
                missing_metrics.setdefault(metric.test, []).append(metric.metric)
            plans.append(plan)
        planned.append(
            (TestComparison(key, cur_group.name, len(base_group.repeats), len(cur_group.repeats), []), plans)
        )
    judgement = gate.judge(candidates, alpha)
    comparison.prior = judgement.prior
    comparison.tests = [replace(test, rows=[_row(plan, judgement) for plan in plans]) for test, plans in planned]
    comparison.incomplete = _incompleteness(
        current,
        current_groups,
        baseline_groups if same_thing else None,
        upstream_failure,
        missing_metrics if same_thing else {},
    )
    comparison.charts = _charts(current_groups, baseline_groups)
    comparison.curves = _same_limit(capacity_curves(newest, "baseline") + capacity_curves(current, "current"))
    if comparison.design == "history":
        comparison.history_series = _history_series(job_groups, current_groups)
    return comparison


def _history_series(
    job_groups: list[dict[MatchKey, RepeatGroup]], current_groups: dict[MatchKey, RepeatGroup]
) -> list[HistorySeries]:
    """The key metrics of every test across the baseline jobs, oldest first, and this run."""
    series = []
    for key, group in current_groups.items():
        for metric in CHART_METRICS:
            now = center(group.samples(metric))
            jobs = [center(groups[key].samples(metric)) for groups in reversed(job_groups) if key in groups]
            values = [v for v in jobs if v is not None]
            if now is not None and len(values) >= 2:
                series.append(HistorySeries(group.name, metric, values, now))
    return series


def _ab_positions(baseline: ResultSet, current: ResultSet) -> dict[str, list[int]] | None:
    """The candidate arm's place in each pair, per test, when the two sides are the arms of one A/B run."""
    base_ab, cur_ab = baseline.config.get("ab"), current.config.get("ab")
    if not (isinstance(base_ab, dict) and isinstance(cur_ab, dict)):
        return None
    if base_ab.get("run_id") != cur_ab.get("run_id") or (base_ab.get("arm"), cur_ab.get("arm")) != (
        "baseline",
        "candidate",
    ):
        return None
    positions = cur_ab.get("positions")
    if not isinstance(positions, dict):
        return None
    return {str(k): [p for p in v if p in (0, 1)] for k, v in positions.items() if isinstance(v, list)}


def _balanced_pairs(
    base: RepeatGroup, cur: RepeatGroup, positions: list[int]
) -> tuple[list[tuple[Result, Result]], int]:
    """The pairs whose two repeats both passed, with the order kept balanced: when a failure leaves
    more baseline-first pairs than candidate-first ones (or the reverse) by more than the design's
    one, the majority's last pairs are dropped. Returns the kept pairs and how many were dropped."""
    by_run = {r.run_number: r for r in base.repeats}
    complete = []
    for index, position in enumerate(positions):
        pair = (by_run.get(index + 1), next((r for r in cur.repeats if r.run_number == index + 1), None))
        if pair[0] is not None and pair[1] is not None and pair[0].passed and pair[1].passed:
            complete.append((pair[0], pair[1], position))
    dropped = 0
    while True:
        candidate_first = [p for p in complete if p[2] == 0]
        baseline_first = [p for p in complete if p[2] == 1]
        if abs(len(candidate_first) - len(baseline_first)) <= 1:
            break
        majority = candidate_first if len(candidate_first) > len(baseline_first) else baseline_first
        complete.remove(majority[-1])
        dropped += 1
    return [(b, c) for b, c, _ in complete], dropped


def _pair_values(pairs: list[tuple[Result, Result]], metric: str) -> list[tuple[float, float]]:
    values = [(b.metrics.get(metric), c.metrics.get(metric)) for b, c in pairs]
    return [
        (float(b), float(c))
        for b, c in values
        if b is not None and c is not None and math.isfinite(b) and math.isfinite(c)
    ]


def _same_identity_history(
    history: list[ResultSet], current: ResultSet
) -> tuple[list[ResultSet], list[tuple[str, str]]]:
    """The baseline jobs to pool: the newest always (its identity is checked and reported as a
    mismatch), older ones only when they measured what the current run measured. Each job left
    out is returned as (its timestamp, what differs), for the report to say so."""
    kept, excluded = history[:1], []
    for job in history[1:]:
        differs = _identity(job, current).differs
        if differs:
            what = "; ".join(f"{name} {b}" for name, b, _ in differs)
            excluded.append((job.timestamp.strftime("%Y-%m-%d %H:%M UTC"), what))
        else:
            kept.append(job)
    return kept, excluded


def _identity(baseline: ResultSet, current: ResultSet, *, arms: bool = False) -> Identity:
    differs = (
        ()
        if arms
        else tuple(
            (name, str(b), str(c))
            for name, b, c in (
                ("model", baseline.model, current.model),
                ("engine", baseline.engine, current.engine),
                ("suite", baseline.suite_name, current.suite_name),
                ("workload", _workload_fingerprint(baseline), _workload_fingerprint(current)),
            )
            if b != c and "unknown" not in (b, c)
        )
    )
    digests = (baseline.config.get("engine_image_digest"), current.config.get("engine_image_digest"))
    changed = tuple(str(d) for d in digests) if all(digests) and digests[0] != digests[1] else None
    return Identity(differs, changed)  # type: ignore[arg-type]


def _workload_fingerprint(result_set: ResultSet) -> str:
    """config.json's workload fingerprint; "unknown" for a result set written before there was one."""
    workload = result_set.config.get("workload")
    value = workload.get("fingerprint") if isinstance(workload, dict) else None
    return value if isinstance(value, str) and value else "unknown"


def _expected_repeats(current: ResultSet) -> int | None:
    suite = current.config.get("suite")
    repeats = suite.get("repeats") if isinstance(suite, dict) else None
    return repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats > 0 else None


def _auto_repeats_ran(current: ResultSet) -> dict[str, int] | None:
    """A ``repeats: auto`` run (kitt.sequential): the repeats each level ran before it stopped, as
    config.json records them (A/B: pairs; one arm against a history: repeats). None otherwise.
    Such a run is short of nothing when it stops early, whatever the baseline ran."""
    ab = current.config.get("ab")
    record, unit = (ab.get("repeats"), "pairs") if isinstance(ab, dict) else (None, "")
    if record is None:
        record, unit = current.config.get("repeats_auto"), "repeats"
    levels = record.get("levels") if isinstance(record, dict) else None
    if not isinstance(levels, dict):
        return None
    return {
        name: count
        for name, level in levels.items()
        if isinstance(level, dict) and isinstance(count := level.get(unit), int) and not isinstance(count, bool)
    }


def _incompleteness(
    current: ResultSet,
    current_groups: dict[MatchKey, RepeatGroup],
    baseline_groups: dict[MatchKey, RepeatGroup] | None,
    upstream: str | None,
    missing_metrics: dict[str, list[str]],
) -> Incomplete:
    failed = tuple(
        FailedTest(g.name, next((e for r in g.repeats for e in r.errors), None))
        for g in current_groups.values()
        if not all(r.passed for r in g.repeats)
    )
    missing_tests = tuple(g.name for key, g in (baseline_groups or {}).items() if key not in current_groups)
    expected = _expected_repeats(current)
    ran = _auto_repeats_ran(current)
    short = []
    for key, group in current_groups.items():
        want = expected or (len(baseline_groups[key].repeats) if baseline_groups and key in baseline_groups else 0)
        if ran is not None:
            want = ran.get(group.name, 0)
        if len(group.repeats) < want:
            short.append((group.name, len(group.repeats), want))
    return Incomplete(
        run_failed=not current.passed,
        upstream=upstream,
        failed_tests=failed,
        missing_tests=missing_tests,
        missing_repeats=tuple(short),
        missing_metrics=tuple((test, tuple(names)) for test, names in missing_metrics.items()),
    )


def _current_only(group: RepeatGroup, thresholds: Thresholds) -> TestComparison:
    rows = []
    for metric in group.metric_names():
        values = group.samples(metric)
        if values:  # null in every repeat (no GPU, say): nothing to show
            rows.append(
                MetricRow(
                    test=group.name,
                    key=group.key,
                    metric=metric,
                    direction=metric_direction(metric),
                    threshold_pct=thresholds.for_metric(metric),
                    baseline_spread=None,
                    current_spread=Spread.of(values),
                    verdict=Verdict.ONLY_CURRENT,
                )
            )
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
            charts.append(
                ChartSeries(
                    base,
                    kind,
                    metric,
                    [k.level for k in keys],
                    numbers[0],
                    numbers[1] if baseline is not None else None,
                )
            )
    return charts


# --------------------------------------------------------------------------- capacity curves

CURVE_RUN = 1  # the repeat whose curve is shown (the first; each repeat's capacity is in the tables)
_ABOVE_MAX, _BELOW_MIN = 1.0, -1.0  # kitt.capacity's capacity_bound


def capacity_curves(result_set: ResultSet, side: str) -> list[CapacityCurve]:
    """Each capacity test's curve in one result set (metrics.json's ``capacity_curves``, written by
    kitt.arm): run 1's probes (else the lowest run recorded), one point per probed load. A result
    set without curves (older, or no capacity test) has none; a malformed entry is left out."""
    entries = result_set.raw.get("capacity_curves")
    chosen: dict[str, dict[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("test_name"), str)
            and isinstance(entry.get("run_number"), int)
            and isinstance(entry.get("probes"), list)
        ):
            continue
        test, run = entry["test_name"], entry["run_number"]
        kept = chosen.get(test)
        if kept is None or (kept["run_number"] != CURVE_RUN and (run == CURVE_RUN or run < kept["run_number"])):
            chosen[test] = entry
    curves = []
    for test, entry in sorted(chosen.items()):
        curve = _curve(result_set, side, test, entry)
        if curve is not None:
            curves.append(curve)
    return curves


_LATENCY_GOALS = ("p99_ttft_ms", "p99_tpot_ms", "p99_e2el_ms")


def _same_limit(curves: list[CapacityCurve]) -> list[CapacityCurve]:
    """Each test's curves (both sides) with the one latency goal they came closest to breaking, or
    beyond it furthest (the largest measured/allowed ratio over both sides' points): the line drawn."""
    chosen: dict[str, str | None] = {}
    for test in {c.test for c in curves}:
        worst: dict[str, float] = {}
        for curve in (c for c in curves if c.test == test):
            for key, limit in curve.slo:
                if key in _LATENCY_GOALS and limit > 0:
                    ratios = [v / limit for p in curve.points if (v := getattr(p, key)) is not None]
                    worst[key] = max([worst.get(key, -math.inf), *ratios])
        chosen[test] = max(worst, key=lambda k: worst[k]) if worst else None
    return [replace(c, limit=chosen[c.test]) for c in curves]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _curve(result_set: ResultSet, side: str, test: str, entry: dict[str, Any]) -> CapacityCurve | None:
    by_load: dict[float, list[dict[str, Any]]] = {}
    for probe in entry["probes"]:
        load = _number(probe.get("load")) if isinstance(probe, dict) else None
        if load is not None:
            by_load.setdefault(load, []).append(probe)
    if not by_load:
        return None
    points = []
    for load, probes in sorted(by_load.items()):
        # Judged as the search judges a re-measured load: on the mean of its SLO ratios (none: missed).
        ratios = [_number(p.get("slo_ratio")) for p in probes]
        ratio = math.inf if any(r is None for r in ratios) else sum(r for r in ratios if r is not None) / len(ratios)
        points.append(
            CurvePoint(
                load,
                len(probes),
                ratio <= 1.0,
                *(
                    _mean([_number(p.get(k)) for p in probes])
                    for k in ("request_throughput", "p99_ttft_ms", "p99_tpot_ms", "p99_e2el_ms")
                ),
            )
        )
    held = max((p.load for p in points if p.meets_slo), default=None)
    failed = min((p.load for p in points if not p.meets_slo and (held is None or p.load > held)), default=None)
    run = entry["run_number"]
    repeats = [r for r in result_set.results if r.test_name == test]
    outcome = next((r.metrics for r in repeats if r.run_number == run), {})
    bound = _number(outcome.get("capacity_bound"))
    if bound is None:  # no result for the curve: held at every level, or at none
        bound = _ABOVE_MAX if failed is None else _BELOW_MIN if held is None else 0.0
    slo = entry.get("slo")
    goals = tuple((str(k), float(v)) for k, v in slo.items() if _number(v) is not None) if isinstance(slo, dict) else ()
    over = "concurrency" if entry.get("over") == "concurrency" else "request_rate"
    return CapacityCurve(
        test, side, run, over, goals, tuple(points), len(entry["probes"]), len(repeats), held, failed, bound
    )


@dataclass(frozen=True)
class _Samples:
    """One metric of one test before its verdict: what it is and its values on each side."""

    test: str
    key: MatchKey
    metric: str
    direction: str | None
    threshold_pct: float | None
    base: list[float]  # the newest baseline job's repeats
    cur: list[float]
    jobs: list[list[float]]  # every baseline job that has the metric, newest first
    pairs: list[tuple[float, float]] | None = None  # (baseline, current) per kept A/B pair

    @property
    def gated(self) -> bool:
        return self.threshold_pct is not None


@dataclass(frozen=True)
class _Plan:
    """How a metric is settled: a verdict that needs no test, or a candidate for the gate."""

    metric: _Samples
    change_pct: float | None = None
    method: Design = Design.NONE
    verdict: Verdict = Verdict.NOT_GATED
    reason: Reason = Reason.NONE
    candidate: gate.Candidate | None = None
    index: int = -1  # the candidate's place in the gate's family


def _samples(jobs: list[RepeatGroup], cur: RepeatGroup, metric: str, thresholds: Thresholds) -> _Samples:
    """``metric``'s samples in every baseline job (newest first) and in the current run."""
    per_job = [samples for job in jobs if (samples := job.samples(metric))]
    return _Samples(
        cur.name,
        cur.key,
        metric,
        metric_direction(metric),
        thresholds.for_metric(metric),
        jobs[0].samples(metric),
        cur.samples(metric),
        per_job,
    )


def _plan(m: _Samples) -> _Plan:
    """Settle what needs no test; pick the design of the rest, which the gate must judge."""
    b, c = m.base, m.cur
    if not b or not c:
        if m.gated and b and not c:
            return _Plan(m, verdict=Verdict.INCOMPLETE, reason=Reason.MISSING)
        return _Plan(m, verdict=Verdict.ONLY_CURRENT if c else Verdict.ONLY_BASELINE)
    history = len(m.jobs) >= gate.MIN_HISTORY and min(v for job in m.jobs for v in job) > 0 and min(c) > 0
    change = _change_pct([center(job) or 0.0 for job in m.jobs] if history else b, c)
    if not m.gated:
        return _Plan(m, change, reason=Reason.NOT_GATED if m.direction else Reason.NO_DIRECTION)
    design = Design.SINGLE
    if history:
        design = Design.HISTORY
    elif m.pairs is not None and len(m.pairs) >= 2 and min(min(p) for p in m.pairs) > 0:
        design = Design.PAIRED
        base_values, cur_values = zip(*m.pairs)
        change = _change_pct(list(base_values), list(cur_values))
    elif len(b) < 2 or len(c) < 2:
        design = Design.THRESHOLD
    assert m.threshold_pct is not None
    candidate = gate.Candidate(design, change, m.direction == LOWER, m.threshold_pct, b, c, m.jobs, m.pairs)
    return _Plan(m, change, design, candidate=candidate)


def _row(plan: _Plan, judgement: gate.Judgement) -> MetricRow:
    """The finished row: the plan's settled verdict, or the gate's decision on its candidate."""
    m = plan.metric
    pooled = [v for samples in m.jobs for v in samples]
    decision = judgement.decisions[plan.index] if plan.candidate is not None else None
    return MetricRow(
        test=m.test,
        key=m.key,
        metric=m.metric,
        direction=m.direction,
        threshold_pct=m.threshold_pct,
        baseline_spread=Spread.of(pooled) if pooled else None,
        current_spread=Spread.of(m.cur) if m.cur else None,
        change_pct=plan.change_pct,
        method=plan.method,
        baseline_jobs=len(m.jobs),
        verdict=decision.verdict if decision else plan.verdict,
        reason=decision.reason if decision else plan.reason,
        p_value=decision.p_value if decision else None,
        ci_low_pct=decision.ci_low_pct if decision else None,
        ci_high_pct=decision.ci_high_pct if decision else None,
        repeats_to_settle=decision.repeats_to_settle if decision else None,
    )


def _change_pct(b: list[float], c: list[float]) -> float:
    base, cur = center(b), center(c)
    assert base is not None and cur is not None
    if base == cur:
        return 0.0
    if base == 0:
        return math.copysign(math.inf, cur)
    return (cur / base - 1.0) * 100.0 if base > 0 and cur > 0 else (cur - base) / abs(base) * 100.0
