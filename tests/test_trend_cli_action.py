"""`kitt ci trend` through the real CLI (exit codes 0, 1, 2), and the action's trend section on a
push to the base branch: the history comes from the GitHub REST double, this job is appended, and
a new change point that made serving slower becomes a warning naming its commit."""

from __future__ import annotations

import json

import pytest

import trend_sim
from github_double.fixtures import github_contract, github_double  # noqa: F401  (the GitHub REST double)
from support import run_kitt


def _history_dir(tmp_path, jobs=12, steps=None, seed=3):
    sets = trend_sim.history(jobs, steps=steps or {}, seed=seed)
    for number, result_set in enumerate(reversed(sets), start=1):
        trend_sim.write(result_set, tmp_path / "history" / f"{number:02d}-run{500 + number}")
    return tmp_path / "history", sets


def test_cli_writes_markdown_and_json(tmp_path):
    history, sets = _history_dir(tmp_path, steps={6: 1.15})
    done = run_kitt(
        "ci",
        "trend",
        "--history-dir",
        str(history),
        "--json",
        str(tmp_path / "cp.json"),
        "--output",
        str(tmp_path / "trend.md"),
    )
    assert done.returncode == 0, done.stderr
    points = json.loads((tmp_path / "cp.json").read_text())
    assert (
        points and {p["index"] for p in points} == {6} and {p["commit"] for p in points} == {sets[6].config["commit"]}
    )
    assert all(p["direction"] == "slower" and p["p_value"] <= 0.05 for p in points)
    assert (tmp_path / "trend.md").read_text().startswith("## 📉 kitt trend: 18 change points in the last 12 jobs")
    printed = run_kitt("ci", "trend", "--history-dir", str(history))
    assert printed.returncode == 0 and printed.stdout == (tmp_path / "trend.md").read_text()


def test_cli_usage_error_is_exit_2(tmp_path):
    done = run_kitt("ci", "trend")
    assert done.returncode == 2 and "--history-dir" in done.stderr


def test_cli_unreadable_history_is_exit_1_with_one_line(tmp_path):
    history, _ = _history_dir(tmp_path, jobs=6)
    (history / "02-run502" / "metrics.json").write_text("{truncated")
    done = run_kitt("ci", "trend", "--history-dir", str(history))
    errors = [line for line in done.stderr.splitlines() if line.startswith("kitt: error: ")]
    assert done.returncode == 1 and len(errors) == 1 and "02-run502" in errors[0] and "not valid JSON" in errors[0]
    missing = run_kitt("ci", "trend", "--history-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def _push_env(tmp_path, double, sha, branch="main"):
    output, summary, event = tmp_path / "output", tmp_path / "summary", tmp_path / "event.json"
    output.touch()
    summary.touch()
    event.write_text(
        json.dumps({"ref": f"refs/heads/{branch}", "after": sha, "repository": {"default_branch": "main"}})
    )
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": double.repo.full_name,
        "GITHUB_API_URL": double.api_url,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_SHA": sha,
        "GITHUB_REF_NAME": branch,
        "GITHUB_OUTPUT": str(output),
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(summary),
        "KITT_ACTION_FLAVOUR": "composite",
        "INPUT_MODEL": "sim-model",
        "INPUT_ENGINE": "sim",
        "INPUT_GITHUB-TOKEN": double.token,
        "INPUT_RESULTS-DIR": str(tmp_path / "results"),
        "INPUT_BASELINE-ARTIFACT": "kitt-results",
        "INPUT_BASELINE-HISTORY": "20",
        "INPUT_COMMENT": "never",
        "INPUT_FAIL-ON-REGRESSION": "false",
        "INPUT_UPLOAD-ARTIFACT": "false",
    }, summary


def _stage(tmp_path, double, monkeypatch, sets, sha):
    """The base branch's earlier jobs as artifacts; this job's benchmark writes the newest one."""
    for number, result_set in enumerate(sets[:-1]):
        folder = trend_sim.write(result_set, tmp_path / "artifacts" / str(number))
        double.add_artifact(
            "kitt-results",
            {
                "metrics.json": (folder / "metrics.json").read_bytes(),
                "config.json": (folder / "config.json").read_bytes(),
            },
        )
    seen = {}

    def benchmark(
        config, reporter, history=None
    ):  # the engine is not what is under test here; the sim run has its own tests
        seen["commit"], seen["branch"] = config.commit, config.branch
        trend_sim.write(sets[-1], config.output)

    monkeypatch.setattr("kitt.action.run_benchmark", benchmark)
    return seen


def test_push_adds_the_trend_and_warns_about_a_new_slowdown(tmp_path, github_double, monkeypatch, capsys):
    from kitt.action import main

    sets = trend_sim.history(12, steps={9: 1.12}, seed=3)
    seen = _stage(tmp_path, github_double, monkeypatch, sets, "f" * 40)
    env, summary = _push_env(tmp_path, github_double, "f" * 40)
    assert main(env) == 0
    assert seen == {"commit": "f" * 40, "branch": "main"}  # what config.json will record
    text = summary.read_text()
    assert "## 📉 kitt trend: 18 change points in the last 12 jobs" in text
    assert "**New in this job's history**" in text and "```mermaid\n%%{init:" in text and "\nxychart-beta\n" in text
    warnings = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("::warning") and "kitt trend" in line
    ]
    assert len(warnings) == 1 and "commit 09c0ffe" in warnings[0] and "slower" in warnings[0]


@pytest.mark.parametrize("event, branch", [("pull_request", "main"), ("push", "feature")])
def test_no_trend_on_a_pull_request_or_a_push_to_another_branch(
    tmp_path, github_double, monkeypatch, capsys, event, branch
):
    from kitt.action import main

    sets = trend_sim.history(8, steps={5: 1.12}, seed=3)
    _stage(tmp_path, github_double, monkeypatch, sets, "e" * 40)
    env, summary = _push_env(tmp_path, github_double, "e" * 40, branch)
    env["GITHUB_EVENT_NAME"] = event
    assert main(env) == 0
    text = summary.read_text()
    assert "kitt" in text and "kitt trend" not in text and "kitt trend" not in capsys.readouterr().out
