"""A/B in one job, end to end on the sim engine: two servers whose speed drifts together.

The sims drift by a wall-clock sine shared by every sim on the host (as two servers on one runner
do). A candidate arm 15% slower is caught; an A/A run under the same drift is not; the bad inputs
the issue names end in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

from support import assert_no_engine_left, assert_one_line_error, clean_environ, run_kitt, unique_model

DRIFT = ["--engine-arg=--drift-pct=10", "--engine-arg=--drift-period-s=20"]
LOAD = [
    "--concurrency",
    "4",
    "--num-requests",
    "8",
    "--repeats",
    "6",
    "--warmup",
    "2",
    "--output-len",
    "16",
    "--seed",
    "7",
]


def ab_run(out: Path, model: str, candidate: list[str], baseline: list[str]) -> None:
    args = ["run", "-m", model, "-e", "sim", "-s", "quick", "-o", str(out), *LOAD, *DRIFT, *candidate]
    args += [f"--baseline-engine-arg={a}" for a in DRIFT_ARGS + baseline]
    done = run_kitt(*args, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


DRIFT_ARGS = ["--drift-pct=10", "--drift-period-s=20"]


def report(out: Path, tmp: Path, *extra: str) -> tuple[int, str, dict[str, str]]:
    """kitt ci report on an A/B run's folder, as a step would run it: exit code, report, verdict per metric."""
    outputs = tmp / "outputs"
    outputs.write_text("")
    done = run_kitt(
        "ci",
        "report",
        "--results-dir",
        str(out),
        "--fail-on-regression",
        "--output",
        str(tmp / "report.md"),
        *extra,
        env=clean_environ(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(outputs)),
    )
    lines = outputs.read_text().splitlines()
    key = json.loads(lines[lines.index(next(l for l in lines if l.startswith("metrics<<"))) + 1])
    verdicts = {f"{test}:{metric}": row["verdict"] for test, rows in key.items() for metric, row in rows.items()}
    return done.returncode, (tmp / "report.md").read_text(), verdicts


def test_a_slower_candidate_is_caught_and_an_a_a_run_is_not(tmp_path: Path) -> None:
    model = unique_model()
    slower = tmp_path / "ab"
    ab_run(slower, model, ["--engine-arg=--slowdown=1.15"], [])
    for arm in ("baseline", "candidate"):
        config = json.loads((slower / arm / "config.json").read_text())
        assert config["ab"]["arm"] == arm and config["ab"]["schedule"] == "interleaved"
        positions = config["ab"]["positions"]["latency-c4"]
        assert len(positions) == 6 and sorted(positions) == [0, 0, 0, 1, 1, 1]  # balanced
        assert (slower / arm / "metrics.json").is_file() and (slower / arm / "summary.md").is_file()
    code, text, verdicts = report(slower, tmp_path)
    assert code == 1 and "A/B in one job (interleaved)" in text
    for test in ("latency-c4", "throughput-c4"):
        assert verdicts[f"{test}:median_tpot_ms"] == verdicts[f"{test}:median_e2el_ms"] == "regression", verdicts

    same = tmp_path / "aa"
    ab_run(same, model, [], [])
    code, text, verdicts = report(same, tmp_path)
    assert code == 0 and "regression" not in verdicts.values(), text[:3000]
    assert "The arms are identical (an A/A run)" in text
    assert_no_engine_left(model)


def test_ab_flags_an_engine_cannot_take_are_usage_errors(tmp_path: Path) -> None:
    model = unique_model()
    base = ["run", "-m", model, "-e", "sim", "-s", "quick", "-o", str(tmp_path / "r")]
    done = run_kitt(*base, "--baseline-engine-image", "vllm/vllm-openai:v0.9.0")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--baseline-engine-image needs Docker mode")
    done = run_kitt(*base, "--baseline-endpoint", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--baseline-endpoint needs -e openai")
    assert not (tmp_path / "r").exists()  # refused before anything started


def test_an_arm_that_never_gets_ready_is_named_and_both_are_torn_down(tmp_path: Path) -> None:
    model = unique_model()
    done = run_kitt(
        "run",
        "-m",
        model,
        "-e",
        "sim",
        "-s",
        "quick",
        "-o",
        str(tmp_path / "r"),
        *LOAD,
        "--baseline-engine-arg=--never-ready",
        "--ready-timeout",
        "3",
        timeout=120,
    )
    assert done.returncode == 1
    assert_one_line_error(done.stderr, "the baseline arm")
    assert_no_engine_left(model)


def test_blocks_run_the_arms_one_at_a_time_in_abba_order(tmp_path: Path) -> None:
    model = unique_model()
    out = tmp_path / "blocks"
    done = run_kitt(
        "run",
        "-m",
        model,
        "-e",
        "sim",
        "-s",
        "quick",
        "-o",
        str(out),
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--repeats",
        "4",
        "--warmup",
        "1",
        "--output-len",
        "8",
        "--ab-schedule",
        "blocks",
        "--engine-arg=--slowdown=1.2",
        "--baseline-engine-arg=--slowdown=1",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Three start-ups: baseline, candidate (both halves without a restart), baseline again.
    starts = [line for line in done.stderr.splitlines() + done.stdout.splitlines() if "is ready at" in line]
    assert [("baseline" in line, "candidate" in line) for line in starts] == [
        (True, False),
        (False, True),
        (True, False),
    ]
    for arm, first_half in (("baseline", 0), ("candidate", 1)):
        config = json.loads((out / arm / "config.json").read_text())
        assert config["ab"]["schedule"] == "blocks"
        assert config["ab"]["positions"]["latency-c2"] == [first_half, first_half, 1 - first_half, 1 - first_half]
    code, text, verdicts = report(out, tmp_path)
    assert code == 1 and verdicts["latency-c2:median_tpot_ms"] == "regression"
    assert "A/B in one job (blocks)" in text
    assert_no_engine_left(model)
    done = run_kitt("run", "-m", model, "-e", "sim", "-o", str(tmp_path / "x"), "--ab-schedule", "blocks")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--ab-schedule blocks needs an A/B run")
