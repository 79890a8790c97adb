"""The golden reports rendered as GitHub renders a comment, in headless Chromium at 900 px.

Asserts what a reviewer would notice: every mermaid chart renders (no syntax error) at most
~320 px high in the fixed palette, no table is wider than the comment's column, and the
headline is the first visible line. Screenshots go under the test's tmp folder and, when
``KITT_TEST_ARTIFACTS`` is set, are copied there (CI keeps them). ``KITT_UPDATE_SCREENSHOTS=1``
refreshes the ones in docs/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from browser import harness

pytestmark = pytest.mark.browser

GOLDEN = Path(__file__).parents[1] / "report" / "golden"
DOCS = Path(__file__).parents[2] / "docs" / "comment"
REPORTS = sorted(p.stem for p in GOLDEN.glob("*.md"))
PALETTE = {"#8c959f", "#cf222e", "#2da44e", "#218bff"}


@pytest.fixture(scope="session")
def browser() -> tuple[str, Path]:
    chromium = harness.find_chromium()
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (`apt-get install chromium`; .ci/run installs it)")
    return chromium, harness.ensure_packages()


def keep(shot: Path) -> None:
    target = os.environ.get("KITT_TEST_ARTIFACTS")
    if target:
        Path(target, "screenshots").mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(target, "screenshots", shot.name))
    if os.environ.get("KITT_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, DOCS / shot.name)


def headline_of(markdown: str) -> str:
    heading = next(line for line in markdown.splitlines() if line.startswith("## "))
    return heading[3:].replace("`", "").strip()


@pytest.mark.parametrize("name", REPORTS)
def test_golden_report_reads_well_at_a_comments_width(name: str, browser: tuple[str, Path], tmp_path: Path) -> None:
    chromium, modules = browser
    markdown = (GOLDEN / f"{name}.md").read_text(encoding="utf-8")
    rendered = harness.render(
        markdown, tmp_path, name, shot_open=name == "regression", chromium=chromium, modules=modules
    )
    keep(rendered.screenshot)
    measured = rendered.measured

    # What a reviewer sees first: the headline, as the first visible line.
    assert measured["first_tag"] == "H2", measured
    assert measured["first_visible"] == headline_of(markdown)

    assert measured["errors"] == [], measured["errors"]
    assert len(measured["charts"]) == markdown.count("```mermaid")
    for chart in measured["charts"]:
        assert 0 < chart["height"] <= 330 and chart["width"] <= harness.COMMENT_WIDTH, chart
        lines = set(chart["strokes"]) & PALETTE
        assert lines, chart["strokes"]  # drawn in the fixed palette
    grey = sum(1 for chart in measured["charts"] if "#8c959f" in chart["strokes"])
    assert grey == markdown.count('line "baseline"')  # each baseline is the grey line
    assert measured["column"] <= harness.COMMENT_WIDTH
    assert measured["tables"], "no table rendered"
    for table in measured["tables"]:
        assert table["scroll"] <= table["client"] <= harness.COMMENT_WIDTH, table  # no sideways scrolling


def test_the_regression_report_also_reads_in_the_dark_theme(browser: tuple[str, Path], tmp_path: Path) -> None:
    chromium, modules = browser
    markdown = (GOLDEN / "regression.md").read_text(encoding="utf-8")
    dark = harness.render(
        markdown, tmp_path, "regression-dark", shot_open=True, dark=True, chromium=chromium, modules=modules
    )
    keep(dark.screenshot)
    assert dark.measured["errors"] == [] and dark.measured["charts"]
    assert all("#8c959f" in chart["strokes"] for chart in dark.measured["charts"])
