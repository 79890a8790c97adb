"""Capacity at SLO: the most load one deployment serves while every latency goal holds.

A capacity test (``capacity:`` in a suite's test, :class:`kitt.config.CapacitySpec`) has no fixed
levels: each repeat searches [min, max] for the highest load (concurrent streams, or requests/s of
Poisson arrivals) whose measured level meets every SLO key. Each probe is one level of the test's
own workload, built as the arm builds any level (``kitt.workload.plan``: lengths, mix or dataset,
exact lengths through the engine's tokenizer), ``num_requests`` of them, time-boxed by ``duration_s``.

The search (:class:`CapacitySearch`, pure: it is told what each probe measured and says what to
probe next):

1. **Monotone probing.** Probe ``min``; while the SLO holds, double the load (capped at ``max``).
   If it fails at ``min`` the result is ``capacity_bound = -1`` ("below min"); if it holds at
   ``max``, ``capacity_bound = 1`` ("above max"). Either way ``capacity`` is left empty: the search
   reports a number only where it saw the SLO hold at it and fail above it.
2. **Bisection** between the highest passing load and the lowest failing one, until they are
   within ``precision_pct`` of the passing one. Over concurrency it goes on until they are adjacent
   whole numbers (exact streams: at most log2(max - min) more probes), whatever the precision.
3. **Noise-aware verdicts.** A probe's margin is its worst ratio of measured to allowed value
   over the SLO keys (1.0: exactly at the goal). A probe within ``NEAR_PCT`` of the goal is
   measured once more and judged on the mean of its two ratios, so one noisy p99 near the
   boundary does not move the bracket; a probe far from the goal is measured once.
4. **Common random numbers.** Every probe of one repeat sends the same arrival pattern (the
   test's ``arrival``: Poisson, gamma or constant), scaled to its rate (:func:`probe_schedule`
   draws every probe's schedule from one key, the test's name and the repeat, and the draws of
   ``kitt.workload.arrivals`` scale with 1/rate), so the probes of a repeat differ only in load: the
   measured curve rises with the load instead of jumping with each probe's luck, and a
   re-measure near the goal sees the server's noise. Repeats draw different patterns, so the
   spread of ``capacity`` across repeats is the arrival pattern's effect on the p99.
5. **A cap:** at most ``max_probes`` measured levels per repeat (re-measures count). When the cap
   stops the search early, ``capacity`` is still the highest load seen to pass, and
   ``capacity_upper`` the lowest seen to fail, so the bracket says how sure it is.

Every measured level is kept (``Probe``): the arm writes the curve into metrics.json under
``capacity_curves``, beside the flat metrics of the repeat's result (``capacity``,
``capacity_bound``, ``capacity_lower``, ``capacity_upper``, ``capacity_probes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from kitt import results as rs
from kitt.config import CapacitySpec, Level, TestSpec
from kitt.workload import arrivals

NEAR_PCT = 10.0  # a probe whose worst SLO ratio is within this of 1.0 is measured twice
GROWTH = 2.0  # monotone probing multiplies the load by this while the SLO holds
ABOVE_MAX, WITHIN, BELOW_MIN = 1.0, 0.0, -1.0  # capacity_bound

# What is kept of each probed level (the curve): load, throughput, per-user token rate, tail latencies.
CURVE_METRICS = (
    "request_throughput",
    "output_throughput",
    "p99_ttft_ms",
    "p99_tpot_ms",
    "p99_e2el_ms",
    "median_tpot_ms",
)


def slo_ratio(metrics: dict[str, float | None], slo: dict[str, float], max_error_rate: float = 0.0) -> float:
    """The worst measured/allowed ratio over the SLO keys: at most 1.0 meets every goal.

    A latency the level could not measure (every request failed) counts as missing its goal.
    The error-rate key is ``max_error_rate`` (the suite's, unless the SLO names one)."""
    worst = 0.0
    for key, limit in slo.items():
        if key == "max_error_rate":
            continue
        value = metrics.get(key)
        worst = max(worst, math.inf if value is None else value / limit)
    allowed = slo.get("max_error_rate", max_error_rate)
    completed, failed = metrics.get("completed") or 0.0, metrics.get("failed") or 0.0
    rate = failed / (completed + failed) if completed + failed else 1.0
    if rate > allowed:
        worst = max(worst, math.inf if allowed == 0 else max(rate / allowed, 1.0 + 1e-9))
    return worst


@dataclass(frozen=True)
class Probe:
    """One measured level of a search: its load, its SLO ratio and what the curve keeps."""

    load: float
    ratio: float
    metrics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "load": self.load,
            "slo_ratio": self.ratio if math.isfinite(self.ratio) else None,
            "meets_slo": self.ratio <= 1.0,
            **self.metrics,
        }


@dataclass(frozen=True)
class Outcome:
    """A search's answer: ``capacity`` only when bracketed; ``bound`` ABOVE_MAX/BELOW_MIN otherwise."""

    capacity: float | None
    bound: float
    lower: float | None  # highest load judged to meet the SLO
    upper: float | None  # lowest load judged to miss it
    probes: int

    def metrics(self) -> dict[str, float | None]:
        return {
            "capacity": self.capacity,
            "capacity_bound": self.bound,
            "capacity_lower": self.lower,
            "capacity_upper": self.upper,
            "capacity_probes": float(self.probes),
        }


class CapacitySearch:
    """Monotone probing, then bisection, with re-measures near the goal and a cap on probes."""

    def __init__(self, spec: CapacitySpec, near_pct: float = NEAR_PCT) -> None:
        self.spec = spec
        self.near = near_pct / 100.0
        self.integer = spec.over == "concurrency"
        self.ratios: dict[float, list[float]] = {}
        self.measured = 0
        self.lower: float | None = None
        self.upper: float | None = None
        self._last: float | None = None

    def record(self, load: float, ratio: float) -> None:
        self.ratios.setdefault(load, []).append(ratio)
        self.measured += 1
        self._last = load
        if self._pending(load):
            return
        if self.meets(load):
            self.lower = load if self.lower is None else max(self.lower, load)
        else:
            self.upper = load if self.upper is None else min(self.upper, load)

    def meets(self, load: float) -> bool:
        ratios = self.ratios[load]
        return sum(ratios) / len(ratios) <= 1.0

    def _pending(self, load: float) -> bool:
        ratios = self.ratios[load]
        return len(ratios) == 1 and math.isfinite(ratios[0]) and abs(ratios[0] - 1.0) <= self.near

    def next_load(self) -> float | None:
        """The next load to measure, or None when the search is done (or out of probes)."""
        if self.measured >= self.spec.max_probes:
            return None
        if self._last is not None and self._pending(self._last):
            return self._last
        if self.lower is None:
            return self.spec.min if self.upper is None else None
        if self.upper is None:
            if self.lower >= self.spec.max:
                return None
            grown = self.lower * GROWTH
            grown = max(math.ceil(grown), self.lower + 1) if self.integer else grown
            return float(min(grown, self.spec.max))
        if self._converged():
            return None
        middle = (self.lower + self.upper) / 2
        return float(math.floor(middle)) if self.integer else middle

    def _converged(self) -> bool:
        assert self.lower is not None and self.upper is not None
        gap = self.upper - self.lower
        if self.integer:
            return gap <= 1
        return gap <= self.lower * self.spec.precision_pct / 100.0

    def outcome(self) -> Outcome:
        if self.lower is None:
            bound = BELOW_MIN if self.upper is not None else WITHIN
            return Outcome(None, bound, None, self.upper, self.measured)
        if self.upper is None and self.lower >= self.spec.max:
            return Outcome(None, ABOVE_MAX, self.lower, None, self.measured)
        # Bracketed, or stopped by the cap before the first failure: the highest load seen to pass.
        return Outcome(self.lower, WITHIN, self.lower, self.upper, self.measured)


def level_of(spec: CapacitySpec, load: float) -> Level:
    return Level("concurrency", int(load)) if spec.over == "concurrency" else Level("rate", load)


def probe_schedule(test: TestSpec, rate: float, seed: int, name: str, run_number: int) -> list[float]:
    """An open-loop probe's due times: one key per repeat (not per probe), so every probe of a
    repeat draws the same gaps from the same random stream; exponential and gamma gaps scale with
    1/rate, so each probe's steady schedule is the repeat's unit-rate pattern divided by its rate
    (a ramp-up keeps its length in seconds; ``duration_s`` cuts each schedule where it ends)."""
    return arrivals.schedule(
        test.arrival, rate, test.num_requests, f"{seed}:{name}:{run_number}:arrivals", test.duration_s
    )


class ProbingArm(Protocol):
    """What the search needs of an arm (kitt.arm.Arm): one measured level, not kept as a result."""

    def probe(self, test: TestSpec, level: Level, run_number: int, tag: str) -> dict[str, float | None]: ...


def search(
    arm: ProbingArm, test: TestSpec, run_number: int, max_error_rate: float
) -> tuple[rs.TestResult, list[Probe]]:
    """One repeat of a capacity test: probe until the search is done; the result and its curve."""
    spec = test.capacity
    assert spec is not None
    state = CapacitySearch(spec)
    curve: list[Probe] = []
    while (load := state.next_load()) is not None:
        level = level_of(spec, load)
        metrics = arm.probe(test, level, run_number, f"p{state.measured + 1}")
        ratio = slo_ratio(metrics, spec.slo, max_error_rate)
        state.record(load, ratio)
        kept = {k: metrics.get(k) for k in CURVE_METRICS}
        tpot = metrics.get("median_tpot_ms")
        kept["per_user_tokens_per_s"] = 1000.0 / tpot if tpot else None  # one stream's decode rate
        curve.append(Probe(load, ratio, kept))
    outcome = state.outcome()
    name = test.test_name(Level("capacity", 0))
    return rs.TestResult(test_name=name, run_number=run_number, passed=True, metrics=outcome.metrics()), curve


def describe(spec: CapacitySpec, outcome_metrics: dict[str, float | None]) -> str:
    """One line for the console: the capacity found, or the bound it hit."""
    unit = "streams" if spec.over == "concurrency" else "req/s"
    bound = outcome_metrics.get("capacity_bound")
    probes = int(outcome_metrics.get("capacity_probes") or 0)
    if bound == ABOVE_MAX:
        return f"capacity above max: the SLO held at {spec.max:g} {unit} ({probes} levels)"
    if bound == BELOW_MIN:
        return f"capacity below min: the SLO failed already at {spec.min:g} {unit} ({probes} levels)"
    value, upper = outcome_metrics.get("capacity"), outcome_metrics.get("capacity_upper")
    if value is None:
        return f"capacity not found ({probes} levels)"
    above = f", missed at {upper:g}" if upper is not None else ", probe cap reached before a miss"
    return f"capacity {value:g} {unit} (met at {value:g}{above}; {probes} levels)"
