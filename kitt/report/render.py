"""Render comparisons and run summaries to Markdown with the jinja2 templates beside this module.

Python turns a finished ``kitt.compare.Comparison`` into a view of preformatted strings; the
templates only lay them out. This module owns every word and label the reader sees and
computes no statistic: each number comes from the comparison. A PR comment must stay under GitHub's 65,536-character limit,
so ``render_report`` cuts the details first (with a note), then the charts and the unchanged
rows of the key table, and never the verdict.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from kitt import __version__
from kitt.compare import ChartSeries, Comparison, MatchKey, MetricRow, Reason, Spread, TestComparison, Verdict
from kitt.gate import MIN_HISTORY
from kitt.github.platform import COMMENT_LIMIT, comment_size
from kitt.results import ResultSet
from kitt.thresholds import DEFAULT_GATED, LOWER

_REASON_WORDS = {
    Reason.SIGNIFICANT: "beyond threshold and significant",
    Reason.WITHIN_NOISE: "beyond threshold but within noise",
    Reason.WITHIN_THRESHOLD: "within threshold",
    Reason.SINGLE_REPEAT: "one repeat on a side: plain threshold, no significance test",
    Reason.NOT_GATED: "not gated",
    Reason.NO_DIRECTION: "no known direction",
    Reason.MISSING: "gated metric missing from the current run",
    Reason.NONE: "",
}
_CHART_LABELS = {"output_throughput": "output tokens/s", "median_e2el_ms": "median E2E latency (ms)"}
_VERDICT_LABELS = {
    Verdict.REGRESSION: "🔴 regression",
    Verdict.IMPROVEMENT: "🟢 improvement",
    Verdict.UNCHANGED: "⚪ unchanged",
    Verdict.NOT_GATED: "not gated",
    Verdict.INCONCLUSIVE: "🟡 inconclusive",
    Verdict.INCOMPLETE: "⚠️ incomplete",
    Verdict.ONLY_BASELINE: "only in baseline",
    Verdict.ONLY_CURRENT: "only in current",
}


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
    inconclusive: list[str]
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


def level_label(key: MatchKey) -> str:
    if not key.kind:
        return ""
    number = f"{key.level:g}"
    return f"concurrency {number}" if key.kind == "concurrency" else f"{number} req/s"


def _run_row(side: str, result_set: ResultSet) -> dict[str, str]:
    return {
        "side": side,
        "model": md(result_set.model),
        "engine": md(result_set.engine),
        "suite": md(result_set.suite_name),
        "hardware": md(hardware_label(result_set)),
        "date": result_set.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


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
        f"{code(row.test)} {code(row.metric)}: {arrow} (**{fmt_pct(row.change_pct)}**{ci}; "
        f"threshold {row.threshold_pct:g}%, {better} is better, {how})"
    )


def _settle(row: MetricRow, comparison: Comparison) -> str:
    """What would decide an inconclusive row."""
    if row.method == "history t":
        return ("the change is within this runner's job-to-job spread; rerun the job, or judge it "
                "against more baseline jobs")
    if row.repeats_to_settle:
        return f"about {row.repeats_to_settle} repeats a side would settle it, if the change is real"
    return "more repeats, or a history of baseline jobs, would settle it"


def _headline(comparison: Comparison) -> str:
    n_reg, n_imp, n_open = len(comparison.regressions), len(comparison.improvements), len(comparison.inconclusive)
    headline = {
        "regression": f"❌ kitt: {plural(n_reg, 'performance regression')}",
        "incomplete": "⚠️ kitt: incomplete results, so the gate fails",
        "not gated": f"⚠️ kitt: not gated, the {_what_differs(comparison)} differs",
        "no baseline": "📊 kitt: no baseline yet",
        "nothing compared": "⚠️ kitt: nothing to compare",
        "inconclusive": f"🟡 kitt: no regression proven, {n_open} inconclusive",
        "improvement": f"✅ kitt: no regressions, {plural(n_imp, 'improvement')}",
        "unchanged": "✅ kitt: no regressions",
    }[comparison.verdict]
    if comparison.verdict == "regression" and comparison.incomplete:
        headline += ", and the results are incomplete"
    digest = comparison.identity.image_digest
    if digest:
        headline += f" · {md(comparison.current.engine)} image changed: {_short_digest(digest[0])} → {_short_digest(digest[1])}"
    return headline


def _what_differs(comparison: Comparison) -> str:
    if comparison.hardware_mismatch and not comparison.allow_hardware_mismatch:
        return "hardware"
    return " and ".join(name for name, _, _ in comparison.identity.differs) or "hardware"


def _short_digest(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return md(f"{algorithm}:{value[:12]}…" if value else digest[:19])


def hardware_note(comparison: Comparison) -> str | None:
    """The sentence about the hardware of the two sides, when there is something to say."""
    if comparison.hardware_mismatch:
        base, cur = comparison.baseline, comparison.current
        assert base is not None
        described = (f"baseline {hardware_label(base)} ({base.fingerprint}), "
                     f"current {hardware_label(cur)} ({cur.fingerprint})")  # fmt: skip
        if comparison.gating:
            return f"Hardware differs ({described}); gated anyway because of --allow-hardware-mismatch."
        return (
            f"Hardware differs ({described}), so the comparison is shown but not gated: "
            "numbers from different machines are not comparable. Pass --allow-hardware-mismatch to gate anyway."
        )
    side = comparison.unknown_fingerprint
    if side:
        side = "current run" if side == "current" else side
        return f"The {side} has no hardware fingerprint (hardware.json), so the hardware could not be checked."
    return None


def problem_lines(comparison: Comparison) -> list[str]:
    """Why the results are incomplete (which fails the gate), one sentence each (plain text)."""
    gap = comparison.incomplete
    lines = []
    if gap.upstream:
        lines.append(f"The benchmark job did not succeed (its conclusion: {gap.upstream}), so these results cannot pass.")
    if gap.run_failed:
        lines.append("The current run did not finish cleanly (metrics.json says passed: false), so it cannot pass.")
    lines += [f"{t.name} failed in the current run" + (f": {t.error}" if t.error else "") for t in gap.failed_tests]
    lines += [f"{name} is in the baseline but missing from the current run." for name in gap.missing_tests]
    lines += [f"{name} ran {ran} of {want} repeats." for name, ran, want in gap.missing_repeats]
    lines += [
        f"{test}: gated metrics missing from the current run (present in the baseline): {', '.join(names)}."
        for test, names in gap.missing_metrics
    ]
    return lines


def regression_line(row: MetricRow, gating: bool) -> str:
    """One regression as an annotation (plain text)."""
    change = f"{row.change_pct:+.1f}%" if row.change_pct is not None else "changed"
    prefix = "" if gating else "not gated (hardware differs): "
    return f"{prefix}{row.test} {row.metric} regressed {change} (threshold {row.threshold_pct:g}%)"


def _identity_notes(comparison: Comparison) -> list[str]:
    differs = comparison.identity.differs
    if not differs:
        return []
    described = "; ".join(f"{name}: baseline {b}, current {c}" for name, b, c in differs)
    if comparison.allow_mismatch:
        return [f"The two sides measured different things ({described}); gated anyway because of --allow-mismatch."]
    return [f"The two sides measured different things ({described}), so the comparison is shown but not gated. "
            "Pass --allow-mismatch to gate anyway."]


def _design_note(comparison: Comparison) -> str:
    jobs = len(comparison.history)
    if comparison.design == "history":
        dates = sorted(r.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d") for r in comparison.history)
        return (f"Compared with {jobs} baseline jobs ({dates[0]} to {dates[-1]}): the gate measures how much a "
                "whole job shifts from run to run and judges this run against that spread.")
    few = f"Only {plural(jobs, 'baseline job')}, so compared with the newest: " if jobs > 1 else "One baseline job: "
    return (few + "run-to-run drift was not measured, so a shift of the whole runner (clocks, thermals, "
            "neighbours) can look like a change. For a verdict that holds under CI noise, keep a history of "
            f"baseline jobs (`baseline-history`, at least {MIN_HISTORY}; the default downloads the last 10).")


def _notes(comparison: Comparison) -> list[str]:
    if comparison.baseline is None:
        return ["No baseline yet: nothing to compare against, so nothing is gated. This run can become the baseline.",
                *comparison.current.definitions]
    notes = [note] if (note := hardware_note(comparison)) else []
    notes += _identity_notes(comparison)
    notes += list(dict.fromkeys(comparison.current.definitions + comparison.baseline.definitions))
    notes.append(_design_note(comparison))
    notes += [f"Test {name} is only in the baseline, so it is not compared." for name in comparison.tests_only_in_baseline]
    notes += [f"Test {name} is only in the current run, so it is not compared." for name in comparison.tests_only_in_current]
    single = [r for r in comparison.rows if r.method == "threshold only"]
    if single:
        notes.append(
            f"{len(single)} gated metrics have a single repeat on a side, so only the plain threshold "
            "applies: the significance test needs repeats (set `repeats: 5` in the suite)."
        )
    few = min((min(r.n_baseline, r.n_current) for r in comparison.rows if r.method == "moderated t"), default=5)
    if few < 5:
        notes.append(
            f"Some gated metrics have only {few} repeats on a side, so the significance test is weak: by simulation, "
            "a 10% regression of one metric is caught about 2 times in 3 with 3 repeats, 95% of the time with 5."
        )
    for side, verdict in (("baseline", Verdict.ONLY_BASELINE), ("current run", Verdict.ONLY_CURRENT)):
        if names := comparison.metrics_only_in(verdict):
            notes.append(f"Only in the {side}, so not compared: {', '.join(names)}.")
    return notes


def _comparison_view(comparison: Comparison, marker: str, run_url: str | None) -> _View:
    current, baseline = comparison.current, comparison.baseline
    gated_rows = [r for r in comparison.rows if r.gated]
    tests = [t for t in comparison.tests if t.rows]
    lead = f"{md(current.model)} on {md(current.engine)}, suite {md(current.suite_name)}"
    if baseline is not None:
        repeats = max((r.n_current for r in comparison.rows), default=0)
        tested = sum(1 for r in gated_rows if r.change_pct is not None)
        lead += f": {plural(tested, 'gated metric')} compared across {plural(len(tests), 'test')}, up to {plural(repeats, 'repeat')} per side."
    else:
        repeats = max((t.n_current for t in comparison.tests), default=0)
        lead += f": {plural(len(comparison.tests), 'test')}, up to {plural(repeats, 'repeat')} each."
    runs = ([_run_row("Baseline", baseline)] if baseline is not None else []) + [_run_row("Current", current)]
    if baseline is None:
        key_header, key_rows = _current_table(comparison.tests)
    else:
        key_header = ["Test", "Metric", "Baseline", "Current", "Change", "95% CI", "Verdict"]
        key_rows = [
            [code(r.test), code(r.metric), fmt_value(r.baseline), fmt_value(r.current), fmt_pct(r.change_pct),
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
        inconclusive=[f"{_bullet(r)}: {_settle(r, comparison)}" for r in comparison.inconclusive],
        unchanged=f"{unchanged} gated metric{'' if unchanged == 1 else 's'} unchanged (within threshold)."
        if baseline is not None
        else "",
        problems=[md(p) for p in problem_lines(comparison)],
        notes=[md(n) for n in _notes(comparison)],
        runs=runs,
        key_header=key_header,
        key_rows=key_rows,
        charts=_charts(comparison.charts),
        details=[_details_table(t, comparison.gating) for t in tests] if baseline is not None else _current_details(comparison.tests),
        footer=_footer(run_url, comparison),
    )


def _footer(run_url: str | None, comparison: Comparison | None) -> str:
    parts = [f"[Workflow run]({run_url})"] if run_url else []
    parts.append(f"kitt {__version__}")
    if comparison is not None and comparison.baseline is not None:
        test = "against the baseline jobs' spread" if comparison.design == "history" else "moderated t on log values"
        parts.append(
            "regression / improvement: beyond the threshold and significant "
            f"({test}, Holm-corrected, family α = {comparison.alpha:g}); inconclusive: beyond the threshold "
            "but within the noise; unchanged: within the threshold; incomplete: missing from the current run"
        )
    return " · ".join(parts)


def _title(test: TestComparison) -> str:
    level = level_label(test.key)
    return code(test.name) + (f" ({level})" if level else "")


def _details_table(test: TestComparison, gating: bool) -> dict[str, Any]:
    header = ["Metric", "Better", "Baseline (n)", "Current (n)", "Change", "95% CI", "p (Holm)", "Threshold", "Verdict"]
    body = [
        [code(r.metric), {"lower": "lower", "higher": "higher"}.get(r.direction or "", "—"),
         f"{fmt_value(r.baseline)} ({r.n_baseline})", f"{fmt_value(r.current)} ({r.n_current})",
         fmt_pct(r.change_pct), fmt_ci(r), fmt_p(r.p_value),
         f"{r.threshold_pct:g}%" if r.threshold_pct is not None else "—",
         _verdict_label(r, gating) + (f": {_REASON_WORDS[r.reason]}" if r.verdict is Verdict.UNCHANGED and r.reason is not Reason.NONE else "")]
        for r in test.rows
    ]  # fmt: skip
    return {"title": _title(test), "header": header, "rows": body}


def _current_table(tests: list[TestComparison]) -> tuple[list[str], list[list[str]]]:
    spreads = [{r.metric: r.current_spread for r in t.rows} for t in tests]
    present = [m for m in DEFAULT_GATED if any(m in s for s in spreads)]
    header = ["Test", "Repeats", *present]
    rows = [[code(t.name), str(t.n_current), *(_value_with_spread(s.get(m)) for m in present)] for t, s in zip(tests, spreads)]
    return header, rows


def _value_with_spread(spread: Spread | None) -> str:
    """The typical value and, with repeats, their coefficient of variation."""
    if spread is None:
        return fmt_value(None)
    if spread.cv_pct is None:
        return fmt_value(spread.center)
    return f"{fmt_value(spread.center)} ±{spread.cv_pct:.1f}%"


def _current_details(tests: list[TestComparison]) -> list[dict[str, Any]]:
    return [{
        "title": _title(t),
        "header": ["Metric", "Unit", "n", "Typical ±CV", "Min", "Max"],
        "rows": [[code(r.metric), unit(r.metric) or "—", str(r.n_current), _value_with_spread(r.current_spread),
                  fmt_value(r.current_spread.low if r.current_spread else None),
                  fmt_value(r.current_spread.high if r.current_spread else None)] for r in t.rows],
    } for t in tests]  # fmt: skip


def _charts(series: list[ChartSeries]) -> list[dict[str, Any]]:
    charts = []
    for s in series:
        x_label = "concurrency" if s.kind == "concurrency" else "request rate (req/s)"
        y_label = _CHART_LABELS.get(s.metric, s.metric)
        lines = [s.current] if s.baseline is None else [s.baseline, s.current]
        charts.append({
            "title": _chart_label(f"{s.family}: {y_label} vs {x_label}"),
            "x_label": x_label,
            "categories": ", ".join(f'"{level:g}"' for level in s.levels),
            "y_label": _chart_label(y_label),
            "lines": [", ".join(f"{v:.4g}" for v in line) for line in lines],
            "caption": "" if s.baseline is None else "First line: baseline; second line: current.",
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
    marker: str,
    run_url: str | None = None,
    limit: int = COMMENT_LIMIT - 1,
) -> str:
    """The PR comment / job summary for a comparison, at most ``limit`` characters.

    ``marker`` is the hidden first line (``kitt.github.comments.comment_marker(key)``); the
    default ``limit`` is GitHub's for a comment.
    """
    view = _comparison_view(comparison, marker, run_url)
    return _fit(view, limit)


def _fit(view: _View, limit: int) -> str:
    """The richest rendering within ``limit``: the details go first, then the charts and the
    unchanged key rows, then everything but the verdict."""
    text = _render("report.md.j2", view)
    if comment_size(text) <= limit:
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
        if comment_size(attempt(0)) > limit:
            continue
        while low < high:
            middle = (low + high + 1) // 2
            if comment_size(attempt(middle)) <= limit:
                low = middle
            else:
                high = middle - 1
        return attempt(low)
    # Last resort: the verdict alone. Its headline is never cut; only its longest lists are.
    note = f"Everything but the verdict was cut {limit_text}; {where}."
    candidate = replace(view, details=[], charts=[], key_rows=[], cut_notes=[note])
    for keep in (len(view.regressions), 200, 50, 10):
        text = _render("report.md.j2", _shorten(candidate, keep))
        if comment_size(text) <= limit:
            return text
    return text[: limit - 2] + "…\n"


def _shorten(view: _View, keep: int) -> _View:
    def cut(items: list[str]) -> list[str]:
        return items if len(items) <= keep else [*items[:keep], f"… and {len(items) - keep} more"]

    return replace(view, regressions=cut(view.regressions), improvements=cut(view.improvements),
                   inconclusive=cut(view.inconclusive), problems=cut(view.problems), notes=cut(view.notes))  # fmt: skip


def _strings(value: object) -> list[str]:
    """A list of strings from a metrics.json field that an older or foreign writer may lack."""
    return [str(item) for item in value] if isinstance(value, list) else []


def render_summary(comparison: Comparison, *, run_url: str | None = None) -> str:
    """The summary.md of one run: a current-only comparison (``compare_result_sets(rs, None)``)
    as what ran, key metrics, charts and all metrics."""
    result_set = comparison.current
    failed = [t.name for t in comparison.incomplete.failed_tests]
    key_header, key_rows = _current_table(comparison.tests)
    view = _View(
        marker="",
        headline=f"kitt benchmark: {md(result_set.model)} on {md(result_set.engine)}",
        lead=f"Suite {md(result_set.suite_name)}: {plural(len(comparison.tests), 'test')}"
        + (f", {len(failed)} failed" if failed else ", all passed") + ".",
        regressions=[], regressions_title="", improvements=[], inconclusive=[], unchanged="",
        problems=[f"{code(name)} failed" for name in failed] + [md(f) for f in _strings(result_set.raw.get("failures"))],
        notes=[md(note) for note in _strings(result_set.raw.get("notes"))],
        runs=[_run_row("Run", result_set)],
        key_header=key_header, key_rows=key_rows,
        charts=_charts(comparison.charts), details=_current_details(comparison.tests),
        footer=_footer(run_url, None),
    )  # fmt: skip
    return _render("summary.md.j2", view)
