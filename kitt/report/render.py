"""Render comparisons and run summaries to Markdown with the jinja2 templates beside this module.

Python turns a ``Comparison`` (or a ``ResultSet``) into a view of preformatted strings; the
templates only lay them out. A PR comment must stay under GitHub's 65,536-character limit,
so ``render_report`` cuts the details first (with a note), then the charts and the unchanged
rows of the key table, and never the verdict.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from kitt import __version__
from kitt.compare import (
    Comparison,
    MetricRow,
    RepeatGroup,
    Verdict,
    center,
    group_tests,
    hardware_label,
)
from kitt.results import ResultSet
from kitt.thresholds import DEFAULT_GATED, LOWER

COMMENT_LIMIT = 65_536
DEFAULT_MARKER = "<!-- kitt-benchmark -->"
_CHART_METRICS = (("output_throughput", "output tokens/s"), ("median_e2el_ms", "median E2E latency (ms)"))
_VERDICT_LABELS = {
    Verdict.REGRESSION: "🔴 regression",
    Verdict.IMPROVEMENT: "🟢 improvement",
    Verdict.UNCHANGED: "⚪ unchanged",
    Verdict.NOT_GATED: "not gated",
    Verdict.MISSING: "⚠️ missing",
    Verdict.ONLY_BASELINE: "only in baseline",
    Verdict.ONLY_CURRENT: "only in current",
}


def report_size(text: str) -> int:
    """Characters as GitHub's limit may count them (UTF-16 units; never fewer than code points)."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- formatting


def md(text: Any) -> str:
    """Make untrusted text (names from an artifact) safe inside a Markdown table cell."""
    value = " ".join(str(text).split())
    value = value.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("@", "@\u200b")


def code(text: Any) -> str:
    inner = md(text).replace("`", "'")
    return f"`{inner}`"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def fmt_value(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.1f}"
    if size >= 1 or size == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_pct(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "+∞" if value > 0 else "-∞"
    return f"{value:+.1f}%"


def fmt_ci(row: MetricRow) -> str:
    if row.ci_low_pct is None or row.ci_high_pct is None:
        return "—"
    return f"{fmt_pct(row.ci_low_pct)} … {fmt_pct(row.ci_high_pct)}"


def fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def unit(metric: str) -> str:
    for suffix, name in (("_ms", "ms"), ("_mib", "MiB"), ("_w", "W"), ("_j", "J"), ("_pct", "%")):
        if metric.endswith(suffix):
            return name
    if metric == "duration":
        return "s"
    if metric in ("output_throughput", "total_token_throughput"):
        return "tok/s"
    return "req/s" if metric in ("request_throughput", "request_goodput") else ""


def _chart_label(text: str) -> str:
    return re.sub(r"[\"\n\r\[\]]", "", text)[:80]


# --------------------------------------------------------------------------- views


@dataclass
class _View:
    marker: str
    headline: str
    lead: str
    regressions: list[str]
    regressions_title: str
    improvements: list[str]
    unchanged: str
    problems: list[str]
    notes: list[str]
    runs: list[dict[str, str]]
    key_header: list[str]
    key_rows: list[list[str]]
    charts: list[dict[str, Any]]
    details: list[dict[str, Any]]
    footer: str
    cut_notes: list[str] = field(default_factory=list)


def iter_tests(rows: Iterable[MetricRow]) -> list[tuple[str, list[MetricRow]]]:
    """Rows grouped by test, in the order the rows come."""
    grouped: dict[str, list[MetricRow]] = {}
    for row in rows:
        grouped.setdefault(row.test, []).append(row)
    return list(grouped.items())


def _run_row(side: str, result_set: ResultSet) -> dict[str, str]:
    return {
        "side": side,
        "model": md(result_set.model),
        "engine": md(result_set.engine),
        "suite": md(result_set.suite_name),
        "hardware": md(hardware_label(result_set)),
        "date": result_set.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _test_label(row: MetricRow) -> str:
    return code(row.test)


def _verdict_label(row: MetricRow, gating: bool) -> str:
    if row.verdict is Verdict.REGRESSION and not gating:
        return "🟠 regression (not gated)"
    return _VERDICT_LABELS[row.verdict]


def _bullet(row: MetricRow) -> str:
    ci = f", 95% CI {fmt_ci(row)}" if row.ci_low_pct is not None else ""
    p = fmt_p(row.p_value)
    how = "plain threshold, 1 repeat" if row.method == "threshold only" else (f"p{p}" if p.startswith("<") else f"p={p}")
    arrow = f"{fmt_value(row.baseline)} → {fmt_value(row.current)} {unit(row.metric)}".rstrip()
    better = "lower" if row.direction == LOWER else "higher"
    return (
        f"{_test_label(row)} {code(row.metric)}: {arrow} (**{fmt_pct(row.change_pct)}**{ci}; "
        f"threshold {row.threshold_pct:g}%, {better} is better, {how})"
    )


def _headline(comparison: Comparison) -> str:
    n_reg, n_imp = len(comparison.regressions), len(comparison.improvements)
    return {
        "regression": f"❌ kitt: {plural(n_reg, 'performance regression')}",
        "problem": "⚠️ kitt: the current results are incomplete",
        "not gated": "⚠️ kitt: not gated, the hardware differs",
        "no baseline": "📊 kitt: no baseline yet",
        "nothing compared": "⚠️ kitt: nothing to compare",
        "improvement": f"✅ kitt: no regressions, {plural(n_imp, 'improvement')}",
        "unchanged": "✅ kitt: no regressions",
    }[comparison.verdict]


def _comparison_view(comparison: Comparison, marker: str, run_url: str | None) -> _View:
    current, baseline = comparison.current, comparison.baseline
    gated_rows = [r for r in comparison.rows if r.gated]
    tests = iter_tests(comparison.rows)
    repeats = max((r.n_current for r in comparison.rows), default=0)
    lead = f"{md(current.model)} on {md(current.engine)}, suite {md(current.suite_name)}"
    if baseline is not None:
        tested = sum(1 for r in gated_rows if r.change_pct is not None)
        lead += f": {plural(tested, 'gated metric')} compared across {plural(len(tests), 'test')}, up to {plural(repeats, 'repeat')} per side."
    else:
        groups = group_tests(current)
        lead += f": {plural(len(groups), 'test')}, up to {plural(max((len(g.repeats) for g in groups.values()), default=0), 'repeat')} each."
    runs = ([_run_row("Baseline", baseline)] if baseline is not None else []) + [_run_row("Current", current)]
    if baseline is None:
        key_header, key_rows = _current_table(group_tests(current))
    else:
        key_header = ["Test", "Metric", "Baseline", "Current", "Change", "95% CI", "Verdict"]
        key_rows = [
            [_test_label(r), code(r.metric), fmt_value(r.baseline), fmt_value(r.current), fmt_pct(r.change_pct),
             fmt_ci(r), _verdict_label(r, comparison.gating)]
            for r in gated_rows
        ]  # fmt: skip
    unchanged = len(comparison.unchanged)
    return _View(
        marker=marker,
        headline=_headline(comparison),
        lead=lead,
        regressions=[_bullet(r) for r in comparison.regressions],
        regressions_title="Regressions" if comparison.gating else "Regressions (shown, not gated)",
        improvements=[_bullet(r) for r in comparison.improvements],
        unchanged=f"{unchanged} gated metric{'' if unchanged == 1 else 's'} unchanged (within threshold or noise)."
        if baseline is not None
        else "",
        problems=[md(p) for p in comparison.problems],
        notes=[md(n) for n in comparison.notes],
        runs=runs,
        key_header=key_header,
        key_rows=key_rows,
        charts=_charts(group_tests(current), group_tests(baseline) if baseline is not None else None),
        details=[_details_table(test, rows, comparison.gating) for test, rows in tests] if baseline is not None else _current_details(current),
        footer=_footer(run_url, comparison),
    )


def _footer(run_url: str | None, comparison: Comparison | None) -> str:
    parts = [f"[Workflow run]({run_url})"] if run_url else []
    parts.append(f"kitt {__version__}")
    if comparison is not None and comparison.baseline is not None:
        parts.append(
            "a regression is a change beyond its threshold that is also significant "
            f"(moderated t on log values, Holm-corrected, family α = {comparison.alpha:g})"
        )
    return " · ".join(parts)


def _details_table(test: str, rows: list[MetricRow], gating: bool) -> dict[str, Any]:
    header = ["Metric", "Better", "Baseline (n)", "Current (n)", "Change", "95% CI", "p (Holm)", "Threshold", "Verdict"]
    body = [
        [code(r.metric), {"lower": "lower", "higher": "higher"}.get(r.direction or "", "—"),
         f"{fmt_value(r.baseline)} ({r.n_baseline})", f"{fmt_value(r.current)} ({r.n_current})",
         fmt_pct(r.change_pct), fmt_ci(r), fmt_p(r.p_value),
         f"{r.threshold_pct:g}%" if r.threshold_pct is not None else "—",
         _verdict_label(r, gating) + (f": {r.reason}" if r.reason and r.verdict is Verdict.UNCHANGED else "")]
        for r in rows
    ]  # fmt: skip
    level = rows[0].key.level_label if rows else ""
    return {"title": f"{code(test)}" + (f" ({level})" if level else ""), "header": header, "rows": body}


def _current_table(groups: dict[Any, RepeatGroup]) -> tuple[list[str], list[list[str]]]:
    present = [m for m in DEFAULT_GATED if any(g.samples(m) for g in groups.values())]
    header = ["Test", "Repeats", *present]
    rows = [
        [code(g.name), str(len(g.repeats)), *(_value_with_spread(g.samples(m)) for m in present)]
        for g in groups.values()
    ]
    return header, rows


def _value_with_spread(values: list[float]) -> str:
    """The typical value and, with repeats, their coefficient of variation."""
    typical = center(values)
    if len(values) < 2 or not typical:
        return fmt_value(typical)
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{fmt_value(typical)} ±{100 * sd / abs(mean):.1f}%"


def _current_details(result_set: ResultSet) -> list[dict[str, Any]]:
    tables = []
    for group in group_tests(result_set).values():
        rows = []
        for metric in group.metric_names():
            values = group.samples(metric)
            if not values:  # null in every repeat (no GPU, say)
                continue
            rows.append([code(metric), unit(metric) or "—", str(len(values)), _value_with_spread(values),
                         fmt_value(min(values)), fmt_value(max(values))])  # fmt: skip
        level = group.key.level_label
        tables.append({
            "title": code(group.name) + (f" ({level})" if level else ""),
            "header": ["Metric", "Unit", "n", "Typical ±CV", "Min", "Max"],
            "rows": rows,
        })  # fmt: skip
    return tables


def _charts(current: dict[Any, RepeatGroup], baseline: dict[Any, RepeatGroup] | None) -> list[dict[str, Any]]:
    """One throughput and one latency chart per test family swept over two or more load levels."""
    families: dict[tuple[str, str], list[Any]] = {}
    for key in current:
        if key.kind and (baseline is None or key in baseline):
            families.setdefault((key.base, key.kind), []).append(key)
    charts = []
    for (base, kind), keys in families.items():
        if len(keys) < 2:
            continue
        keys.sort(key=lambda k: k.level)
        x_label = "concurrency" if kind == "concurrency" else "request rate (req/s)"
        for metric, y_label in _CHART_METRICS:
            sides = [("current", current)] if baseline is None else [("baseline", baseline), ("current", current)]
            lines = [[center(groups[k].samples(metric)) for k in keys] for _, groups in sides]
            if any(v is None for line in lines for v in line):
                continue
            charts.append({
                "title": _chart_label(f"{base}: {y_label} vs {x_label}"),
                "x_label": x_label,
                "categories": ", ".join(f'"{k.level:g}"' for k in keys),
                "y_label": _chart_label(y_label),
                "lines": [", ".join(f"{v:.4g}" for v in line) for line in lines],
                "caption": "" if baseline is None else "First line: baseline; second line: current.",
            })  # fmt: skip
    return charts


# --------------------------------------------------------------------------- rendering


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=False,  # Markdown, not HTML: values are escaped by md() when the view is built
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, view: _View) -> str:
    text = _environment().get_template(template).render(v=view)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_report(
    comparison: Comparison,
    *,
    marker: str = DEFAULT_MARKER,
    run_url: str | None = None,
    limit: int = COMMENT_LIMIT - 1,
) -> str:
    """The PR comment / job summary for a comparison, at most ``limit`` characters.

    ``marker`` is the hidden first line (``kitt.github.comments.comment_marker(key)``).
    """
    view = _comparison_view(comparison, marker, run_url)
    return _fit(view, limit)


def _fit(view: _View, limit: int) -> str:
    """The richest rendering within ``limit``: the details go first, then the charts and the
    unchanged key rows, then everything but the verdict."""
    text = _render("report.md.j2", view)
    if report_size(text) <= limit:
        return text
    if limit < COMMENT_LIMIT:
        where = "the full report is in the job summary, and every number in the uploaded metrics.json"
        limit_text = f"to stay under GitHub's {COMMENT_LIMIT:,}-character limit for a comment"
    else:
        where = "every number is in the uploaded metrics.json"
        limit_text = f"to keep this report under {limit:,} characters"
    changed = [row for row in view.key_rows if not row[-1].startswith(("⚪", "not gated"))]
    lighter = [
        (view, ""),
        (replace(view, charts=[], key_rows=changed), "Charts and unchanged key metrics were cut, and d"),
    ]
    for base, prefix in lighter:
        total = len(base.details)

        def attempt(keep: int, base: _View = base, prefix: str = prefix, total: int = total) -> str:
            note = f"{prefix or 'D'}etails were cut to {keep} of {total} tests {limit_text}; {where}."
            return _render("report.md.j2", replace(base, details=base.details[:keep], cut_notes=[note]))

        low, high = 0, total  # the most detail tables that fit, if any count does
        if report_size(attempt(0)) > limit:
            continue
        while low < high:
            middle = (low + high + 1) // 2
            if report_size(attempt(middle)) <= limit:
                low = middle
            else:
                high = middle - 1
        return attempt(low)
    # Last resort: the verdict alone. Its headline is never cut; only its longest lists are.
    note = f"Everything but the verdict was cut {limit_text}; {where}."
    candidate = replace(view, details=[], charts=[], key_rows=[], cut_notes=[note])
    for keep in (len(view.regressions), 200, 50, 10):
        text = _render("report.md.j2", _shorten(candidate, keep))
        if report_size(text) <= limit:
            return text
    return text[: limit - 2] + "…\n"


def _shorten(view: _View, keep: int) -> _View:
    def cut(items: list[str]) -> list[str]:
        return items if len(items) <= keep else [*items[:keep], f"… and {len(items) - keep} more"]

    return replace(view, regressions=cut(view.regressions), improvements=cut(view.improvements),
                   problems=cut(view.problems), notes=cut(view.notes))  # fmt: skip


def _strings(value: object) -> list[str]:
    """A list of strings from a metrics.json field that an older or foreign writer may lack."""
    return [str(item) for item in value] if isinstance(value, list) else []


def render_summary(result_set: ResultSet, *, run_url: str | None = None) -> str:
    """The summary.md of one run (no baseline): what ran, key metrics, charts, all metrics."""
    groups = group_tests(result_set)
    key_header, key_rows = _current_table(groups)
    failed = [g.name for g in groups.values() if not all(r.passed for r in g.repeats)]
    view = _View(
        marker="",
        headline=f"kitt benchmark: {md(result_set.model)} on {md(result_set.engine)}",
        lead=f"Suite {md(result_set.suite_name)}: {plural(len(groups), 'test')}"
        + (f", {len(failed)} failed" if failed else ", all passed") + ".",
        regressions=[], regressions_title="", improvements=[], unchanged="",
        problems=[f"{code(name)} failed" for name in failed] + [md(f) for f in _strings(result_set.raw.get("failures"))],
        notes=[md(note) for note in _strings(result_set.raw.get("notes"))],
        runs=[_run_row("Run", result_set)],
        key_header=key_header, key_rows=key_rows,
        charts=_charts(groups, None), details=_current_details(result_set),
        footer=_footer(run_url, None),
    )  # fmt: skip
    return _render("summary.md.j2", view)
