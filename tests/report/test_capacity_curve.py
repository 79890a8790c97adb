"""The capacity curve in summary.md and the comment: every probed level of a search, its SLO line
and capacity point, base beside PR, and in words how many levels ran and where the boundary lies."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

import support
from kitt.compare import capacity_curves, compare_result_sets
from kitt.platform import comment_size
from kitt.report import render as render_module
from kitt.report import render_report, render_summary
from kitt.results import ResultSet
from kitt.results import TestResult as Result
from mermaid_parse import mermaid_blocks, parse

MARKER = "<!-- kitt-benchmark -->"
SLO = {"p99_ttft_ms": 2000.0, "p99_tpot_ms": 100.0}
SPEC = {"over": "request_rate", "min": 0.5, "max": 32, "slo": SLO}  # as config.json records the test


def probe(load: float, ttft: float, tpot: float = 40.0) -> dict:
    ratio = max(ttft / SLO["p99_ttft_ms"], tpot / SLO["p99_tpot_ms"])
    return {
        "load": load,
        "slo_ratio": ratio,
        "meets_slo": ratio <= 1.0,
        "request_throughput": load * 0.98,
        "output_throughput": load * 120,
        "p99_ttft_ms": ttft,
        "p99_tpot_ms": tpot,
        "p99_e2el_ms": ttft + 5000,
        "median_tpot_ms": tpot / 2,
        "per_user_tokens_per_s": 2000 / tpot,
    }


# A found capacity: doubling from 0.5 to 4 (fails), then bisection; 2.75 re-measured near the goal.
FOUND = [
    probe(0.5, 300),
    probe(1, 420),
    probe(2, 900),
    probe(4, 9000),
    probe(3, 2600),
    probe(2.5, 1500),
    probe(2.75, 1900),
    probe(2.75, 1950),
]
BASE = [
    probe(0.5, 250),
    probe(1, 350),
    probe(2, 700),
    probe(4, 7000),
    probe(3, 1200),
    probe(3.5, 1700),
    probe(3.75, 2400),
]
ABOVE = [probe(0.5, 300), probe(1, 400), probe(2, 500), probe(4, 700), probe(8, 900), probe(16, 1200), probe(32, 1700)]
BELOW = [probe(0.5, 3500)]


def result_set(
    curves: dict[int, list[dict]],
    *,
    bound: float = 0.0,
    capacity: float | None = 2.75,
    upper: float | None = 3.0,
    when: int = 9,
) -> ResultSet:
    results, entries = [], []
    for run, probes in curves.items():
        results.append(
            Result(
                "chat-capacity",
                run,
                True,
                {
                    "capacity": capacity,
                    "capacity_bound": bound,
                    "capacity_lower": capacity,
                    "capacity_upper": upper,
                    "capacity_probes": float(len(probes)),
                },
            )
        )
        entries.append(
            {"test_name": "chat-capacity", "run_number": run, "over": "request_rate", "slo": SLO, "probes": probes}
        )
    return ResultSet(
        directory=Path("."),
        metrics_path=Path("metrics.json"),
        schema_version=1,
        suite_name="capacity",
        timestamp=datetime(2025, 3, 14, when, tzinfo=timezone.utc),
        engine="vllm",
        model="m",
        passed=True,
        results=results,
        hardware={"fingerprint": "h"},
        raw={"capacity_curves": entries},
        config={"suite": {"tests": [{"name": "chat", "capacity": SPEC}]}},
    )


def test_the_curve_keeps_one_point_per_load_judged_on_the_mean_of_its_re_measures() -> None:
    (curve,) = capacity_curves(result_set({2: ABOVE, 1: FOUND}), "current")
    assert curve.run_number == 1 and curve.repeats == 2 and curve.probes == 8
    assert [p.load for p in curve.points] == [0.5, 1, 2, 2.5, 2.75, 3, 4]
    twice = curve.points[4]
    assert twice.probes == 2 and twice.p99_ttft_ms == 1925 and twice.meets_slo
    assert (curve.held, curve.failed, curve.bound) == (2.75, 3.0, 0.0)


def test_a_summary_draws_the_curve_and_says_where_the_boundary_lies() -> None:
    text = render_summary(compare_result_sets(result_set({1: FOUND, 2: FOUND}), None))
    assert (
        "`chat-capacity`: 8 levels at 7 loads probed in run 1; the SLO (p99 TTFT ≤ 2000 ms, p99 TPOT ≤ 100 ms) "
        "held up to 2.75 req/s and failed at 3 req/s."
    ) in text
    (chart,) = mermaid_blocks(text)
    assert 'x-axis "request rate (req/s)" ["0.5", "1", "2", "2.5", "2.75 ★", "3", "4"]' in chart
    assert 'line "SLO" [2000, 2000, 2000, 2000, 2000, 2000, 2000]' in chart
    # p99 TTFT is the goal the search came closest to breaking; 9 s at 4 req/s is drawn at the top (8,000 ms).
    assert 'line "this run" [300, 420, 900, 1500, 1925, 2600, 8000]' in chart and "0 --> 8000" in chart
    assert "| 2.75 (2×) | 2.69 | 1,925 | 40 | ✓ |" in text and "| 3 | 2.94 | 2,600 | 40 | ✗ |" in text
    assert "<summary>Charts (1)</summary>" in text


def test_a_search_that_never_failed_held_even_at_max_and_one_that_never_held_failed_at_min() -> None:
    above = render_summary(compare_result_sets(result_set({1: ABOVE}, bound=1.0, capacity=None, upper=None), None))
    assert (
        "`chat-capacity`: 7 levels probed in run 1; the SLO (p99 TTFT ≤ 2000 ms, p99 TPOT ≤ 100 ms) "
        "held even at max 32 req/s."
    ) in above
    assert "★ the SLO held even at max, 32 req/s" in above
    below = render_summary(compare_result_sets(result_set({1: BELOW}, bound=-1.0, capacity=None, upper=None), None))
    assert (
        "1 level probed in run 1; the SLO (p99 TTFT ≤ 2000 ms, p99 TPOT ≤ 100 ms) failed already at min 0.5 req/s."
        in below
    )
    assert "★" not in below


def test_the_comment_shows_the_baseline_beside_this_run() -> None:
    base = result_set({1: ABOVE}, bound=1.0, capacity=None, upper=None, when=8)
    current = result_set({1: FOUND})
    text = render_report(compare_result_sets(current, base), marker=MARKER)
    assert (
        "`chat-capacity`, run 1 of each side: the SLO (p99 TTFT ≤ 2000 ms, p99 TPOT ≤ 100 ms) held even at max "
        "32 req/s in the baseline (7 levels probed) and held up to 2.75 req/s and failed at 3 req/s in this run "
        "(8 levels at 7 loads probed)."
    ) in text
    baseline_chart, current_chart = mermaid_blocks(text)
    assert 'line "baseline"' in baseline_chart and '"32 ★"' in baseline_chart and "#8c959f" in baseline_chart
    assert 'line "this run"' in current_chart and '"2.75 ★"' in current_chart
    # One y-axis for both sides, so the two curves read against each other.
    assert "0 --> 8000" in baseline_chart and "0 --> 8000" in current_chart
    assert text.index(baseline_chart) < text.index(current_chart)


def test_a_comment_that_must_shrink_cuts_the_curve_with_the_charts_but_keeps_its_words() -> None:
    comparison = compare_result_sets(result_set({1: FOUND}), result_set({1: ABOVE}, when=8))
    full = render_report(comparison, marker=MARKER)
    limit = comment_size(full) // 2  # the details alone do not make room: the charts go too
    cut = render_report(comparison, marker=MARKER, limit=limit)
    assert comment_size(cut) <= limit and "```mermaid" not in cut and "Charts and notes were cut" in cut
    assert "held up to 2.75 req/s and failed at 3 req/s in this run" in cut


def test_a_result_set_without_curves_renders_as_before() -> None:
    plain = result_set({1: FOUND})
    plain.raw = {}
    assert capacity_curves(plain, "current") == []
    text = render_summary(compare_result_sets(plain, None))
    assert "Charts" not in text and "probed" not in text


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are not installed: the mermaid package cannot run",
)
def test_every_curve_chart_parses_as_an_xychart() -> None:
    text = render_report(
        compare_result_sets(result_set({1: FOUND}), result_set({1: BELOW}, bound=-1.0, when=8)), marker=MARKER
    )
    blocks = mermaid_blocks(text)
    assert len(blocks) == 2
    assert parse(blocks) == [{"ok": True, "type": "xychart"}] * 2


def test_capacity_report_matches_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    """A capacity comparison, base beside PR (tests/browser renders it in Chromium: charts and tables)."""
    monkeypatch.setattr(render_module, "__version__", "0.0.0-test")
    base = result_set({1: BASE, 2: BASE, 3: BASE}, capacity=3.5, upper=3.75, when=8)
    text = render_report(compare_result_sets(result_set({1: FOUND, 2: FOUND, 3: FOUND}), base), marker=MARKER)
    assert (
        text.splitlines()[1]
        == "## ❌ 1 regression: capacity -21% (p99 TTFT ≤ 2000 ms, p99 TPOT ≤ 100 ms): 3.50 → 2.75 req/s"
    )
    support.check_golden(Path(__file__).parent / "golden" / "capacity.md", text)
