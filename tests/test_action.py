"""kitt.action: reading inputs as both flavours pass them, and failing on bad ones with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kitt.ci import compact_metrics
from kitt.action_inputs import ActionInputs, artifact_name_for, derive_comment_key, read_input
from kitt.errors import UsageError
from github_double.fixtures import github_contract, github_double  # noqa: F401  (the GitHub REST double)
from support import REPO, clean_environ


def test_inputs_with_hyphens_or_underscores():
    assert read_input({"INPUT_BASELINE-ARTIFACT": " a "}, "baseline-artifact") == "a"
    assert read_input({"INPUT_BASELINE_ARTIFACT": "b"}, "baseline-artifact") == "b"
    assert read_input({}, "baseline-artifact", "x") == "x"


def test_defaults_and_derived_names():
    inputs = ActionInputs.from_environment(
        {"INPUT_MODEL": "meta-llama/Llama-3.1-8B", "INPUT_ENGINE-ARGS": "--a=1\n\n --b \n"}
    )
    assert inputs.mode == "benchmark" and inputs.engine == "vllm" and inputs.suite == "quick"
    assert inputs.comment_key == "vllm/Llama-3.1-8B/quick"
    assert inputs.artifact_name == "kitt-results-vllm-Llama-3.1-8B-quick"
    assert inputs.engine_args == ("--a=1", "--b")
    assert inputs.fail_on_regression is True and inputs.upload_artifact is True and inputs.pr is None
    report = ActionInputs.from_environment({"INPUT_MODE": "report", "INPUT_RESULTS-ARTIFACT": "kitt-results-a"})
    assert report.comment_key == "kitt-results-a" and report.artifact_name == "kitt-report-kitt-results-a"


def test_derived_names_are_valid():
    key = derive_comment_key("vllm", "/models/my model:v2/", "suites/perf.yaml")
    assert key == "vllm/my-model:v2/perf" and "-->" not in key
    assert artifact_name_for("kitt-results", key) == "kitt-results-vllm-my-model-v2-perf"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"INPUT_MODEL": "m", "INPUT_FAIL-ON-REGRESSION": "yes"}, "'fail-on-regression' must be true or false"),
        ({"INPUT_MODEL": "m", "INPUT_PR": "abc"}, "'pr' must be a positive whole number"),
        ({"INPUT_MODEL": "m", "INPUT_THRESHOLD": "-3"}, "'threshold' must be a number of 0 or more"),
        ({"INPUT_MODEL": "m", "INPUT_COMMENT": "sometimes"}, "'comment' must be one of always, on-regression, never"),
        ({"INPUT_MODEL": "m", "INPUT_MODE": "both"}, "'mode' must be one of benchmark, report"),
        ({}, "input 'model' is required"),
    ],
)
def test_bad_inputs(env, fragment):
    with pytest.raises(UsageError, match=fragment):
        ActionInputs.from_environment(env)


def test_entrypoint_reports_bad_input_as_an_annotation_and_exit_2(tmp_path):
    output = tmp_path / "output"
    output.touch()
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        INPUT_MODEL="m",
        INPUT_REPEATS="0",
        **{"INPUT_GITHUB-TOKEN": "ghs_secretvalue123456"},
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "entrypoint.py")], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 2
    assert "::error::input 'repeats' must be a positive whole number" in done.stdout
    assert "ghs_secretvalue123456" not in done.stdout + done.stderr


def test_a_failed_benchmark_never_passes(tmp_path):
    """The engine never gets ready: exit 1, passed=false, and the outputs are still written."""
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.touch()
    summary.touch()
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
        KITT_ACTION_FLAVOUR="composite",
        INPUT_MODEL="m",
        INPUT_ENGINE="openai",
        INPUT_ENDPOINT="http://127.0.0.1:9",
        INPUT_COMMENT="never",
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "entrypoint.py")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::error::openai was not ready" in done.stdout
    text = output.read_text()
    assert "passed<<" in text and "\nfalse\n" in text.split("passed<<", 1)[1]


def test_metrics_output_stays_small_for_huge_sweeps():
    row = {
        "baseline": 1.0,
        "current": 2.0,
        "change_pct": 100.0,
        "ci_pct": [90.0, 110.0],
        "p_value": 0.001,
        "verdict": "regression",
        "threshold_pct": 5.0,
    }
    small = {"t-c1": {"median_ttft_ms": row}}
    assert json.loads(compact_metrics(small)) == small
    huge = {f"sweep-c{i}": {f"m{j}": row for j in range(9)} for i in range(400)}
    out = compact_metrics(huge)
    assert len(out) <= 64 * 1024 and json.loads(out)["sweep-c1"]["m0"] == 2.0


def _report_mode_env(tmp_path, double, conclusion, artifact=True):
    from test_ci import write_run

    if artifact:
        results = write_run(tmp_path / "artifact")
        double.add_artifact(
            "kitt-results",
            {
                "metrics.json": (results / "metrics.json").read_bytes(),
                "hardware.json": (results / "hardware.json").read_bytes(),
            },
            run_id=4242,
        )
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"workflow_run": {"id": 4242, "conclusion": conclusion, "head_sha": "a" * 40}}))
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.touch()
    summary.touch()
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": double.repo.full_name,
        "GITHUB_API_URL": double.api_url,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "workflow_run",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "KITT_ACTION_FLAVOUR": "docker",
        "INPUT_MODE": "report",
        "INPUT_GITHUB-TOKEN": double.token,
        "INPUT_RESULTS-DIR": str(tmp_path / "results"),
        "INPUT_COMMENT": "never",
        "INPUT_UPLOAD-ARTIFACT": "false",
    }
    return env, output


def _outputs(path):
    lines, values = path.read_text().splitlines(), {}
    for index, line in enumerate(lines):
        if "<<" in line:
            values[line.split("<<", 1)[0]] = lines[index + 1]
    return values


@pytest.mark.parametrize("conclusion", ["cancelled", "failure", "timed_out"])
def test_report_mode_fails_closed_when_the_benchmark_run_did_not_succeed(tmp_path, github_double, conclusion, capsys):
    from kitt.action import main

    env, output = _report_mode_env(tmp_path, github_double, conclusion)
    assert main(env) == 1
    values = _outputs(output)
    assert values["passed"] == "false" and values["verdict"] == "incomplete"
    assert f"conclusion is '{conclusion}'" in capsys.readouterr().out


def test_report_mode_passes_a_successful_run(tmp_path, github_double):
    from kitt.action import main

    env, output = _report_mode_env(tmp_path, github_double, "success")
    assert main(env) == 0
    assert _outputs(output)["passed"] == "true" and _outputs(output)["verdict"] == "no baseline"


def test_an_unexpected_exception_never_writes_passed_true(tmp_path, github_double, monkeypatch):
    from kitt import action
    from kitt.action import main

    env, output = _report_mode_env(tmp_path, github_double, "success")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(action, "build_report", broken)
    with pytest.raises(RuntimeError):
        main(env)
    values = _outputs(output)
    assert values["passed"] == "false" and values["verdict"] == "error"


def test_container_cli_and_gpus_inputs():
    inputs = ActionInputs.from_environment({"INPUT_MODEL": "m"})
    assert inputs.container_cli is None and inputs.gpus == "all"
    inputs = ActionInputs.from_environment({"INPUT_MODEL": "m", "INPUT_CONTAINER-CLI": "podman", "INPUT_GPUS": "0, 1"})
    assert inputs.container_cli == "podman" and inputs.gpus == "0,1"
    assert ActionInputs.from_environment({"INPUT_MODEL": "m", "KITT_CONTAINER_CLI": "podman"}).container_cli == "podman"
    with pytest.raises(UsageError, match="'container-cli' must be one of docker, podman"):
        ActionInputs.from_environment({"INPUT_MODEL": "m", "INPUT_CONTAINER_CLI": "nerdctl"})
    with pytest.raises(UsageError, match="'gpus' must be all, none or GPU indexes"):
        ActionInputs.from_environment({"INPUT_MODEL": "m", "INPUT_GPUS": "two"})


def test_report_mode_with_a_pattern_writes_one_comment_for_the_whole_matrix(tmp_path, github_double):
    """results-artifact: kitt-results-* downloads every matching artifact of the run; each job is
    compared with the base branch's artifact of its own name, and one comment covers them all."""
    from datetime import datetime, timedelta, timezone

    from kitt.action import main
    from test_ci import write_run

    double = github_double
    double.add_pull(7, base_ref="main")

    def files(directory):
        found = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
        return {**found, "pull_request.json": json.dumps({"number": 7, "head_sha": "a" * 40})}

    earlier = datetime.now(timezone.utc) - timedelta(hours=1)
    slow = write_run(tmp_path / "jobs" / "a", change={"median_itl_ms": 1.5, "median_tpot_ms": 1.5})
    same = write_run(tmp_path / "jobs" / "b")
    double.add_artifact("kitt-results-vllm", files(slow), run_id=4242)
    double.add_artifact("kitt-results-sglang", files(same), run_id=4242)
    double.add_artifact("coverage", {"x.txt": "not results"}, run_id=4242)
    for name in ("kitt-results-vllm", "kitt-results-sglang"):
        base = write_run(tmp_path / "base" / name, timestamp="2025-04-30T10:00:00.000Z")
        double.add_artifact(name, files(base), head_branch="main", created_at=earlier)
    env, output = _report_mode_env(tmp_path, double, "success", artifact=False)
    env.update(
        {
            "INPUT_RESULTS-ARTIFACT": "kitt-results-*",
            "INPUT_BASELINE-ARTIFACT": "kitt-results-*",
            "INPUT_COMMENT": "always",
            "INPUT_BASELINE-HISTORY": "1",
        }
    )
    assert main(env) == 1  # one job regressed: the gate fails for the whole matrix
    values = _outputs(output)
    assert values["verdict"] == "regression" and values["passed"] == "false"
    (comment,) = double.comments(7)
    body = comment.body
    assert body.startswith("<!-- kitt-benchmark:kitt-results-* -->\n## ❌ 1 of 2 jobs regressed · 1 unchanged\n")
    assert "### kitt-results-vllm: ❌ 2 regressions: median TPOT +50% and median ITL +50%" in body
    assert "### kitt-results-sglang: ✅ No regressions" in body and "coverage" not in body
    assert set(json.loads(values["metrics"])) == {"kitt-results-vllm", "kitt-results-sglang"}


def test_a_pattern_results_artifact_needs_a_pattern_baseline(tmp_path, github_double, capsys):
    from kitt.action import main

    env, _ = _report_mode_env(tmp_path, github_double, "success")
    env.update({"INPUT_RESULTS-ARTIFACT": "kitt-*", "INPUT_BASELINE-ARTIFACT": "kitt-results-main"})
    assert main(env) == 2
    assert "baseline-artifact must be a pattern too" in capsys.readouterr().out


SOLO_SUITE = """name: solo
warmup: 1
repeats: auto
min_repeats: 3
max_repeats: 4
tests:
  - name: throughput
    concurrency: [8]
    num_requests: 8
    input_len: 16
    output_len: 4
"""


def solo_history(double, tmp_path, jobs: int) -> None:
    """``jobs`` baseline jobs of the solo suite on the base branch (made-up figures)."""
    from test_ci import write_run

    earlier = datetime.now(timezone.utc) - timedelta(hours=1)
    for day in range(1, jobs + 1):
        base = write_run(tmp_path / "base" / str(day), timestamp=f"2025-05-0{day}T10:00:00.000Z")
        document = json.loads((base / "metrics.json").read_text())
        (base / "metrics.json").write_text(json.dumps({**document, "engine": "sim", "suite_name": "solo"}))
        files = {p.name: p.read_bytes() for p in base.iterdir() if p.is_file()}
        double.add_artifact("kitt-results", files, head_branch="main", created_at=earlier + timedelta(minutes=day))


def solo_auto_env(double, tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The action's environment for a single-arm ``repeats: auto`` run of SOLO_SUITE on the sim,
    on a pull request to main, with the double as GitHub."""
    (tmp_path / "suite.yaml").write_text(SOLO_SUITE)
    output = tmp_path / "output"
    output.touch()
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": double.repo.full_name,
        "GITHUB_API_URL": double.api_url,
        "GITHUB_BASE_REF": "main",
        "GITHUB_OUTPUT": str(output),
        "KITT_ACTION_FLAVOUR": "composite",
        "INPUT_MODEL": "meta-llama/Llama-3.1-8B",
        "INPUT_ENGINE": "sim",
        "INPUT_SUITE": str(tmp_path / "suite.yaml"),
        "INPUT_REPEATS": "auto",
        "INPUT_BASELINE-ARTIFACT": "kitt-results",
        "INPUT_GITHUB-TOKEN": double.token,
        "INPUT_RESULTS-DIR": str(tmp_path / "results"),
        "INPUT_COMMENT": "never",
        **(extra or {}),
    }


def test_repeats_auto_on_one_arm_downloads_the_history_before_the_benchmark_and_once(tmp_path, github_double):
    """The history is what each level is decided against, so it comes before the engine starts; the
    report compares with that same download."""
    from kitt.action import main

    double = github_double
    solo_history(double, tmp_path, 3)
    main(
        solo_auto_env(double, tmp_path, {"INPUT_BASELINE-HISTORY": "3"})
    )  # the verdict does not matter here (the history holds made-up figures)
    written = json.loads((tmp_path / "results" / "config.json").read_text())
    record = written["repeats_auto"]
    assert record["history_jobs"] == 3 and 3 <= record["levels"]["throughput-c8"]["repeats"] <= 4
    assert len(double.requests_for("actions/download-artifact")) == 3  # each job once, not again for the report
    report = (tmp_path / "results" / "report.md").read_text()
    assert "Compared with 3 baseline jobs" in report and "short of repeats" not in report


@pytest.mark.parametrize(
    ("jobs", "why"),
    [
        (0, "the base branch has no 'kitt-results' artifact yet"),
        (2, "the baseline history (baseline-artifact 'kitt-results') holds 2 baseline jobs; the history test needs"),
    ],
)
def test_repeats_auto_on_one_arm_without_a_usable_history_warns_and_runs_max_repeats(
    tmp_path, github_double, capsys, jobs, why
):
    """A new workflow: the base branch has too few baseline jobs yet, so there is nothing to decide against."""
    from kitt.action import main

    solo_history(github_double, tmp_path, jobs)
    main(solo_auto_env(github_double, tmp_path))
    assert f"::warning::repeats auto has nothing to decide against: {why}" in capsys.readouterr().out
    written = json.loads((tmp_path / "results" / "config.json").read_text())
    assert "repeats_auto" not in written and written["suite"]["repeats"] == 4
    assert len(json.loads((tmp_path / "results" / "metrics.json").read_text())["results"]) == 4
    assert len(github_double.requests_for("actions/download-artifact")) == jobs  # once each, not again


def test_repeats_auto_on_one_arm_needs_a_baseline_artifact():
    from kitt.action_inputs import preflight
    from kitt.github.actions_io import ActionsContext

    inputs = ActionInputs.from_environment({"INPUT_MODEL": "m", "INPUT_ENGINE": "sim", "INPUT_REPEATS": "auto"})
    with pytest.raises(UsageError, match="input 'repeats': auto needs something to decide against"):
        preflight(inputs, ActionsContext.from_environment({}))
