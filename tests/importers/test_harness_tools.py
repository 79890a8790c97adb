"""The real tools, run live against kitt's sim server: A/A passes, a slower server regresses.

Marked ``harness`` (``pytest -m harness``); part of every run of the suite. ``vllm bench serve``
runs in the vLLM CPU venv the suite builds anyway; GuideLLM 0.8.1 and AIPerf 0.13.0 in venvs of
their own that ``scripts/test`` builds once into the test cache (harness_tools.py). Each tool
runs three repeats per side. GuideLLM starts once per repeat (about 25 s here); AIPerf starts once
per side and makes its repeats itself (``--num-profile-runs``, about 70 s for three), so that
layout (``profile_runs/run_NNNN/`` beside an ``aggregate/`` file kitt leaves alone) is read live,
and the committed fixtures cover one start per repeat.

The live slower side is twice as slow: with three repeats a side, a 30% slowdown was once left
inconclusive on a busy machine (p = 0.012 against 0.01 after Holm), and this test is about the
files, not the gate's power. The committed fixtures (fixtures/, made by make_fixtures.py with
the same tools) keep the 30% case, checked by test_importers.py on every run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kitt.ci import ReportOptions, build_report
from kitt.importers import load_results

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures  # noqa: E402

pytestmark = pytest.mark.harness

SLOWDOWN = 2.0


def _check(folders: dict[str, Path], slowdown: float) -> None:
    same = build_report(
        ReportOptions(results_dir=folders["same"], baseline_dir=folders["baseline"], fail_on_regression=True)
    )
    assert same.comparison.gating and same.comparison.regressions == [] and same.exit_code == 0, same.markdown
    slower = build_report(
        ReportOptions(results_dir=folders["slower"], baseline_dir=folders["baseline"], fail_on_regression=True)
    )
    assert slower.comparison.verdict == "regression" and slower.exit_code == 1, slower.markdown
    tpot = [r.change_pct for r in slower.comparison.rows if r.metric == "median_tpot_ms"]
    expected = (slowdown - 1) * 100
    # Slowed by `expected` percent on the server, diluted by the client's own overhead.
    assert tpot and all(expected / 3 < change < expected * 1.5 for change in tpot), tpot


@pytest.mark.parametrize(("tool", "multi_run"), [("vllm", False), ("guidellm", False), ("aiperf", True)])
def test_live_files_gate_like_the_committed_ones(tool, multi_run, tmp_path):
    folders = make_fixtures.make(
        tool, tmp_path, levels=(4,), repeats=3, requests=24, slowdown=SLOWDOWN, multi_run=multi_run
    )
    # Every side: the tool's own files, read as three repeats of the one level.
    for folder in folders.values():
        assert all(json.loads(p.read_text()) for p in folder.rglob("*.json"))
        loaded = load_results(folder)
        assert sorted((r.test_name, r.run_number) for r in loaded.results) == [("concurrency-c4", n) for n in (1, 2, 3)]
    _check(folders, SLOWDOWN)
