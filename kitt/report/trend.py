"""Render a base-branch trend (``kitt.trend.Trend``) to Markdown: change points, and mermaid charts.

Like ``kitt.report.render`` this module owns every word and computes no statistic: the change
points, their sizes and intervals, and the chart series come finished from ``kitt.trend``. The
charts are mermaid ``xychart-beta`` blocks, which GitHub renders in job summaries and comments.
xychart has no legend, so each chart says in its caption which line is which load level, and
its title says which way is better; the y-axis starts at 0, so a small wobble looks small.
"""

from __future__ import annotations

import math
import re
from datetime import timezone

from kitt.report.tables import BASELINE_COLOUR, CHART_HEIGHT, NEUTRAL
from kitt.report.words import code, fmt_p, fmt_pct, fmt_value, md, plural
from kitt.thresholds import LOWER
from kitt.trend import SLOWER, ChangePoint, Trend, TrendChart

_METRIC_LABELS = {"output_throughput": "output tokens/s", "median_e2el_ms": "median E2E latency (ms)"}


def short_commit(commit: str | None) -> str:
    return commit[:7] if commit else "unknown commit"


def _label(text: str) -> str:
    """Text safe inside a quoted mermaid string: no quotes, brackets or line breaks."""
    return re.sub(r"[\"\n\r\[\]`]", "", str(text))[:80]


def _axis_max(values: list[float]) -> float:
    """A round top for a y-axis that starts at 0: the largest value plus a tenth, to two figures."""
    top = max(values) * 1.1
    if not (top > 0 and math.isfinite(top)):
        return 1.0
    scale = 10 ** math.floor(math.log10(top) - 1)
    return math.ceil(top / scale) * scale


def _number(value: float) -> str:
    return f"{value:.4g}"


# Lines of a trend, one per load level: the comment's blue first, then colours that read in light
# and dark themes and are never the baseline's grey or a verdict's red and green.
LEVEL_COLOURS = (NEUTRAL, "#8250df", "#bf8700", "#1b7c83", "#e16f24", "#bf3989")
_COLOUR_WORDS = ("blue", "purple", "ochre", "teal", "orange", "pink")


def mermaid_chart(
    title: str,
    x_label: str,
    categories: list[str],
    y_label: str,
    lines: list[list[float]],
    bars: list[list[float]] | None = None,
    *,
    palette: list[str] | None = None,
    line_names: list[str] | None = None,
) -> str:
    """One ``xychart-beta`` block: y from 0, one ``line`` per series (and ``bar`` series first), at
    the comment's chart height, in ``palette`` (bars first, then lines)."""
    top = _axis_max([v for series in [*lines, *(bars or [])] for v in series] or [1.0])
    colours = palette or [LEVEL_COLOURS[i % len(LEVEL_COLOURS)] for i in range(len(bars or []) + len(lines))]
    init = (
        '%%{init: {"xyChart": {"height": ' + str(CHART_HEIGHT) + ', "width": 700}, '
        '"themeVariables": {"xyChart": {"plotColorPalette": "' + ", ".join(colours) + '"}}}}%%'
    )
    names = line_names or [""] * len(lines)
    body = [
        "```mermaid",
        init,
        "xychart-beta",
        f'    title "{_label(title)}"',
        f'    x-axis "{_label(x_label)}" [{", ".join(chr(34) + _label(c) + chr(34) for c in categories)}]',
        f'    y-axis "{_label(y_label)}" 0 --> {_number(top)}',
        *(f"    bar [{', '.join(_number(v) for v in series)}]" for series in bars or []),
        *(
            f"    line{' ' + chr(34) + _label(name) + chr(34) if name else ''} [{', '.join(_number(v) for v in series)}]"
            for name, series in zip(names, lines)
        ),
        "```",
    ]
    return "\n".join(body)


def _level_name(kind: str, level: float) -> str:
    if kind == "concurrency":
        return f"concurrency {level:g}"
    return f"{level:g} req/s" if kind == "rate" else "the test"


def _better(direction: str) -> str:
    return "lower is better" if direction == LOWER else "higher is better"


def trend_chart(chart: TrendChart, trend: Trend) -> str:
    """A key metric of one test family over the history's jobs, one line per load level."""
    label = _METRIC_LABELS.get(chart.metric, chart.metric)
    family = chart.family or "all tests"
    title = f"{family}: {label}, last {len(chart.jobs)} jobs ({_better(chart.direction)})"
    categories = [str(j + 1) for j in chart.jobs]
    names = [_level_name(chart.kind, level) for level in chart.levels]
    block = mermaid_chart(
        title, "job, oldest to newest", categories, label, [list(line) for line in chart.lines], line_names=names
    )
    caption = (
        "Lines: "
        + ", ".join(f"**{_COLOUR_WORDS[i % len(_COLOUR_WORDS)]}** {name}" for i, name in enumerate(names))
        + "."
    )
    return f"{block}\n{caption}"


def history_chart(
    metric: str, direction: str, base_values: list[float], pr_value: float, *, title_prefix: str = ""
) -> str:
    """The base branch's recent jobs and this PR's point for one key metric, for the PR comment:
    one bar per job, oldest to newest, then the PR's bar; the line is the base jobs' median, so
    the PR's bar reads against it. The comment shows it for a comparison with a history of jobs."""
    label = _METRIC_LABELS.get(metric, metric)
    ordered = sorted(base_values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    categories = [str(i) for i in range(1, len(base_values) + 1)] + ["PR"]
    title = f"{title_prefix}{label} ({_better(direction)})"
    block = mermaid_chart(
        title,
        "base-branch job, oldest to newest, then this PR",
        categories,
        label,
        [[median] * len(categories)],
        bars=[[*base_values, pr_value]],
        palette=[NEUTRAL, BASELINE_COLOUR],
        line_names=["baseline"],
    )
    return (
        f"{block}\nBars (**blue**): the base branch's last {plural(len(base_values), 'job')}, then this PR; "
        "line (**grey**): their median."
    )


def _when(point: ChangePoint) -> str:
    return point.timestamp[:16].replace("T", " ") + " UTC"


def _by_job(points: list[ChangePoint]) -> list[tuple[int, str, list[ChangePoint]]]:
    """(job index, direction, its change points, largest first): one commit moves many series together."""
    groups: dict[tuple[int, str], list[ChangePoint]] = {}
    for point in points:
        groups.setdefault((point.index, point.direction), []).append(point)
    return [
        (index, direction, sorted(group, key=lambda c: (-abs(c.change_pct), c.test, c.metric)))
        for (index, direction), group in sorted(groups.items())
    ]


def change_line(index: int, direction: str, group: list[ChangePoint], trend: Trend) -> str:
    """The change points of one job in one direction as a bullet: where, which commit, how much and how sure."""
    mark = "🔴" if direction == SLOWER else "🟢"
    top = group[0]
    largest = ", ".join(
        f"{code(c.test)} {code(c.metric)} **{fmt_pct(c.change_pct)}** "
        f"(95% CI {fmt_pct(c.ci_low_pct)} … {fmt_pct(c.ci_high_pct)}, p{_p(c.p_value)})"
        for c in group[:3]
    )
    more = f", and {len(group) - 3} more" if len(group) > 3 else ""
    return (
        f"{mark} commit {code(short_commit(top.commit))} (job {index + 1} of {len(trend.jobs)}, {_when(top)}): "
        f"{len(group)} series got **{direction}**: {largest}{more}"
    )


def _p(p: float) -> str:
    text = fmt_p(p)
    return text if text.startswith("<") else f"={text}"


def warning_lines(points: list[ChangePoint], trend: Trend) -> list[str]:
    """The ``::warning`` texts for change points that made serving slower: one per job, since one
    commit usually moves many metrics together, naming its commit and its largest changes."""
    lines = []
    for index, _, group in _by_job([p for p in points if p.direction == SLOWER]):
        named = ", ".join(f"{c.metric} of {c.test} {fmt_pct(c.change_pct)}" for c in group[:3])
        more = f" and {len(group) - 3} more" if len(group) > 3 else ""
        lines.append(
            f"kitt trend: serving got slower from commit {short_commit(group[0].commit)} "
            f"(job {index + 1} of {len(trend.jobs)}): {named}{more}."
        )
    return lines


def render_trend(trend: Trend, *, new: list[ChangePoint] | None = None, heading: str = "##") -> str:
    """The trend section: a headline, the new change points (when ``new`` is given), every change
    point in a table, then the key-metric charts."""
    jobs = trend.jobs
    slower = trend.slower
    if not jobs:
        return f"{heading} kitt trend: no jobs in the history\n"
    out = [
        f"{heading} {'📉' if slower else '📈'} kitt trend: "
        + (
            f"{plural(len(trend.change_points), 'change point')} in the last {plural(len(jobs), 'job')}"
            if trend.change_points
            else f"no change points in the last {plural(len(jobs), 'job')}"
        ),
        "",
    ]
    first, last = jobs[0], jobs[-1]
    span = (
        f"From {first.timestamp.astimezone(timezone.utc):%Y-%m-%d} ({code(short_commit(first.commit))}) "
        f"to {last.timestamp.astimezone(timezone.utc):%Y-%m-%d} ({code(short_commit(last.commit))}), "
        f"{len(trend.series)} series (gated metric × test) searched. A change point is where a metric's level "
        f"moved for good (at least {trend.min_segment} jobs on each side), at most a "
        f"{trend.alpha:.0%} chance of any false one in this history."
    )
    out += [span, ""]
    if new is not None:
        out += ["**New in this job's history**", ""]
        out += [f"- {change_line(*job, trend)}" for job in _by_job(new)] if new else ["None."]
        out.append("")
    if trend.change_points:
        fresh = new or []
        out += [
            "| Job | Date | Commit | Test | Metric | Before → after | Change | 95% CI | p |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in sorted(trend.change_points, key=lambda c: (c.index, c.test, c.metric)):
            out.append(
                f"| {p.index + 1}{' 🆕' if p in fresh else ''} | {_when(p)} | {code(short_commit(p.commit))} "
                f"| {code(p.test)} | {code(p.metric)} "
                f"| {fmt_value(p.before)} → {fmt_value(p.after)} | {'🔴' if p.direction == SLOWER else '🟢'} "
                f"{fmt_pct(p.change_pct)} {md(p.direction)} | {fmt_pct(p.ci_low_pct)} … {fmt_pct(p.ci_high_pct)} "
                f"| {fmt_p(p.p_value)} |"
            )
        out.append("")
    for chart in trend.charts:
        out += [trend_chart(chart, trend), ""]
    return "\n".join(out).rstrip() + "\n"
