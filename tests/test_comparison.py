"""kitt.comparison: what a comparison is, as data, and the verdict its fields add up to."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kitt.comparison import (
    FAMILY_ALPHA,
    MIN_HISTORY,
    Comparison,
    Design,
    FailedTest,
    Identity,
    Incomplete,
    MatchKey,
    MetricRow,
    Spread,
    Verdict,
    center,
)
from kitt.comparison import TestComparison as OneTest  # not collected as a test class
from kitt.results import ResultSet

KEY = MatchKey("latency", "concurrency", 1.0)


def result_set(days_ago: int = 0, fingerprint: str = "fp") -> ResultSet:
    moment = datetime(2026, 6, 1, tzinfo=timezone.utc) - timedelta(days=days_ago)
    return ResultSet(
        Path("."),
        Path("metrics.json"),
        1,
        "quick",
        moment,
        "sim",
        "m",
        True,
        [],
        hardware={"fingerprint": fingerprint} if fingerprint else {},
    )


def row(verdict: Verdict, *, gated: bool = True, base: float | None = 100.0, cur: float | None = 100.0) -> MetricRow:
    return MetricRow(
        "latency-c1",
        KEY,
        "median_ttft_ms",
        "lower",
        5.0 if gated else None,
        Spread.of([base]) if base is not None else None,
        Spread.of([cur]) if cur is not None else None,
        verdict=verdict,
    )


def comparison(*rows: MetricRow, baseline: ResultSet | None = None, **fields: object) -> Comparison:
    test = OneTest(KEY, "latency-c1", 1, 1, list(rows))
    return Comparison(result_set(), baseline, [baseline] if baseline else [], tests=[test], **fields)  # type: ignore[arg-type]


def test_the_centre_is_the_geometric_mean_of_positive_repeats_else_the_mean() -> None:
    assert center([1.0, 4.0]) == pytest.approx(2.0)
    assert center([-1.0, 3.0]) == 1.0 and center([]) is None


def test_a_spread_holds_the_repeats_centre_cv_and_range() -> None:
    spread = Spread.of([90.0, 100.0, 110.0])
    assert spread.n == 3 and spread.low == 90.0 and spread.high == 110.0
    assert spread.center == pytest.approx(math.exp((math.log(90) + math.log(100) + math.log(110)) / 3))
    assert spread.cv_pct == pytest.approx(10.0)
    assert Spread.of([5.0]).cv_pct is None  # one repeat: no spread


def test_rows_are_frozen_and_read_their_sides() -> None:
    r = row(Verdict.UNCHANGED, base=100.0, cur=None)
    assert (
        r.gated and r.baseline == pytest.approx(100.0) and r.current is None and (r.n_baseline, r.n_current) == (1, 0)
    )
    assert r.method is Design.NONE
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.verdict = Verdict.REGRESSION  # type: ignore[misc]


def test_incomplete_is_true_when_any_of_its_fields_names_something() -> None:
    assert not Incomplete()
    assert Incomplete(failed_tests=(FailedTest("t", None),)) and Incomplete(upstream="failure")


def test_without_a_baseline_nothing_gates() -> None:
    c = comparison(row(Verdict.ONLY_CURRENT, base=None))
    assert not c.gating and c.design == "none" and c.verdict == "no baseline" and not c.gate_failed


@pytest.mark.parametrize(
    ("verdicts", "expected", "failed"),
    [
        ([Verdict.REGRESSION, Verdict.IMPROVEMENT], "regression", True),
        ([Verdict.INCONCLUSIVE, Verdict.IMPROVEMENT], "inconclusive", False),
        ([Verdict.IMPROVEMENT, Verdict.UNCHANGED], "improvement", False),
        ([Verdict.UNCHANGED], "unchanged", False),
    ],
)
def test_the_one_word_verdict_and_the_gate(verdicts: list[Verdict], expected: str, failed: bool) -> None:
    c = comparison(*(row(v) for v in verdicts), baseline=result_set(1))
    assert c.gating and c.verdict == expected and c.gate_failed is failed
    assert c.regressions == [r for r in c.rows if r.verdict is Verdict.REGRESSION]


def test_other_hardware_or_another_model_shows_but_does_not_gate_unless_allowed() -> None:
    other = comparison(row(Verdict.REGRESSION), baseline=result_set(1, "other-fp"), hardware_mismatch=True)
    assert not other.gating and other.verdict == "not gated" and not other.gate_failed
    assert dataclasses.replace(other, allow_hardware_mismatch=True).gate_failed
    renamed = comparison(row(Verdict.REGRESSION), baseline=result_set(1), identity=Identity((("model", "a", "b"),)))
    assert not renamed.gating and dataclasses.replace(renamed, allow_mismatch=True).gating


def test_incomplete_results_fail_closed_even_when_nothing_regressed() -> None:
    c = comparison(row(Verdict.UNCHANGED), baseline=result_set(1), incomplete=Incomplete(run_failed=True))
    assert c.verdict == "incomplete" and c.gate_failed


def test_gated_metrics_with_numbers_on_one_side_only_are_nothing_compared_and_fail() -> None:
    c = comparison(row(Verdict.ONLY_BASELINE, cur=None), baseline=result_set(1))
    assert c.nothing_compared and c.verdict == "nothing compared" and c.gate_failed


def test_the_design_follows_the_baseline_jobs() -> None:
    jobs = [result_set(d) for d in range(1, MIN_HISTORY + 1)]
    history = Comparison(result_set(), jobs[0], jobs)
    assert history.design == "history"
    assert Comparison(result_set(), jobs[0], jobs[: MIN_HISTORY - 1]).design == "single"
    assert Comparison(result_set(), jobs[0], jobs[:1], paired=True).design == "paired"
    assert history.alpha == FAMILY_ALPHA


def test_a_side_without_a_fingerprint_is_named() -> None:
    assert comparison(baseline=result_set(1, fingerprint="")).unknown_fingerprint == "baseline"
    assert comparison(baseline=result_set(1)).unknown_fingerprint is None
