"""The trend section (change points and mermaid charts) against a golden file, and every chart it
draws against a strict grammar of mermaid's xychart-beta.

The grammar below follows mermaid's xychart documentation and its Jison grammar
(packages/mermaid/src/diagrams/xychart/parser/xychart.jison): one ``xychart-beta`` header, an
optional quoted ``title``, an ``x-axis`` with a quoted title and a bracketed list of quoted
categories, a ``y-axis`` with a quoted title and a ``min --> max`` range, then ``bar``/``line``
series of numbers, each as long as the category list. A real parse by the mermaid package needs a
DOM; tests/report/test_trend_mermaid.py does that (tests/mermaid_parse.py, jsdom) where node and the package are present.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import support
import trend_sim
from mermaid_parse import mermaid_blocks
from kitt.report.trend import history_chart, render_trend, warning_lines
from kitt.trend import trend_with_newest

GOLDEN = Path(__file__).parent / "golden"

_QUOTED = r'"[^"\n\[\]]*"'
_NUMBER = r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?"
_LIST = rf"{_NUMBER}(?:, {_NUMBER})*"


def check_golden(name: str, text: str) -> None:
    support.check_golden(GOLDEN / name, text)


def check_xychart(block: str) -> None:
    """Raise AssertionError unless ``block`` is a well-formed xychart-beta with y from 0."""
    lines = block.rstrip("\n").split("\n")
    if lines[0].startswith("%%{init:"):  # the comment's chart height and palette, as JSON
        config = json.loads(lines[0].removeprefix("%%{init:").removesuffix("}%%").strip())
        assert config["xyChart"]["height"] <= 320 and config["themeVariables"]["xyChart"]["plotColorPalette"]
        lines = lines[1:]
    assert lines[0] == "xychart-beta", lines[0]
    rest = lines[1:]
    assert re.fullmatch(rf"    title {_QUOTED}", rest[0]), rest[0]
    axis = re.fullmatch(rf"    x-axis {_QUOTED} \[({_QUOTED}(?:, {_QUOTED})*)\]", rest[1])
    assert axis, rest[1]
    categories = re.findall(_QUOTED, axis.group(1))
    y_axis = re.fullmatch(rf"    y-axis {_QUOTED} ({_NUMBER}) --> ({_NUMBER})", rest[2])
    assert y_axis and float(y_axis.group(1)) == 0 and float(y_axis.group(2)) > 0, rest[2]
    series = rest[3:]
    assert series, "no data series"
    for line in series:
        match = re.fullmatch(rf"    (bar|line)(?: {_QUOTED})? \[({_LIST})\]", line)
        assert match, line
        values = [float(v) for v in match.group(2).split(", ")]
        assert len(values) == len(categories), (len(values), len(categories))
        assert all(0 <= v <= float(y_axis.group(2)) for v in values), "a value is off the y-axis"


def _update():
    sets = trend_sim.history(12, steps={9: 1.12}, seed=3)
    return trend_with_newest(sets)


def test_trend_summary_matches_golden():
    update = _update()
    text = render_trend(update.trend, new=update.new)
    check_golden("trend.md", text)
    assert text.startswith("## 📉 kitt trend: ")
    assert (
        "**New in this job's history**" in text
        and "commit `09c0ffe` (job 10 of 12" in text
        and "18 series got **slower**" in text
    )
    blocks = mermaid_blocks(text)
    assert len(blocks) == 2 and "(higher is better)" in blocks[0] and "(lower is better)" in blocks[1]
    for block in blocks:
        check_xychart(block)
    assert "Lines: **blue** concurrency 1, **purple** concurrency 8." in text


def test_flat_trend_says_so():
    trend = trend_with_newest(trend_sim.history(10, seed=4)).trend
    text = render_trend(trend, new=[])
    assert "no change points in the last 10 jobs" in text and "None." in text


def test_one_warning_per_commit_that_made_serving_slower():
    update = _update()
    lines = warning_lines(update.new, update.trend)
    assert len(lines) == 1 and "commit 09c0ffe" in lines[0] and "slower" in lines[0] and "more" in lines[0]
    assert warning_lines([c for c in update.new if c.direction == "faster"], update.trend) == []


def test_pr_history_chart_is_valid_and_ends_with_the_pr():
    text = history_chart("median_e2el_ms", "lower", [1000.0, 1010.0, 990.0, 1005.0], 1100.0)
    (block,) = mermaid_blocks(text)
    check_xychart(block)
    assert '"PR"]' in block and "bar [1000, 1010, 990, 1005, 1100]" in block and 'line "baseline" [1002, 1002' in block


@pytest.mark.parametrize(
    "bad",
    [
        'xychart-beta\n    title "t"\n    x-axis "x" ["1", "2"]\n    y-axis "y" 5 --> 10\n    line [1, 2]',
        'xychart-beta\n    title "t"\n    x-axis "x" ["1", "2"]\n    y-axis "y" 0 --> 10\n    line [1, 2, 3]',
        'xychart-beta\n    title "a "quoted" t"\n    x-axis "x" ["1"]\n    y-axis "y" 0 --> 10\n    line [1]',
        'xychart\n    title "t"\n    x-axis "x" ["1"]\n    y-axis "y" 0 --> 10\n    line [1]',
    ],
)
def test_the_grammar_check_rejects_broken_charts(bad):
    with pytest.raises(AssertionError):
        check_xychart(bad)
