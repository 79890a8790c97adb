"""Issue 30: result files are validated where they enter (duplicate repeats, booleans from strings,
zeros where no measurement gives zero), and a run never destroys an earlier result set."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kitt import cli
from kitt import results as rs


def document(results: list[dict[str, Any]] | None = None, **top: Any) -> dict[str, Any]:
    metrics = {
        "median_ttft_ms": 40.0,
        "p99_ttft_ms": 60.0,
        "median_e2el_ms": 300.0,
        "median_itl_ms": 8.0,
        "output_throughput": 900.0,
        "completed": 8.0,
        "failed": 0.0,
    }
    base = {
        "schema_version": 1,
        "suite_name": "s",
        "timestamp": "2026-05-01T10:00:00Z",
        "engine": "sim",
        "model": "m",
        "passed": True,
        "results": results
        if results is not None
        else [
            {"test_name": f"t-c{c}", "run_number": n, "passed": True, "metrics": dict(metrics)}
            for c in (1, 4)
            for n in (1, 2, 3)
        ],
    }
    base.update(top)
    return base


def write(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(doc))
    return folder


def report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("kitt: error:")]
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------- duplicate repeats


def _duplicated(how: str) -> dict[str, Any]:
    doc = document()
    first = doc["results"][0]
    if how == "one repeat five times":
        doc["results"] = [copy.deepcopy(first) for _ in range(5)]
    elif how == "a repeat copied at the end":
        doc["results"].append(copy.deepcopy(doc["results"][2]))
    elif how == "same number, other values":
        twin = copy.deepcopy(doc["results"][4])
        twin["metrics"]["median_ttft_ms"] = 99.0
        doc["results"].insert(0, twin)
    elif how == "default run number twice":  # run_number absent means 1
        doc["results"] = [
            {"test_name": "x", "passed": True, "metrics": {"median_ttft_ms": 5.0}},
            {"test_name": "x", "run_number": 1, "passed": True, "metrics": {"median_ttft_ms": 6.0}},
        ]
    return doc


@pytest.mark.parametrize(
    "how",
    ["one repeat five times", "a repeat copied at the end", "same number, other values", "default run number twice"],
)
@pytest.mark.parametrize("side", ["current", "baseline"])
def test_duplicate_repeats_are_refused(tmp_path: Path, how: str, side: str, capsys) -> None:
    bad = write(tmp_path / side, _duplicated(how))
    good = write(tmp_path / ("baseline" if side == "current" else "current"), document())
    current, baseline = (bad, good) if side == "current" else (good, bad)
    code, out, err = report(
        [
            "ci",
            "report",
            "--results-dir",
            str(current),
            "--baseline-dir",
            str(baseline),
            "--output",
            str(tmp_path / "r.md"),
        ],
        capsys,
    )
    line = error_line(err)
    assert code == 1 and "repeats" in line and "run " in line and "rerun" in line
    assert not (tmp_path / "r.md").exists()  # nothing passed on a faked repeat


def test_distinct_repeats_still_load(tmp_path: Path) -> None:
    loaded = rs.load_result_set(write(tmp_path, document()))
    assert len(loaded.results) == 6


# --------------------------------------------------------------------------- booleans


@pytest.mark.parametrize("value", ["false", "true", "False", "no", 0, 1, None, [], {"x": 1}, "0"])
@pytest.mark.parametrize("where", ["result", "top"])
def test_booleans_are_json_booleans(tmp_path: Path, value: Any, where: str, capsys) -> None:
    doc = document()
    if where == "result":
        doc["results"][0]["passed"] = value
    else:
        doc["passed"] = value
    write(tmp_path / "current", doc)
    code, _, err = report(
        ["ci", "report", "--results-dir", str(tmp_path / "current"), "--output", str(tmp_path / "r.md")], capsys
    )
    line = error_line(err)
    assert code == 1 and "passed must be true or false" in line


# --------------------------------------------------------------------------- zeros


@pytest.mark.parametrize("metric", ["median_ttft_ms", "p99_ttft_ms", "mean_e2el_ms", "median_e2el_ms", "p90_ttft_ms"])
@pytest.mark.parametrize("side", ["current", "baseline"])
def test_a_zero_latency_is_no_measurement(tmp_path: Path, metric: str, side: str, capsys) -> None:
    """A zero TTFT or E2E latency never makes an infinite regression (baseline) nor a -100%
    improvement (current): the value is dropped and its repeat fails."""
    zeroed = document()
    for result in zeroed["results"]:
        result["metrics"][metric] = 0.0
    write(tmp_path / side, zeroed)
    write(tmp_path / ("baseline" if side == "current" else "current"), document())
    code, out, err = report(
        [
            "ci",
            "report",
            "--results-dir",
            str(tmp_path / "current"),
            "--baseline-dir",
            str(tmp_path / "baseline"),
            "--fail-on-regression",
            "--output",
            str(tmp_path / "r.md"),
        ],
        capsys,
    )
    text = (tmp_path / "r.md").read_text()
    assert "∞" not in text and "inf%" not in text.lower() and "-100" not in text
    loaded = rs.load_result_set(tmp_path / side)
    assert all(r.metrics[metric] is None and not r.passed and metric in r.errors[0] for r in loaded.results)
    if side == "current":
        assert code == 1  # a failed repeat fails the gate


@pytest.mark.parametrize("metric", ["median_itl_ms", "median_tpot_ms", "failed", "p99_itl_ms"])
def test_a_zero_that_can_be_measured_is_kept(tmp_path: Path, metric: str) -> None:
    doc = document()
    doc["results"][0]["metrics"][metric] = 0.0
    loaded = rs.load_result_set(write(tmp_path, doc))
    assert loaded.results[0].metrics[metric] == 0.0 and loaded.results[0].passed


# --------------------------------------------------------------------------- installing a result set


def _result_set(folder: Path, marker: str) -> None:
    write(folder, document(model=marker))
    (folder / "samples.jsonl").write_text('{"marker": "%s"}\n' % marker)


@pytest.mark.parametrize("layout", ["plain", "ab", "extra files"])
def test_a_failed_run_keeps_the_earlier_result_set(tmp_path: Path, layout: str) -> None:
    out = tmp_path / "out"
    _result_set(out / "candidate" if layout == "ab" else out, "good")
    if layout == "extra files":
        (out / "pull_request.json").write_text("{}")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    stage = rs.staging_dir(out, "r1")
    _result_set(stage, "failed")
    where = rs.install_result_set(stage, out, keep_earlier=True)
    assert where == tmp_path / "out.failed-r1" and json.loads((where / "metrics.json").read_text())["model"] == "failed"
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not stage.exists()


@pytest.mark.parametrize("earlier", ["plain", "ab", "none", "empty folder"])
def test_a_finished_run_replaces_the_earlier_result_set_whole(tmp_path: Path, earlier: str) -> None:
    out = tmp_path / "out"
    if earlier == "plain":
        _result_set(out, "old")
        (out / "engine.log").write_text("old log")
    elif earlier == "ab":
        _result_set(out / "baseline", "old")
        _result_set(out / "candidate", "old")
    elif earlier == "empty folder":
        out.mkdir()
    (tmp_path / "keep").mkdir()
    stage = rs.staging_dir(out, "r2")
    _result_set(stage, "new")
    assert rs.install_result_set(stage, out, keep_earlier=False) == out.absolute()
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "samples.jsonl"]  # no old file mixed in
    assert json.loads((out / "metrics.json").read_text())["model"] == "new" and not stage.exists()


def test_staging_falls_back_inside_when_the_parent_is_not_writable(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    real_mkdir = Path.mkdir

    def refuse_beside(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name.startswith(".out.kitt-"):
            raise PermissionError(13, "Permission denied")
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse_beside)
    stage = rs.staging_dir(out, "r3")
    assert stage.parent == out.absolute()
    _result_set(stage, "new")
    monkeypatch.undo()
    assert rs.install_result_set(stage, out, keep_earlier=False) == out.absolute()
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "samples.jsonl"]
