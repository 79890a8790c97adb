"""What a comparison is, as data: the types ``kitt.compare`` returns, built from ``kitt.gate``'s decisions.

A :class:`Comparison` holds, per test, its :class:`MetricRow`\\s (each side's :class:`Spread`,
the change, the interval, the Holm-adjusted p-value, the :class:`Verdict` and its
:class:`Reason`), the chart series as numbers, and the facts the gate weighed (hardware,
identity, what is missing). It holds no words: ``kitt.report`` formats these fields and
computes nothing again. How the fields are filled in is ``kitt.compare``'s concern; this
module only defines them and the verdict they add up to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from kitt.results import ResultSet

FAMILY_ALPHA = 0.01  # the chance of any false alarm in a report (Holm over every gated metric)
MIN_HISTORY = 3  # baseline jobs from which the history design measures the shift between jobs


@dataclass(frozen=True, order=True)
class MatchKey:
    """What matches a test across runs: its name without the level suffix, and its load level."""

    base: str
    kind: str  # "concurrency", "rate" or "" (no level known)
    level: float


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
    INCONCLUSIVE = "inconclusive"  # may be beyond threshold, but noise leaves it undecided
    INCOMPLETE = "incomplete"  # a gated metric the baseline has and the current run lacks
    NOT_GATED = "not gated"
    ONLY_BASELINE = "only in baseline"
    ONLY_CURRENT = "only in current"


class Design(str, Enum):
    """How a metric was tested: the gate's designs, or none (not gated, or one side only)."""

    HISTORY = "history t"
    PAIRED = "paired t"
    SINGLE = "moderated t"
    THRESHOLD = "threshold only"
    NONE = "none"


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


@dataclass(frozen=True)
class MetricRow:
    """One metric of one test, compared. Changes and intervals are in percent."""

    test: str
    key: MatchKey
    metric: str
    direction: str | None
    threshold_pct: float | None
    baseline_spread: Spread | None  # every baseline repeat (all jobs)
    current_spread: Spread | None
    change_pct: float | None = None
    ci_low_pct: float | None = None
    ci_high_pct: float | None = None
    p_value: float | None = None  # Holm-adjusted, one-sided in the direction the metric moved
    method: Design = Design.NONE
    verdict: Verdict = Verdict.NOT_GATED
    reason: Reason = Reason.NONE
    baseline_jobs: int = 0
    repeats_to_settle: int | None = None  # inconclusive: repeats a side that would decide it

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
    n_baseline: int  # repeats of the newest baseline job; 0 when only in the current run
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
class HistorySeries:
    """One key metric of one test across the baseline jobs (oldest to newest) and this run."""

    test: str
    metric: str
    jobs: list[float]
    current: float


@dataclass(frozen=True)
class CurvePoint:
    """One probed load of a capacity search: its measures (the mean of a re-measured load's probes)
    and whether the search judged it to meet the SLO (on the mean of its SLO ratios)."""

    load: float
    probes: int  # measured levels at this load (2: re-measured near the goal)
    meets_slo: bool
    request_throughput: float | None
    p99_ttft_ms: float | None
    p99_tpot_ms: float | None
    p99_e2el_ms: float | None


@dataclass(frozen=True)
class CapacityCurve:
    """The latency-throughput curve of one repeat of a capacity test on one side (kitt.capacity):
    every probed load in load order, the SLO it was searched under and where the boundary lies."""

    test: str
    side: str  # "baseline" or "current"
    run_number: int
    over: str  # "concurrency" or "request_rate"
    slo: tuple[tuple[str, float], ...]
    points: tuple[CurvePoint, ...]
    probes: int  # measured levels in all (re-measures count)
    repeats: int  # repeats of the test on this side; the curve is one of them
    held: float | None  # the highest load judged to meet the SLO
    failed: float | None  # the lowest load above it judged to miss it
    bound: float  # kitt.capacity's capacity_bound: 1 held at max, -1 failed at min, 0 within
    limit: str | None = None  # the latency goal drawn (the one both sides came closest to missing)


@dataclass(frozen=True)
class FailedTest:
    name: str
    error: str | None


@dataclass(frozen=True)
class Incomplete:
    """Why the current results cannot be trusted to pass: each field names what is missing."""

    run_failed: bool = False  # metrics.json says the run did not pass (cancelled, crashed...)
    upstream: str | None = None  # the benchmark job's own conclusion, when not a success
    failed_tests: tuple[FailedTest, ...] = ()
    missing_tests: tuple[str, ...] = ()  # in the newest baseline job, not in the current run
    missing_repeats: tuple[tuple[str, int, int], ...] = ()  # (test, repeats run, repeats expected)
    missing_metrics: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (test, gated metrics it lacks)

    def __bool__(self) -> bool:
        return bool(
            self.run_failed
            or self.upstream
            or self.failed_tests
            or self.missing_tests
            or self.missing_repeats
            or self.missing_metrics
        )


@dataclass(frozen=True)
class Identity:
    """What was measured on each side; another model, engine or suite is not the same thing."""

    differs: tuple[tuple[str, str, str], ...] = ()  # (field, baseline value, current value)
    image_digest: tuple[str, str] | None = None  # (baseline, current) when the engine image changed


@dataclass
class Comparison:
    """A whole comparison: every test and metric compared, and the facts the gate weighed."""

    current: ResultSet
    baseline: ResultSet | None  # the newest baseline job
    history: list[ResultSet] = field(default_factory=list)  # every baseline job, newest first
    tests: list[TestComparison] = field(default_factory=list)
    charts: list[ChartSeries] = field(default_factory=list)
    history_series: list[HistorySeries] = field(default_factory=list)  # with a history of baseline jobs
    curves: list[CapacityCurve] = field(default_factory=list)  # capacity tests: one repeat's probes per side
    hardware_mismatch: bool = False
    allow_hardware_mismatch: bool = False
    identity: Identity = field(default_factory=Identity)
    allow_mismatch: bool = False
    incomplete: Incomplete = field(default_factory=Incomplete)
    tests_only_in_baseline: list[str] = field(default_factory=list)
    tests_only_in_current: list[str] = field(default_factory=list)
    paired: bool = False  # an A/B run in one job: the two sides are its arms
    pairs_dropped: dict[str, int] = field(default_factory=dict)  # test -> pairs dropped to rebalance the order
    alpha: float = FAMILY_ALPHA
    prior: dict[str, float] = field(default_factory=dict)
    # Older baseline jobs left out of the history: another model, engine or suite (timestamp, what)
    history_excluded: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rows(self) -> list[MetricRow]:
        return [row for test in self.tests for row in test.rows]

    @property
    def gating(self) -> bool:
        """False: shown only (no baseline, other hardware, or another model/engine/suite, not allowed)."""
        if self.baseline is None:
            return False
        hardware_ok = not self.hardware_mismatch or self.allow_hardware_mismatch
        return hardware_ok and (not self.identity.differs or self.allow_mismatch)

    @property
    def design(self) -> str:
        """How drift was handled: "paired" (A/B in one job), "history" (3+ baseline jobs), "single"
        (one job) or "none"."""
        if self.baseline is None:
            return "none"
        if self.paired:
            return "paired"
        return "history" if len(self.history) >= MIN_HISTORY else "single"

    @property
    def unknown_fingerprint(self) -> str | None:
        """ "baseline" or "current" when that side has no hardware fingerprint (so no check)."""
        if self.baseline is None:
            return None
        for side, result_set in (("baseline", self.baseline), ("current", self.current)):
            if not result_set.fingerprint:
                return side
        return None

    def metrics_only_in(self, verdict: Verdict) -> list[str]:
        return sorted({r.metric for r in self.rows if r.verdict is verdict})

    def rows_with(self, verdict: Verdict) -> list[MetricRow]:
        return [r for r in self.rows if r.verdict is verdict]

    @property
    def regressions(self) -> list[MetricRow]:
        return self.rows_with(Verdict.REGRESSION)

    @property
    def improvements(self) -> list[MetricRow]:
        return self.rows_with(Verdict.IMPROVEMENT)

    @property
    def unchanged(self) -> list[MetricRow]:
        return self.rows_with(Verdict.UNCHANGED)

    @property
    def inconclusive(self) -> list[MetricRow]:
        return self.rows_with(Verdict.INCONCLUSIVE)

    @property
    def nothing_compared(self) -> bool:
        """Gating, a metric that gates on one side, and not one gated metric with numbers on both
        (say, a baseline whose metrics are all named otherwise): a mismatch, never a silent pass."""
        gated = [r for r in self.rows if r.gated]
        return self.gating and bool(gated) and not any(r.baseline is not None and r.current is not None for r in gated)

    @property
    def gate_failed(self) -> bool:
        """Fail closed: incomplete results fail like a regression, gated or not; so does a gated
        comparison in which nothing could be compared."""
        return bool(self.incomplete) or (self.gating and (bool(self.regressions) or self.nothing_compared))

    @property
    def verdict(self) -> str:
        """One word for the whole report: regression, incomplete, not gated, no baseline,
        nothing compared, inconclusive, improvement or unchanged."""
        if self.gating and self.regressions:
            return "regression"
        if self.incomplete:
            return "incomplete"
        if self.baseline is None:
            return "no baseline"
        if not self.gating:
            return "not gated"
        if not any(r.gated and r.baseline is not None and r.current is not None for r in self.rows):
            return "nothing compared"
        if self.inconclusive:
            return "inconclusive"
        return "improvement" if self.improvements else "unchanged"
