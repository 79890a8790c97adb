"""The trend's mermaid charts parse with the real mermaid package (and broken ones do not)."""

from __future__ import annotations

import shutil

import pytest

import trend_sim
from kitt.report.trend import history_chart, render_trend
from kitt.trend import trend_with_newest
from mermaid_parse import mermaid_blocks, parse

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are not installed: the mermaid package cannot run",
)


def test_every_trend_chart_parses_as_an_xychart():
    update = trend_with_newest(trend_sim.history(12, steps={9: 1.12}, seed=3))
    text = render_trend(update.trend, new=update.new)
    text += history_chart("output_throughput", "higher", [700.0, 710.0, 690.0], 640.0)
    blocks = mermaid_blocks(text)
    assert len(blocks) == 3
    results = parse(blocks + ['xychart-beta\n    x-axis "x" ["1", "2"\n    line [1, 2]'])
    assert results[:3] == [{"ok": True, "type": "xychart"}] * 3, results
    assert results[3]["ok"] is False
