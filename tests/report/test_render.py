"""Rendered Markdown against golden files, the 65,536-character cap, and escaping.

Regenerate the golden files after an intended change with
``KITT_UPDATE_GOLDEN=1 pytest tests/report`` and review the diff by eye.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kitt.compare import compare_result_sets
from kitt.github.platform import COMMENT_LIMIT
from kitt.github.platform import comment_size as report_size
from kitt.report import render_report, render_summary
from kitt.report import render as render_module
from kitt.results import ResultSet
from kitt.results import TestResult as Result

GOLDEN = Path(__file__).parent / "golden"
RUN_URL = "https://github.com/octo/serving/actions/runs/42"
MARKER = "<!-- kitt-benchmark -->"
LEVELS = (1, 4, 16)
H100 = {"fingerprint": "h100-3f9a", "gpu_count": 1, "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_total_mib": 81559}]}
A100 = {"fingerprint": "a100-77c1", "gpu_count": 2, "gpus": [{"name": "NVIDIA A100-SXM4-40GB", "memory_total_mib": 40960}]}
# Fixed relative deviations of the repeats, rotated per metric so the variances differ a little.
WIGGLE = (-0.02, 0.0, 0.015, 0.01, -0.012)


@pytest.fixture(autouse=True)
def _fixed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_module, "__version__", "0.0.0-test")


def base_metrics(concurrency: int) -> dict[str, float | None]:
    return {
        "concurrency": float(concurrency),
        "median_ttft_ms": 30.0 + 4 * concurrency, "p99_ttft_ms": 80.0 + 9 * concurrency,
        "median_tpot_ms": 8.0 + 0.3 * concurrency, "p99_tpot_ms": 11.0 + 0.5 * concurrency,
        "median_itl_ms": 7.8 + 0.3 * concurrency, "p99_itl_ms": 15.0 + 0.6 * concurrency,
        "median_e2el_ms": 1050.0 + 40 * concurrency, "p99_e2el_ms": 1500.0 + 70 * concurrency,
        "output_throughput": 120.0 * concurrency ** 0.85, "request_throughput": 0.9 * concurrency ** 0.85,
        "completed": 64.0, "failed": 0.0, "gpu_peak_memory_mib": 71234.0, "gpu_mean_utilization_pct": 87.5,
    }  # fmt: skip


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
        directory=Path("."), metrics_path=Path("metrics.json"), schema_version=1, suite_name="standard",
        timestamp=datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone.utc), engine="vllm", model=model,
        passed=True, results=results, hardware=hardware if hardware is not None else H100,
    )  # fmt: skip


def render_summary_of(result_set: ResultSet, **kwargs: str) -> str:
    return render_summary(compare_result_sets(result_set, None), **kwargs)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KITT_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with KITT_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file (KITT_UPDATE_GOLDEN=1 to accept)"


def test_regression_report_matches_golden() -> None:
    current = result_set(change={"p99_ttft_ms": 1.18, "median_tpot_ms": 0.85, "output_throughput": 1.01})
    comparison = compare_result_sets(current, result_set())
    text = render_report(comparison, marker="<!-- kitt-benchmark:llama-h100 -->", run_url=RUN_URL)
    assert text.startswith("<!-- kitt-benchmark:llama-h100 -->\n## ❌ kitt: 3 performance regressions")
    # The verdict comes first: regressions, then improvements, then unchanged, then the rest.
    order = [text.index(s) for s in ("**Regressions**", "**Improvements**", "**Unchanged:**", "| **Baseline** |",
                                      "### Key metrics", "xychart-beta", "<details>", RUN_URL)]  # fmt: skip
    assert order == sorted(order)
    check_golden("regression.md", text)


def test_no_baseline_report_matches_golden() -> None:
    comparison = compare_result_sets(result_set(repeats=3), None)
    text = render_report(comparison, marker=MARKER, run_url=RUN_URL)
    assert text.startswith("<!-- kitt-benchmark -->\n## 📊 kitt: no baseline yet")
    check_golden("no_baseline.md", text)


def test_hardware_mismatch_report_matches_golden() -> None:
    comparison = compare_result_sets(result_set(change={"median_e2el_ms": 1.3}, levels=(8,)), result_set(hardware=A100, levels=(8,)))
    text = render_report(comparison, marker=MARKER)
    assert "not gated, the hardware differs" in text and "🟠 regression (not gated)" in text
    check_golden("hardware_mismatch.md", text)


def test_single_repeat_report_matches_golden() -> None:
    comparison = compare_result_sets(result_set(repeats=1, change={"median_itl_ms": 1.07}, levels=(2,)), result_set(repeats=1, levels=(2,)))
    text = render_report(comparison, marker=MARKER)
    assert "plain threshold, 1 repeat" in text and "significance test needs repeats" in text
    check_golden("single_repeat.md", text)


def test_run_summary_matches_golden() -> None:
    text = render_summary_of(result_set(repeats=3), run_url=RUN_URL)
    assert text.startswith("## kitt benchmark: meta-llama/Llama-3.1-8B-Instruct on vllm")
    assert "<!--" not in text
    check_golden("summary.md", text)


def test_huge_report_cuts_details_with_a_note_but_never_the_verdict() -> None:
    levels = tuple(range(1, 121))
    extra = {f"custom_metric_{i:02d}": 1000.0 + i for i in range(40)}
    current = result_set(levels=levels, change={"p99_ttft_ms": 1.3}, extra=extra)
    comparison = compare_result_sets(current, result_set(levels=levels, extra=extra))
    assert len(comparison.regressions) == 120
    text = render_report(comparison, marker="<!-- kitt-benchmark:big -->", run_url=RUN_URL)
    assert report_size(text) < COMMENT_LIMIT
    assert text.startswith("<!-- kitt-benchmark:big -->\n## ❌ kitt: 120 performance regressions")
    assert text.count("- `throughput-c") == 120  # every regression is listed
    assert "cut" in text and "65,536-character limit" in text
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


def test_history_report_with_inconclusive_and_incomplete_matches_golden() -> None:
    import dataclasses
    from datetime import timedelta

    history = [dataclasses.replace(result_set(levels=(4,), change={"median_e2el_ms": 1 + 0.04 * (day % 3)}),
                                   timestamp=datetime(2025, 3, 1 + day, tzinfo=timezone.utc)) for day in range(5)]
    current = result_set(levels=(4,), change={"median_e2el_ms": 1.09, "p99_ttft_ms": 1.4})
    current = dataclasses.replace(current, timestamp=history[0].timestamp + timedelta(days=9),
                                  results=[r for r in current.results if r.run_number < 5], passed=False)
    text = render_report(compare_result_sets(current, history), marker=MARKER, run_url=RUN_URL)
    assert text.startswith(f"{MARKER}\n## ❌ kitt: 1 performance regression, and the results are incomplete")
    assert "**Inconclusive**" in text and "job-to-job spread" in text
    assert "Compared with 5 baseline jobs (2025-03-01 to 2025-03-05)" in text
    assert "throughput-c4 ran 4 of 5 repeats." in text
    check_golden("history.md", text)
