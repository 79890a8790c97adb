"""Rendered Markdown against golden files, the 65,536-character cap, and escaping.

Regenerate the golden files after an intended change with
``KITT_UPDATE_GOLDEN=1 pytest tests/report`` and review the diff by eye.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

import support
from kitt.compare import compare_result_sets
from kitt.platform import COMMENT_LIMIT
from kitt.platform import comment_size as report_size
from kitt.report import render_matrix, render_report, render_summary
from kitt.report import render as render_module
from kitt.report import sentences
from kitt.results import ResultSet
from kitt.results import TestResult as Result

GOLDEN = Path(__file__).parent / "golden"
RUN_URL = "https://github.com/octo/serving/actions/runs/42"
MARKER = "<!-- kitt-benchmark -->"
LEVELS = (1, 4, 16)
H100 = {
    "fingerprint": "h100-3f9a",
    "gpu_count": 1,
    "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_total_mib": 81559}],
}
A100 = {
    "fingerprint": "a100-77c1",
    "gpu_count": 2,
    "gpus": [{"name": "NVIDIA A100-SXM4-40GB", "memory_total_mib": 40960}],
}
# Fixed relative deviations of the repeats, rotated per metric so the variances differ a little.
WIGGLE = (-0.02, 0.0, 0.015, 0.01, -0.012)


@pytest.fixture(autouse=True)
def _fixed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_module, "__version__", "0.0.0-test")


def base_metrics(concurrency: int) -> dict[str, float | None]:
    return {
        "concurrency": float(concurrency),
        "median_ttft_ms": 30.0 + 4 * concurrency,
        "p99_ttft_ms": 80.0 + 9 * concurrency,
        "median_tpot_ms": 8.0 + 0.3 * concurrency,
        "p99_tpot_ms": 11.0 + 0.5 * concurrency,
        "median_itl_ms": 7.8 + 0.3 * concurrency,
        "p99_itl_ms": 15.0 + 0.6 * concurrency,
        "median_e2el_ms": 1050.0 + 40 * concurrency,
        "p99_e2el_ms": 1500.0 + 70 * concurrency,
        "output_throughput": 120.0 * concurrency**0.85,
        "request_throughput": 0.9 * concurrency**0.85,
        "completed": 64.0,
        "failed": 0.0,
        "gpu_peak_memory_mib": 71234.0,
        "gpu_mean_utilization_pct": 87.5,
    }


def result_set(
    *,
    repeats: int = 5,
    change: dict[str, float] | None = None,
    hardware: dict | None = None,
    model: str = "meta-llama/Llama-3.1-8B-Instruct",
    levels: tuple[int, ...] = LEVELS,
    extra: dict[str, float] | None = None,
) -> ResultSet:
    results = []
    for level in levels:
        for run in range(1, repeats + 1):
            metrics = {}
            for index, (name, value) in enumerate(base_metrics(level).items()):
                if name in ("concurrency", "completed", "failed") or value is None:
                    metrics[name] = value
                    continue
                wiggle = WIGGLE[(run + index) % len(WIGGLE)]
                metrics[name] = round(value * (change or {}).get(name, 1.0) * (1 + wiggle), 4)
            metrics.update(extra or {})
            results.append(Result(f"throughput-c{level}", run, True, metrics))
    return ResultSet(
        directory=Path("."),
        metrics_path=Path("metrics.json"),
        schema_version=1,
        suite_name="standard",
        timestamp=datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone.utc),
        engine="vllm",
        model=model,
        passed=True,
        results=results,
        hardware=hardware if hardware is not None else H100,
    )


def render_summary_of(result_set: ResultSet, **kwargs: str) -> str:
    return render_summary(compare_result_sets(result_set, None), **kwargs)


def check_golden(name: str, text: str) -> None:
    support.check_golden(GOLDEN / name, text)


def test_regression_report_matches_golden() -> None:
    current = result_set(change={"p99_ttft_ms": 1.18, "median_tpot_ms": 0.85, "output_throughput": 1.01})
    comparison = compare_result_sets(current, result_set())
    text = render_report(comparison, marker="<!-- kitt-benchmark:llama-h100 -->", run_url=RUN_URL)
    # The headline names the cause; then one line of metadata, the table of what changed, the
    # legend, and everything else collapsed.
    assert text.startswith(
        "<!-- kitt-benchmark:llama-h100 -->\n## ❌ 3 regressions: p99 TTFT +18% at every concurrency\n"
    )
    order = [
        text.index(s)
        for s in (
            "**meta-llama/Llama-3.1-8B-Instruct** · vllm · suite standard",
            "### What changed",
            "| **p99 TTFT** ms ↓ | 🔴 **+18.0%**",
            "| **median TPOT** ms ↓ | 🟢 **-15.0%**",
            "🔴 regression · 🟢 improvement",
            "21 other gated metrics unchanged",
            "<summary>Charts (2)</summary>",
            "<summary>All metrics",
            RUN_URL,
        )
    ]
    assert order == sorted(order)
    changed = text.split("### What changed")[1].split("<sub>")[0]
    assert "median_ttft_ms" not in changed and "output throughput" not in changed  # unchanged rows stay out
    assert "| `throughput` at concurrency | 1 | 4 | 16 |\n|---|---:|---:|---:|" in changed
    assert "| `completed` ↑ | 64 | 64 |" in text  # counts without decimals
    check_golden("regression.md", text)


def test_no_baseline_report_matches_golden() -> None:
    comparison = compare_result_sets(result_set(repeats=3), None)
    text = render_report(comparison, marker=MARKER, run_url=RUN_URL)
    assert text.startswith("<!-- kitt-benchmark -->\n## 📊 No baseline yet")
    assert "### Key metrics" in text and "| `throughput` at concurrency | 1 | 4 | 16 |" in text
    check_golden("no_baseline.md", text)


def test_hardware_mismatch_report_matches_golden() -> None:
    comparison = compare_result_sets(
        result_set(change={"median_e2el_ms": 1.3}, levels=(8,)), result_set(hardware=A100, levels=(8,))
    )
    text = render_report(comparison, marker=MARKER)
    assert "## ⚠️ Not gated: the hardware differs (1 regression shown: median E2E +30%)" in text
    assert "🟠 regression (not gated)" in text and "> [!WARNING]\n> Hardware differs" in text
    assert "1× NVIDIA A100-SXM4-40GB → 1× NVIDIA H100 80GB HBM3" not in text  # A100 is 2×
    assert "2× NVIDIA A100-SXM4-40GB → 1× NVIDIA H100 80GB HBM3" in text
    check_golden("hardware_mismatch.md", text)


def test_single_repeat_report_matches_golden() -> None:
    comparison = compare_result_sets(
        result_set(repeats=1, change={"median_itl_ms": 1.07}, levels=(2,)), result_set(repeats=1, levels=(2,))
    )
    text = render_report(comparison, marker=MARKER)
    assert text.splitlines()[1].startswith("## ❌ 1 regression: median ITL +7.0%")
    assert "1 repeat a side" in text and "significance test needs repeats" in text
    check_golden("single_repeat.md", text)


def test_run_summary_matches_golden() -> None:
    text = render_summary_of(result_set(repeats=3), run_url=RUN_URL)
    assert text.startswith("## kitt benchmark: meta-llama/Llama-3.1-8B-Instruct on vllm\n")
    assert "<!--" not in text and "3 tests, all passed" in text.splitlines()[2]
    check_golden("summary.md", text)


def test_huge_report_cuts_details_with_a_note_but_never_the_verdict() -> None:
    levels = tuple(range(1, 121))
    extra = {f"custom_metric_{i:02d}": 1000.0 + i for i in range(40)}
    current = result_set(levels=levels, change={"p99_ttft_ms": 1.3}, extra=extra)
    comparison = compare_result_sets(current, result_set(levels=levels, extra=extra))
    assert len(comparison.regressions) == 120
    text = render_report(comparison, marker="<!-- kitt-benchmark:big -->", run_url=RUN_URL)
    assert report_size(text) < COMMENT_LIMIT
    assert text.startswith("<!-- kitt-benchmark:big -->\n## ❌ 120 regressions: p99 TTFT +30% at every concurrency")
    assert text.count("🔴 **+30.0%**") == 120  # every regression is in the table of what changed
    assert "cut" in text and "65,536-character limit" in text
    top = text.split("<details>")[0]
    widest = max(len(line.split(" | ")) for line in top.splitlines() if line.startswith("| "))
    assert widest <= 1 + 5 + 1  # at most five load levels side by side
    assert text.rstrip().endswith("</sub>")  # the footer survives


def test_untrusted_names_are_escaped() -> None:
    current = result_set(model="evil|model <img src=x> @octocat `x`", levels=(1,))
    text = render_report(compare_result_sets(current, result_set(levels=(1,))), marker=MARKER)
    assert "evil\\|model &lt;img src=x&gt; @\u200boctocat `x`" in text
    assert "<img" not in text and "@octocat" not in text


def test_only_a_sweep_gets_charts() -> None:
    single = render_report(compare_result_sets(result_set(levels=(4,)), result_set(levels=(4,))), marker=MARKER)
    assert "xychart-beta" not in single
    sweep = render_summary_of(result_set(levels=(1, 4)))
    assert sweep.count("xychart-beta") == 2 and 'x-axis "concurrency" ["1", "4"]' in sweep
    assert 'y-axis "output throughput (tok/s)" 0 --> ' in sweep and 'line "this run" [' in sweep
    assert '"height": 320' in sweep and "higher is better" in sweep


def test_history_report_with_inconclusive_and_incomplete_matches_golden() -> None:
    import dataclasses
    from datetime import timedelta

    history = [
        dataclasses.replace(
            result_set(levels=(4,), change={"median_e2el_ms": 1 + 0.04 * (day % 3)}),
            timestamp=datetime(2025, 3, 1 + day, tzinfo=timezone.utc),
        )
        for day in range(5)
    ]
    current = result_set(levels=(4,), change={"median_e2el_ms": 1.09, "p99_ttft_ms": 1.4})
    current = dataclasses.replace(
        current,
        timestamp=history[0].timestamp + timedelta(days=9),
        results=[r for r in current.results if r.run_number < 5],
        passed=False,
    )
    text = render_report(compare_result_sets(current, history), marker=MARKER, run_url=RUN_URL)
    assert text.startswith(f"{MARKER}\n## ❌ 1 regression: p99 TTFT +39%, and the results are incomplete")
    assert "🟡 **+5.2%**" in text and "job-to-job spread" in text
    assert "Compared with 5 baseline jobs (2025-03-01 to 2025-03-05)" in text
    assert "throughput-c4 ran 4 of 5 repeats." in text
    check_golden("history.md", text)


def test_commits_are_linked_when_the_results_know_them() -> None:
    import dataclasses

    base = dataclasses.replace(result_set(levels=(1,)), config={"commit": "0123456789abcdef0123456789abcdef01234567"})
    current = dataclasses.replace(
        result_set(levels=(1,)), config={"commit": {"sha": "fedcba9876543210fedcba9876543210fedcba98"}}
    )
    text = render_report(compare_result_sets(current, base), marker=MARKER, repo_url="https://github.com/octo/serving")
    meta = text.splitlines()[3]
    assert (
        "baseline [`0123456`](https://github.com/octo/serving/commit/0123456789abcdef0123456789abcdef01234567)" in meta
    )
    assert "this run [`fedcba9`](https://github.com/octo/serving/commit/fedcba98" in meta
    bad = dataclasses.replace(current, config={"commit": "](javascript:alert(1))"})
    assert "javascript" not in render_report(compare_result_sets(bad, base), marker=MARKER, repo_url="https://x")


def test_a_gpu_less_run_keeps_its_nvml_note_out_of_the_headline_area() -> None:
    import dataclasses

    run = result_set(repeats=2, levels=(1,))
    run = dataclasses.replace(run, raw={"notes": ["NVML unavailable (NVMLError_LibraryNotFound); GPU fields are null"]})
    text = render_summary_of(run)
    before = text.split("<details>")[0]
    assert "NVML" not in before and "NVML unavailable" in text


def matrix_jobs() -> list[tuple[str, object]]:
    slow = result_set(levels=LEVELS, change={"median_itl_ms": 1.5, "median_e2el_ms": 1.48})
    return [
        ("kitt-results-vllm-llama", compare_result_sets(slow, result_set())),
        ("kitt-results-sglang-llama", compare_result_sets(result_set(), result_set())),
        ("kitt-results-vllm-qwen", compare_result_sets(result_set(model="Qwen/Qwen2.5-7B"), None)),
    ]


def test_matrix_report_matches_golden() -> None:
    text = render_matrix(matrix_jobs(), marker="<!-- kitt-benchmark:kitt-results-* -->", run_url=RUN_URL)
    lines = text.splitlines()
    assert lines[1] == "## ❌ 1 of 3 jobs regressed · 1 without a baseline · 1 unchanged"
    assert (
        "| `kitt-results-vllm-llama` | ❌ 6 regressions: median ITL +50% and median E2E +48% at every concurrency |"
        in text
    )
    order = [
        text.index(f"### {name}: ")
        for name in ("kitt-results-vllm-llama", "kitt-results-sglang-llama", "kitt-results-vllm-qwen")
    ]
    assert order == sorted(order)
    assert text.count("<!-- kitt-benchmark") == 1
    check_golden("matrix.md", text)


def test_huge_matrix_fits_one_comment_cutting_details_first() -> None:
    levels = tuple(range(1, 41))
    jobs = [
        (
            f"job-{i:02d}",
            compare_result_sets(result_set(levels=levels, change={"p99_ttft_ms": 1.3}), result_set(levels=levels)),
        )
        for i in range(12)
    ]
    text = render_matrix(jobs, marker=MARKER, run_url=RUN_URL)
    assert report_size(text) < COMMENT_LIMIT
    assert text.splitlines()[1] == "## ❌ 12 of 12 jobs regressed"
    assert all(f"### job-{i:02d}: ❌ 40 regressions" in text for i in range(12))  # every job's verdict stays
    assert "cut" in text and text.rstrip().endswith("</sub>")


def test_untrusted_job_names_are_escaped_in_a_matrix() -> None:
    comparison = compare_result_sets(result_set(levels=(1,)), None)
    text = render_matrix([("evil|job <img src=x> @octocat", comparison), ("ok", comparison)], marker=MARKER)
    assert "| `evil\\|job &lt;img src=x&gt; @\u200boctocat` |" in text
    assert "### evil\\|job &lt;img src=x&gt; @\u200boctocat: " in text
    assert "<img" not in text and "@octocat" not in text


def test_the_advice_for_inconclusive_rows_is_one_clause_with_a_range_of_repeats() -> None:
    from kitt.comparison import MetricRow, Verdict

    def row(metric: str, repeats: int | None, method: str = "moderated t") -> MetricRow:
        return MetricRow(
            test="t",
            key=None,
            metric=metric,
            direction="lower",
            threshold_pct=5.0,  # type: ignore[arg-type]
            baseline_spread=None,
            current_spread=None,
            verdict=Verdict.INCONCLUSIVE,
            method=method,
            repeats_to_settle=repeats,
        )

    rows = [row("median_ttft_ms", 6), row("median_e2el_ms", 15), row("output_throughput", 5)]
    assert sentences.settle(rows) == ["about 5-15 repeats a side would settle them, if the changes are real"]
    assert sentences.settle(rows[:1]) == ["about 6 repeats a side would settle it, if the changes are real"]
    mixed = sentences.settle([*rows, row("p99_ttft_ms", None), row("median_itl_ms", None, "history t")])
    assert len(mixed) == 3 and mixed[0].startswith("about 5-15 repeats")
