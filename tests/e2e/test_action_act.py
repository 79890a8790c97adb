"""The action end to end under a real Actions runner implementation (nektos/act, host mode).

A pull_request workflow does `uses: ./` (the composite action.yml) with the sim engine. GitHub's
REST API is the contract-checked double; the baseline is a real kitt result set served as the
base branch's artifact. Runs, in order, against one pull request:

1. an injected regression (slower tokens) -> the job fails, one comment is created;
2. an A/A rerun (the baseline's engine settings) -> success, the same comment is updated;
3. the Docker flavour's report mode (the same entrypoint, as report/action.yml runs it) on the
   results that run 1 uploaded, inside act so that the artifact client meets act's real
   artifact server.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from github_double.fixtures import github_contract, github_double  # noqa: F401  (the GitHub REST double)
from support import REPO, run_kitt, zip_dir

pytestmark = pytest.mark.act

from e2e import act  # noqa: E402  (tests/ is on the path: pyproject)

SUITE = """name: act-e2e
warmup: 1
repeats: 5
tests:
  - name: chat
    concurrency: [2]
    num_requests: 6
    input_len: 16
    output_len: 12
"""
BASE_SIM = ["--ttft-ms=30", "--itl-ms=6"]
SLOW_SIM = ["--ttft-ms=30", "--itl-ms=15"]  # +150% per token: far past any threshold
PR = 7
ARTIFACT = "kitt-results-e2e"
UPLOAD_ACTION = "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"

WORKFLOW = """name: bench
on: pull_request
jobs:
  bench:
    runs-on: self-hosted
    steps:
      - run: cp -r "$SRC/." .
      - id: kitt
        uses: ./
        with:
          model: sim-model
          engine: sim
          suite: act-suite.yaml
          baseline-artifact: {artifact}
          artifact-name: {artifact}
          pr: "{pr}"
          github-token: ${{{{ secrets.GH_TOKEN }}}}
          threshold: "20"
          engine-args: |
{engine_args}
          upload-artifact: "false"
      - name: Keep the results for the next workflow
        if: always()
        run: cp -r kitt-results "$KEEP/"
"""

REPORT_WORKFLOW = """name: report
on: workflow_run
jobs:
  report:
    runs-on: self-hosted
    steps:
      - run: cp -r "$SRC/." .
      - id: kitt
        # What report/action.yml's container runs: the same entrypoint, inputs named with hyphens.
        run: python "$SRC/entrypoint.py"
        env:
          KITT_ACTION_FLAVOUR: docker
          INPUT_MODE: report
          INPUT_RESULTS-ARTIFACT: {artifact}
          INPUT_BASELINE-ARTIFACT: {artifact}
          INPUT_GITHUB-TOKEN: ${{{{ secrets.GH_TOKEN }}}}
          INPUT_THRESHOLD: "20"
          INPUT_FAIL-ON-REGRESSION: "true"
          INPUT_COMMENT: always
          INPUT_UPLOAD-ARTIFACT: "true"
"""


def offline_upload_action(root: Path) -> list[str]:
    """act fetches every remote action of a composite before it evaluates `if:`, and it cannot
    reach GitHub here. The upload step is switched off by `upload-artifact: false`, so a stand-in
    that is never run takes the pinned action's place (act's --local-repository)."""
    stand_in = root / "upload-artifact-stand-in"
    stand_in.mkdir(parents=True, exist_ok=True)
    (stand_in / "action.yml").write_text(
        "name: stand-in\nruns:\n  using: composite\n  steps:\n"
        "    - run: echo 'the upload stand-in must never run' && exit 1\n      shell: bash\n"
    )
    return ["--local-repository", f"{UPLOAD_ACTION}={stand_in}"]


def copy_repo(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "results", ".pytest_cache")
    shutil.copytree(REPO, dest, ignore=ignore)
    (dest / "act-suite.yaml").write_text(SUITE)
    return dest


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> bytes:
    """A real result set from the base branch, made with the same suite and engine settings."""
    root = tmp_path_factory.mktemp("baseline")
    suite = root / "act-suite.yaml"
    suite.write_text(SUITE)
    done = run_kitt(
        "run",
        "-m",
        "sim-model",
        "-e",
        "sim",
        "-s",
        str(suite),
        "-o",
        str(root / "out"),
        *[f"--engine-arg={a}" for a in BASE_SIM],
    )
    assert done.returncode == 0, done.stderr
    return zip_dir(root / "out")


def run_benchmark_workflow(tmp_path: Path, double, engine_args: list[str]):
    src = copy_repo(tmp_path / "src")
    workflow = tmp_path / "bench.yml"
    args = "\n".join(f"            {a}" for a in engine_args)
    workflow.write_text(WORKFLOW.format(artifact=ARTIFACT, pr=PR, engine_args=args))
    keep = tmp_path / "kept"
    keep.mkdir()
    event = {
        "number": PR,
        "pull_request": {"number": PR, "head": {"ref": "feature", "sha": "a" * 40}, "base": {"ref": "main"}},
    }
    run = act.run_act(
        workflow,
        event=event,
        workdir=tmp_path / "act",
        src=src,
        timeout_s=600,
        env={"GITHUB_API_URL": double.api_url, "GITHUB_REPOSITORY": "octo-org/kitt-demo", "KEEP": str(keep)},
        secrets={"GH_TOKEN": double.token},
        extra_args=offline_upload_action(tmp_path),
    )
    return run, keep / "kitt-results"


def test_action_benchmarks_comments_and_gates(tmp_path, github_double, baseline):
    double = github_double
    double.add_pull(PR, base_ref="main")
    double.add_artifact(
        ARTIFACT, content=baseline, head_branch="main", created_at=datetime.now(timezone.utc) - timedelta(hours=1)
    )

    marker = "<!-- kitt-benchmark:sim/sim-model/act-suite -->"

    # 1. The PR makes every token slower: the gate fails the job and the comment says why.
    slow, kept = run_benchmark_workflow(tmp_path / "slow", double, SLOW_SIM)
    assert slow.returncode == 1 and slow.job_results() == {"bench": "failure"}, slow.raw_output()[-4000:]
    outputs = slow.outputs("kitt")
    assert outputs["passed"] == "false" and int(outputs["regressions"]) >= 1
    assert outputs["artifact-name"] == ARTIFACT and outputs["results-dir"] == "kitt-results"
    assert outputs["report"] == "kitt-results/report.md" and outputs["comment-url"].startswith("http")
    assert json.loads(outputs["metrics"])["chat-c2"]["median_tpot_ms"]["verdict"] == "regression"
    errors = [e["msg"] for e in slow.events if "::error" in str(e.get("msg", ""))]
    assert any("regressed" in message for message in errors), errors  # one annotation names each regression
    summary = "\n".join(slow.summaries())
    assert summary.startswith(marker) and summary.splitlines()[1].startswith("## ❌ ") and "regression" in summary
    (comment,) = [c for c in double.comments(PR) if c.body.startswith(marker)]
    assert comment.id == int(outputs["comment-url"].rsplit("-", 1)[-1]) and "regression" in comment.body.lower()
    if os.environ.get("KITT_EXAMPLE_COMMENT"):  # how docs/example-comment.md is made
        Path(os.environ["KITT_EXAMPLE_COMMENT"]).write_text(comment.body)
    assert json.loads((kept / "pull_request.json").read_text())["number"] == PR

    # 2. The fix is pushed: an A/A rerun passes, and the same comment is updated in place.
    same, _ = run_benchmark_workflow(tmp_path / "aa", double, BASE_SIM)
    assert same.returncode == 0, same.raw_output()[-4000:] + same.stderr[-2000:]
    outputs = same.outputs("kitt")
    assert outputs["passed"] == "true" and outputs["regressions"] == "0"
    assert "median_ttft_ms" in json.loads(outputs["metrics"])["chat-c2"]
    # No regression; a metric that moved past 5% by chance on this busy machine is inconclusive
    # (never a failure), so the headline is ✅ or 🟡, and never ❌.
    assert outputs["verdict"] in ("unchanged", "improvement", "inconclusive"), outputs["verdict"]
    headline = "\n".join(same.summaries()).splitlines()[1]
    assert headline.startswith(("## ✅ No regressions", "## 🟡 No regression proven")), headline
    marked = [c for c in double.comments(PR) if c.body.startswith(marker)]
    assert [c.id for c in marked] == [comment.id] and marked[0].body.splitlines()[1] == headline

    # 3. The fork-safe report job (Docker flavour's entrypoint) on the uploaded results of run 1.
    double.add_artifact(
        ARTIFACT, content=zip_dir(kept), head_branch="feature", run_id=4242, created_at=datetime.now(timezone.utc)
    )
    src = copy_repo(tmp_path / "report-src")
    workflow = tmp_path / "report.yml"
    workflow.write_text(REPORT_WORKFLOW.format(artifact=ARTIFACT))
    event = {"workflow_run": {"id": 4242, "head_sha": "a" * 40, "event": "pull_request"}}
    report = act.run_act(
        workflow,
        event=event,
        event_name="workflow_run",
        workdir=tmp_path / "act-report",
        src=src,
        env={"GITHUB_API_URL": double.api_url, "GITHUB_REPOSITORY": "octo-org/kitt-demo"},
        secrets={"GH_TOKEN": double.token},
        timeout_s=300,
    )
    assert report.returncode == 1, report.raw_output()[-4000:]  # the regression still gates
    outputs = report.outputs("kitt")
    assert outputs["passed"] == "false" and outputs["artifact-name"] == f"kitt-report-{ARTIFACT}"
    report_comments = [c for c in double.comments(PR) if c.body.startswith(f"<!-- kitt-benchmark:{ARTIFACT} -->")]
    assert len(report_comments) == 1
    uploaded = list(report.artifact_dir.rglob(f"kitt-report-{ARTIFACT}.zip"))
    assert len(uploaded) == 1
    with zipfile.ZipFile(uploaded[0]) as archive:
        assert {"metrics.json", "report.md", "pull_request.json"} <= set(archive.namelist())
