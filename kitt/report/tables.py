"""The report's tables and charts, as rows of preformatted cells for the templates.

- :func:`changed_tables`: what changed, grouped by metric, one column per load level;
- :func:`current_tables`: the key metrics of a run without a baseline, in the same shape;
- :func:`details_tables` / :func:`current_details`: every metric of every test;
- :func:`charts`: mermaid xychart-beta line charts with a fixed palette and a y-axis from 0;
- :func:`curves`: each capacity test's latency-against-load curve per side, its SLO line and its probes.

Every number is a field of the comparison; this module only formats and lays them out.
"""

from __future__ import annotations

from typing import Any

from kitt.comparison import ChartSeries, Comparison, MetricRow, Spread, TestComparison, Verdict
from kitt.report.words import (
    VERDICT_MARKS,
    arrow,
    chart_text,
    code,
    curve_unit,
    fmt_ci,
    fmt_p,
    fmt_pct,
    fmt_value,
    level_label,
    metric_label,
    metric_name,
    unit,
)
from kitt.thresholds import DEFAULT_GATED, metric_sort_key

# At most this many load levels side by side, so a table fits a comment's ~900 px column.
MAX_LEVEL_COLUMNS = 5
CHANGED = (Verdict.REGRESSION, Verdict.IMPROVEMENT, Verdict.INCONCLUSIVE, Verdict.INCOMPLETE)
# Colours that read on GitHub's light and dark themes: grey baseline, red / green / blue current.
BASELINE_COLOUR, WORSE, BETTER, NEUTRAL = "#8c959f", "#cf222e", "#2da44e", "#218bff"
SLO_COLOUR = "#bf8700"  # a capacity curve's SLO line: amber on both themes
CHART_HEIGHT = 320
_VERDICT_WORDS = {
    Verdict.REGRESSION: "🔴 regression",
    Verdict.IMPROVEMENT: "🟢 improvement",
    Verdict.UNCHANGED: "unchanged",
    Verdict.NOT_GATED: "not gated",
    Verdict.INCONCLUSIVE: "🟡 inconclusive",
    Verdict.INCOMPLETE: "⚠️ incomplete",
    Verdict.ONLY_BASELINE: "only in baseline",
    Verdict.ONLY_CURRENT: "only in current",
}


def mark(row: MetricRow, gating: bool) -> str:
    if row.verdict is Verdict.REGRESSION and not gating:
        return "🟠"
    return VERDICT_MARKS.get(row.verdict, "")


def verdict_word(row: MetricRow, gating: bool) -> str:
    if row.verdict is Verdict.REGRESSION and not gating:
        return "🟠 regression (not gated)"
    return _VERDICT_WORDS[row.verdict]


def _families(tests: list[TestComparison]) -> dict[tuple[str, str], list[TestComparison]]:
    """Tests swept over load levels, by (name without the level, kind); a test without one alone."""
    families: dict[tuple[str, str], list[TestComparison]] = {}
    for test in tests:
        base = test.key.base if test.key.kind else test.name
        families.setdefault((base, test.key.kind), []).append(test)
    for members in families.values():
        members.sort(key=lambda t: t.key.level)
    return families


def _level_header(test: TestComparison) -> str:
    return f"{test.key.level:g}" if test.key.kind else "change"


def _first_header(base: str, kind: str, many: bool) -> str:
    where = {"concurrency": "at concurrency", "rate": "at req/s"}.get(kind, "")
    name = code(base) if many or kind else ""
    return " ".join(p for p in (name, where) if p) or "Metric"


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + MAX_LEVEL_COLUMNS] for i in range(0, len(items), MAX_LEVEL_COLUMNS)] or [[]]


def _table(first: str, columns: list[TestComparison], rows: list[tuple[str, list[str]]]) -> dict[str, Any]:
    return {
        "header": [first, *(_level_header(t) for t in columns)],
        "align": ["l", *("r" for _ in columns)],
        "rows": [[label, *cells] for label, cells in rows],
    }


def changed_tables(comparison: Comparison) -> list[dict[str, Any]]:
    """What changed: one row per gated metric with a verdict other than unchanged, levels as columns."""
    families = _families([t for t in comparison.tests if t.rows])
    tables = []
    for (base, kind), tests in families.items():
        changed = {r.metric for t in tests for r in t.rows if r.gated and r.verdict in CHANGED}
        if not changed:
            continue
        metrics = sorted(changed, key=metric_sort_key)
        for columns in _chunks(tests):
            rows = []
            for metric in metrics:
                cells = []
                direction = None
                for test in columns:
                    row = next((r for r in test.rows if r.metric == metric), None)
                    direction = direction or (row.direction if row else None)
                    cells.append(_change_cell(row, comparison.gating))
                rows.append((metric_label(metric, direction), cells))
            tables.append(_table(_first_header(base, kind, len(families) > 1), columns, rows))
    return tables


def _change_cell(row: MetricRow | None, gating: bool) -> str:
    if row is None or row.change_pct is None:
        return "⚠️ missing" if row is not None and row.verdict is Verdict.INCOMPLETE else "—"
    values = f"<sub>{fmt_value(row.baseline)} → {fmt_value(row.current)}</sub>"
    sign = mark(row, gating)
    change = f"{sign} **{fmt_pct(row.change_pct)}**" if sign else fmt_pct(row.change_pct)
    return f"{change}<br>{values}"


def current_tables(tests: list[TestComparison]) -> list[dict[str, Any]]:
    """The key metrics of one run: typical value ± CV of the repeats, levels as columns."""
    families = _families([t for t in tests if t.rows])
    tables = []
    for (base, kind), members in families.items():
        spreads = [{r.metric: r for r in t.rows} for t in members]
        present = [m for m in DEFAULT_GATED if any(m in s for s in spreads)]
        if not present:
            continue
        for start in range(0, len(members), MAX_LEVEL_COLUMNS):
            columns = members[start : start + MAX_LEVEL_COLUMNS]
            rows = []
            for metric in present:
                found = [s.get(metric) for s in spreads[start : start + len(columns)]]
                direction = next((r.direction for r in found if r is not None), None)
                cells = [_value_with_spread(r.current_spread if r else None) for r in found]
                rows.append((metric_label(metric, direction), cells))
            table = _table(_first_header(base, kind, len(families) > 1), columns, rows)
            if not kind:
                table["header"][1] = "value"
            tables.append(table)
    return tables


def _value_with_spread(spread: Spread | None) -> str:
    """The typical value and, with repeats, their coefficient of variation."""
    if spread is None:
        return fmt_value(None)
    if spread.cv_pct is None:
        return fmt_value(spread.center)
    return f"{fmt_value(spread.center)}<br><sub>±{spread.cv_pct:.1f}%</sub>"


def _title(test: TestComparison) -> str:
    level = level_label(test.key)
    return code(test.name) + (f" ({level})" if level else "")


def details_tables(comparison: Comparison) -> list[dict[str, Any]]:
    """Every metric of every compared test: values, change, interval, p, verdict (and the threshold,
    in the title when every gated metric of the test shares one, else as a column)."""
    tables = []
    for test in (t for t in comparison.tests if t.rows):
        limits = {r.threshold_pct for r in test.rows if r.threshold_pct is not None}
        column = len(limits) > 1
        body = [
            [
                f"{code(r.metric)} {arrow(r.direction)}".rstrip(),
                fmt_value(r.baseline),
                fmt_value(r.current),
                fmt_pct(r.change_pct),
                fmt_ci(r),
                fmt_p(r.p_value),
                *([f"{r.threshold_pct:g}%" if r.threshold_pct is not None else "—"] if column else []),
                verdict_word(r, comparison.gating),
            ]
            for r in test.rows
        ]
        shared = f" · threshold {limits.pop():g}%" if len(limits) == 1 else ""
        tables.append(
            {
                "title": f"{_title(test)} · {test.n_baseline} vs {test.n_current} repeats{shared}",
                "header": [
                    "Metric",
                    "Baseline",
                    "Current",
                    "Change",
                    "95% CI",
                    "p",
                    *(["Threshold"] if column else []),
                    "Verdict",
                ],
                "align": ["l", "r", "r", "r", "r", "r", *(["r"] if column else []), "l"],
                "rows": body,
            }
        )
    return tables


def current_details(tests: list[TestComparison]) -> list[dict[str, Any]]:
    return [
        {
            "title": f"{_title(t)} · {t.n_current} repeats",
            "header": ["Metric", "Unit", "Typical", "CV", "Min", "Max"],
            "align": ["l", "l", "r", "r", "r", "r"],
            "rows": [
                [
                    f"{code(r.metric)} {arrow(r.direction)}".rstrip(),
                    unit(r.metric) or "—",
                    fmt_value(r.current_spread.center if r.current_spread else None),
                    f"{r.current_spread.cv_pct:.1f}%"
                    if r.current_spread and r.current_spread.cv_pct is not None
                    else "—",
                    fmt_value(r.current_spread.low if r.current_spread else None),
                    fmt_value(r.current_spread.high if r.current_spread else None),
                ]
                for r in t.rows
            ],
        }
        for t in tests
        if t.rows
    ]


def _axis_top(values: list[float]) -> str:
    """A round number a little above the largest value, so the y-axis runs from 0 to it."""
    top = max([v for v in values if v > 0], default=1.0) * 1.1
    digits = len(f"{int(top)}") - 2
    step = 10 ** max(digits, 0) if top >= 10 else 0.1
    return f"{(int(top / step) + 1) * step:g}"


def charts(series: list[ChartSeries], comparison: Comparison | None) -> list[dict[str, Any]]:
    """Each key metric across load levels; the current line is red when it regressed, green when it
    improved (by the gate's verdicts), else blue; the baseline is grey."""
    result = []
    for s in series:
        x_label = "concurrency" if s.kind == "concurrency" else "request rate (req/s)"
        direction = "lower" if s.metric.endswith("_ms") else "higher"
        rows = (
            []
            if comparison is None
            else [
                r
                for t in comparison.tests
                if (t.key.base, t.key.kind) == (s.family, s.kind)
                for r in t.rows
                if r.metric == s.metric
            ]
        )
        verdicts = {r.verdict for r in rows}
        colour = WORSE if Verdict.REGRESSION in verdicts else BETTER if Verdict.IMPROVEMENT in verdicts else NEUTRAL
        colour_word = {WORSE: "red", BETTER: "green", NEUTRAL: "blue"}[colour]
        y_label = f"{metric_name(s.metric)} ({unit(s.metric)})" if unit(s.metric) else metric_name(s.metric)
        lines = [("this run", s.current)] if s.baseline is None else [("baseline", s.baseline), ("this run", s.current)]
        palette = [colour] if s.baseline is None else [BASELINE_COLOUR, colour]
        result.append(
            {
                "init": (
                    '{"xyChart": {"height": %d, "width": 700}, "themeVariables": {"xyChart": {"plotColorPalette": "%s"}}}'
                    % (CHART_HEIGHT, ", ".join(palette))
                ),
                "title": chart_text(f"{s.family}: {y_label}, {direction} is better"),
                "x_label": x_label,
                "categories": ", ".join(f'"{level:g}"' for level in s.levels),
                "y_label": chart_text(y_label),
                "y_top": _axis_top([v for _, line in lines for v in line]),
                "lines": [(name, ", ".join(f"{v:.4g}" for v in line)) for name, line in lines],
                "legend": (
                    f"Lines: **grey** baseline, **{colour_word}** this run."
                    if s.baseline is not None
                    else f"Line: **{colour_word}** this run."
                ),
            }
        )
    return result


def _capacity_colour(comparison: Comparison, test: str) -> str:
    verdicts = {r.verdict for r in comparison.rows if r.test == test and r.metric == "capacity"}
    return WORSE if Verdict.REGRESSION in verdicts else BETTER if Verdict.IMPROVEMENT in verdicts else NEUTRAL


def curves(comparison: Comparison) -> list[dict[str, Any]]:
    """Each capacity test's curve, baseline beside this run (one chart per side, as the two searches
    probe different loads, on one y-axis): the drawn SLO goal at each probed load, a flat SLO line,
    the capacity's load starred; and under each chart its probes, one row per load."""
    result = []
    for curve in comparison.curves:
        if curve.limit is None:
            continue
        limit = dict(curve.slo)[curve.limit]
        same_test = [c for c in comparison.curves if c.test == curve.test and c.limit == curve.limit]
        measured = [v for c in same_test for p in c.points if (v := getattr(p, curve.limit)) is not None]
        highest = max([*measured, limit])
        # A far miss is drawn at the top, 4× the SLO, so the SLO line stays readable.
        top = 4 * limit if highest > 4 * limit else float(_axis_top([highest]))
        values = [getattr(p, curve.limit) for p in curve.points]
        drawn = [top if v is None else min(v, top) for v in values]
        cut = any(v is None or v > top for v in values)
        baseline = curve.side == "baseline"
        colour = BASELINE_COLOUR if baseline else _capacity_colour(comparison, curve.test)
        side = "baseline" if baseline else "this run"
        whose = "the baseline" if baseline else "this run"
        name = metric_name(curve.limit)
        load_unit = curve_unit(curve.over)
        categories = [f"{p.load:g}" + (" ★" if p.load == curve.held else "") for p in curve.points]
        colour_word = {BASELINE_COLOUR: "grey", WORSE: "red", BETTER: "green", NEUTRAL: "blue"}[colour]
        star = (
            f"; ★ the capacity, {fmt_value(curve.held)} {load_unit}"
            if curve.held is not None and curve.bound == 0
            else f"; ★ the SLO held even at max, {fmt_value(curve.held)} {load_unit}"
            if curve.held is not None
            else ""
        )
        above = f" (a level above {fmt_value(top)} ms, or with none measured, is drawn at the top)" if cut else ""
        result.append(
            {
                "chart": {
                    "init": (
                        '{"xyChart": {"height": %d, "width": 700}, "themeVariables": {"xyChart": {"plotColorPalette": "%s"}}}'
                        % (CHART_HEIGHT, ", ".join([colour, SLO_COLOUR]))
                    ),
                    "title": chart_text(f"{curve.test}, {side} (run {curve.run_number}): {name} against load"),
                    "x_label": "concurrency (streams)" if curve.over == "concurrency" else "request rate (req/s)",
                    "categories": ", ".join(f'"{c}"' for c in categories),
                    "y_label": chart_text(f"{name} (ms)"),
                    "y_top": f"{top:g}",
                    "lines": [
                        (side, ", ".join(f"{v:.4g}" for v in drawn)),
                        ("SLO", ", ".join(f"{limit:.4g}" for _ in drawn)),
                    ],
                    "legend": (
                        f"Lines: **{colour_word}** {name} of {whose} at each probed load, **amber** the SLO "
                        f"({fmt_value(limit)} ms){star}{above}."
                    ),
                },
                "table": {
                    "header": [
                        "streams" if curve.over == "concurrency" else "offered req/s",
                        "served req/s",
                        "p99 TTFT ms",
                        "p99 TPOT ms",
                        "SLO met",
                    ],
                    "align": ["l", "r", "r", "r", "c"],
                    "rows": [
                        [
                            f"{p.load:g}" + (f" ({p.probes}×)" if p.probes > 1 else ""),
                            fmt_value(p.request_throughput),
                            fmt_value(p.p99_ttft_ms),
                            fmt_value(p.p99_tpot_ms),
                            "✓" if p.meets_slo else "✗",
                        ]
                        for p in curve.points
                    ],
                },
            }
        )
    return result
