"""Capacity at SLO: the schema's bad inputs, and the search's decisions apart from any I/O.

The search is told each probe's SLO ratio by an oracle with a known answer, so every decision
(probe order, bisection, re-measures near the goal, the probe cap, the bounds) is checked
against a truth; tests/e2e/test_capacity_sim.py checks the same search on the real sim.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kitt.capacity import ABOVE_MAX, BELOW_MIN, WITHIN, CapacitySearch, probe_schedule, slo_ratio
from kitt.config import CapacitySpec, parse_suite, suite_to_dict
from kitt.compare import compare_result_sets
from kitt.comparison import Verdict
from kitt.errors import UsageError
from kitt.results import ResultSet
from kitt.results import TestResult as Result
from kitt.thresholds import HIGHER, Thresholds, metric_direction


def suite(capacity: dict, slo: dict | None = None, **test: object) -> dict:
    data = {"name": "s", "tests": [{"name": "cap", "num_requests": 32, "capacity": capacity, **test}]}
    if slo is not None:
        data["slo"] = slo
    return data


GOOD = {"over": "concurrency", "min": 1, "max": 16, "slo": {"p99_ttft_ms": 500}}


def test_a_capacity_test_parses_and_takes_the_suites_slo_as_default() -> None:
    spec = parse_suite(suite({**GOOD, "slo": {}}, slo={"ttft_ms": 300, "tpot_ms": 40}), "s.yaml").tests[0].capacity
    assert spec is not None and spec.over == "concurrency" and (spec.min, spec.max) == (1, 16)
    assert spec.slo == {"p99_ttft_ms": 300, "p99_tpot_ms": 40}
    own = parse_suite(suite({**GOOD, "slo": {"p99_ttft_ms": 200, "max_error_rate": 0.01}}, slo={"ttft_ms": 300}), "s")
    assert own.tests[0].capacity.slo == {"p99_ttft_ms": 200, "max_error_rate": 0.01}
    assert own.tests[0].test_name(own.tests[0].levels[0]) == "cap-capacity"


@pytest.mark.parametrize(
    "capacity, fragment",
    [
        ({**GOOD, "slo": {"p99_ttft": 500}}, "suite.tests[0].capacity.slo.p99_ttft: unknown key"),
        ({**GOOD, "min": 16, "max": 16}, "suite.tests[0].capacity.min: must be below max"),
        ({**GOOD, "min": 8, "max": 4}, "suite.tests[0].capacity.min: must be below max"),
        ({**GOOD, "precision_pct": 0}, "suite.tests[0].capacity.precision_pct: must be above 0 and below 100"),
        ({**GOOD, "precision_pct": 100}, "suite.tests[0].capacity.precision_pct"),
        ({**GOOD, "slo": {}}, "suite.tests[0].capacity.slo: a capacity search needs a latency goal"),
        ({**GOOD, "slo": {"max_error_rate": 0.1}}, "capacity.slo: a capacity search needs a latency goal"),
        ({**GOOD, "over": "users"}, "suite.tests[0].capacity.over: must be one of concurrency, request_rate"),
        ({**GOOD, "max": 64}, "suite.tests[0].capacity.max: concurrency 64 is above num_requests 32"),
        ({"over": "request_rate", "min": 0, "max": 4, "slo": {"p99_ttft_ms": 1}}, "suite.tests[0].capacity.min"),
        ({**GOOD, "spam": 1}, "suite.tests[0].capacity.spam: unknown key"),
        ({**GOOD, "max_probes": 1}, "suite.tests[0].capacity.max_probes"),
    ],
)
def test_bad_capacity_input_names_the_field(capacity: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_suite(suite(capacity), "s.yaml")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_capacity_test_with_fixed_levels_too_is_refused() -> None:
    with pytest.raises(UsageError, match="drop 'concurrency'"):
        parse_suite(suite(GOOD, concurrency=[4]), "s.yaml")


@pytest.mark.parametrize(
    "capacity, extra, args, fragment",
    [
        ("{over: concurrency, min: 4, max: 2, slo: {p99_ttft_ms: 100}}", "", [], "capacity.min: must be below max"),
        (
            "{over: concurrency, min: 2, max: 4, slo: {p99_ttfts_ms: 100}}",
            "",
            [],
            "capacity.slo.p99_ttfts_ms: unknown key",
        ),
        (
            "{over: concurrency, min: 2, max: 4, precision_pct: 100, slo: {p99_ttft_ms: 100}}",
            "",
            [],
            "capacity.precision_pct: must be above 0 and below 100",
        ),
        ("{over: request_rate, min: 1, max: 4}", "", [], "capacity.slo: a capacity search needs a latency goal"),
        (
            "{over: concurrency, min: 2, max: 4, slo: {p99_ttft_ms: 100}}",
            "repeats: auto\n",
            [],
            "repeats auto does not apply to capacity tests (cap)",
        ),
        (
            "{over: concurrency, min: 2, max: 4, slo: {p99_ttft_ms: 100}}",
            "",
            ["--repeats", "auto"],
            "repeats auto does not apply to capacity tests (cap)",
        ),
        (
            "{over: concurrency, min: 2, max: 16, slo: {p99_ttft_ms: 100}}",
            "",
            ["--num-requests", "8"],
            "capacity max 16 streams is above num_requests 8",
        ),
    ],
)
def test_bad_capacity_input_exits_2_before_any_engine_starts(
    tmp_path: Path, capacity: str, extra: str, args: list[str], fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\n{extra}tests:\n  - name: cap\n    num_requests: 32\n    capacity: {capacity}\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kitt",
            "run",
            "-m",
            "sim-never",
            "-e",
            "sim",
            "-s",
            str(path),
            "-o",
            str(tmp_path / "out"),
            "--baseline-engine-arg=--max-num-seqs=4",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("kitt: error: ")]
    assert len(errors) == 1 and fragment in errors[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_a_capacity_test_takes_the_tests_workload() -> None:
    """Lengths, a mixture, a dataset, a time box and (over request rate) the arrival process are the
    test's workload for every probe; they round-trip into config.json."""
    mix = [
        {"weight": 3, "input_len": {"mean": 200, "stdev": 50, "min": 50, "max": 400}, "output_len": 64},
        {"weight": 1, "input_len": 1000, "output_len": {"uniform": [100, 200]}},
    ]
    rate = {"over": "request_rate", "min": 0.5, "max": 8, "slo": {"p99_ttft_ms": 500}}
    test = parse_suite(suite(rate, mix=mix, duration_s=30, arrival="gamma", burstiness=0.5), "s").tests[0]
    assert test.capacity is not None and len(test.mix) == 2 and test.duration_s == 30
    assert (test.arrival.kind, test.arrival.burstiness) == ("gamma", 0.5)
    written = suite_to_dict(parse_suite(suite(rate, mix=mix, arrival="gamma", burstiness=0.5), "s"))["tests"][0]
    assert written["arrival"]["kind"] == "gamma" and written["capacity"]["over"] == "request_rate"
    assert len(written["mix"]) == 2
    data = parse_suite(suite(GOOD, dataset={"path": "prompts.jsonl"}), "s").tests[0]
    assert data.dataset is not None and data.dataset.path == "prompts.jsonl"
    with pytest.raises(UsageError, match="arrival: applies to open-loop tests"):
        parse_suite(suite(GOOD, arrival="gamma"), "s")


def test_every_probe_of_a_repeat_sends_the_same_arrival_pattern_scaled_to_its_rate() -> None:
    """Common random numbers: a probe's schedule at rate r is the repeat's unit-rate one divided by r."""
    for kind, extra in (("poisson", {}), ("gamma", {"burstiness": 0.5}), ("constant", {})):
        rate = {"over": "request_rate", "min": 0.5, "max": 8, "slo": {"p99_ttft_ms": 500}}
        test = parse_suite(suite(rate, arrival=kind, **extra), "s").tests[0]
        unit = probe_schedule(test, 1.0, 7, "cap-capacity", 1)
        assert len(unit) == test.num_requests and unit[0] == 0.0
        for r in (0.5, 2.0, 6.3):
            assert probe_schedule(test, r, 7, "cap-capacity", 1) == pytest.approx([t / r for t in unit], rel=1e-9)
        if kind != "constant":  # another repeat draws another pattern
            assert probe_schedule(test, 1.0, 7, "cap-capacity", 2) != unit
    timed = parse_suite(suite(rate, duration_s=5), "s").tests[0]
    assert max(probe_schedule(timed, 4.0, 7, "cap-capacity", 1)) < 5


def run_search(spec: CapacitySpec, ratio_at) -> CapacitySearch:
    """Drive the search with an oracle; every probe must lie within [min, max]."""
    search = CapacitySearch(spec)
    while (load := search.next_load()) is not None:
        assert spec.min <= load <= spec.max
        search.record(load, ratio_at(load))
    return search


def spec(
    over: str = "concurrency", low: float = 1, high: float = 64, precision: float = 10.0, probes: int = 40
) -> CapacitySpec:
    return CapacitySpec(
        over=over, min=low, max=high, slo={"p99_ttft_ms": 100}, precision_pct=precision, max_probes=probes
    )


@pytest.mark.parametrize("slots", range(1, 64))
def test_over_concurrency_the_capacity_is_exactly_the_last_load_that_meets_the_slo(slots: int) -> None:
    search = run_search(spec(), lambda load: 0.5 if load <= slots else 2.0)
    outcome = search.outcome()
    assert (outcome.capacity, outcome.bound, outcome.upper) == (slots, WITHIN, slots + 1)
    assert outcome.probes <= 2 * math.ceil(math.log2(64)) + 1


@pytest.mark.parametrize("precision", [2.0, 5.0, 10.0, 25.0])
def test_over_request_rate_the_capacity_is_within_the_stated_precision(precision: float) -> None:
    rng = random.Random(precision)
    for _ in range(200):
        truth = rng.uniform(0.6, 39.0)
        outcome = run_search(spec("request_rate", 0.5, 40.0, precision), lambda load, t=truth: load / t).outcome()
        assert outcome.capacity is not None and outcome.upper is not None
        assert outcome.capacity <= truth < outcome.upper
        assert (truth - outcome.capacity) / truth <= precision / 100


def test_the_bounds_are_reported_as_such_never_as_a_number() -> None:
    above = run_search(spec(), lambda load: 0.2).outcome()
    assert (above.capacity, above.bound, above.lower) == (None, ABOVE_MAX, 64)
    below = run_search(spec(), lambda load: 3.0).outcome()
    assert (below.capacity, below.bound, below.upper, below.probes) == (None, BELOW_MIN, 1, 1)
    # A level that could not be measured (every request failed) misses the goal.
    assert slo_ratio({"p99_ttft_ms": None, "completed": 0, "failed": 8}, {"p99_ttft_ms": 100}) == math.inf


def test_a_probe_near_the_goal_is_measured_again_and_judged_on_the_mean() -> None:
    search = CapacitySearch(spec(low=1, high=8))
    noisy = {1: [0.5], 2: [0.5], 4: [1.05, 0.9], 8: [3.0], 6: [0.97, 1.08], 5: [0.7]}
    seen: list[float] = []
    while (load := search.next_load()) is not None:
        seen.append(load)
        search.record(load, noisy[int(load)].pop(0))
    # 4 (1.05 then 0.9: mean 0.975) meets; 6 (0.97 then 1.08: mean 1.025) misses.
    assert seen == [1, 2, 4, 4, 8, 6, 6, 5]
    assert search.outcome().capacity == 5 and search.outcome().upper == 6 and search.outcome().probes == 8


def test_the_probe_cap_bounds_a_search_and_keeps_what_it_found() -> None:
    outcome = run_search(spec("request_rate", 0.5, 40.0, 0.1, probes=7), lambda load: load / 13.0).outcome()
    assert outcome.probes == 7
    assert outcome.capacity is not None and outcome.capacity <= 13.0 < outcome.upper


def test_the_error_rate_is_an_slo_key() -> None:
    metrics = {"p99_ttft_ms": 50.0, "completed": 95.0, "failed": 5.0}
    assert slo_ratio(metrics, {"p99_ttft_ms": 100}) == math.inf  # the suite's max_error_rate 0
    assert slo_ratio(metrics, {"p99_ttft_ms": 100, "max_error_rate": 0.1}) == 0.5
    assert slo_ratio(metrics, {"p99_ttft_ms": 100}, max_error_rate=0.01) > 1.0


def test_capacity_is_higher_is_better_and_gates_by_default() -> None:
    assert metric_direction("capacity") == HIGHER
    assert Thresholds().for_metric("capacity") == 5.0
    assert Thresholds().for_metric("capacity_probes") is None


def _capacity_job(when: datetime, values: list[float]) -> ResultSet:
    """A result set of one capacity test: one `capacity` per repeat, as the arm writes them."""
    results = [
        Result("chat-capacity", run, True, {"capacity": value, "capacity_bound": 0.0, "capacity_probes": 5.0})
        for run, value in enumerate(values, start=1)
    ]
    return ResultSet(
        directory=Path("."),
        metrics_path=Path("metrics.json"),
        schema_version=1,
        suite_name="capacity",
        timestamp=when.isoformat(),
        engine="sim",
        model="tiny",
        passed=True,
        results=results,
        hardware={"fingerprint": "fp"},
    )


@pytest.mark.parametrize("spread", [0.0, 0.25])
def test_fewer_slots_is_a_capacity_regression_against_a_history_and_the_same_is_not(spread: float) -> None:
    """The history design (ten baseline jobs): capacity 8 -> 6 streams regresses; 8 -> 8 does not,
    whether the searches found exactly the slots every time (no spread at all) or wobbled by a bit."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    wobble = [0.0, spread, -spread]
    history = [
        _capacity_job(start + timedelta(days=d), [8.0 + wobble[(d + i) % 3] for i in range(3)]) for d in range(10)
    ]
    fewer = compare_result_sets(_capacity_job(start + timedelta(days=11), [6.0, 6.0 + spread, 6.0]), history)
    assert fewer.design == "history"
    (row,) = [r for r in fewer.rows if r.metric == "capacity"]
    assert row.verdict is Verdict.REGRESSION and row.change_pct == pytest.approx(-25.0, abs=2.0), row
    same = compare_result_sets(_capacity_job(start + timedelta(days=11), [8.0, 8.0 - spread, 8.0]), history)
    (row,) = [r for r in same.rows if r.metric == "capacity"]
    assert row.verdict is Verdict.UNCHANGED and row.method == "history t", row
    assert all(r.verdict is not Verdict.REGRESSION for r in fewer.rows if r.metric != "capacity")
