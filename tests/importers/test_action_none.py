"""The action with ``engine: none``: no benchmark, the report on files an earlier step wrote."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from kitt.action_inputs import ActionInputs
from support import REPO, clean_environ

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _entrypoint(tmp_path: Path, **inputs: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.touch()
    summary.touch()
    env = clean_environ(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
        KITT_ACTION_FLAVOUR="composite",
        INPUT_ENGINE="none",
        INPUT_COMMENT="never",
        **{f"INPUT_{k.upper()}": v for k, v in inputs.items()},
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "entrypoint.py")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    lines, values = output.read_text().splitlines(), {}
    for index, line in enumerate(lines):
        if "<<" in line:
            values[line.split("<<", 1)[0]] = lines[index + 1]
    return done, values


def test_engine_none_needs_no_model():
    inputs = ActionInputs.from_environment({"INPUT_ENGINE": "none", "INPUT_RESULTS-DIR": "bench"})
    assert inputs.engine == "none" and inputs.model == "" and str(inputs.results_dir) == "bench"


def test_engine_none_with_no_results_dir_is_a_usage_error(tmp_path):
    done, outputs = _entrypoint(tmp_path, **{"RESULTS-DIR": str(tmp_path / "nowhere")})
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "nowhere does not exist" in errors[0] and "results-dir" in errors[0]
    assert outputs["passed"] == "false"
    (tmp_path / "empty").mkdir()
    done, _ = _entrypoint(tmp_path, **{"RESULTS-DIR": str(tmp_path / "empty")})
    assert done.returncode == 2 and "holds no metrics.json and no result file kitt knows" in done.stdout


def test_engine_none_reports_and_gates_a_tools_files(tmp_path):
    results = shutil.copytree(FIXTURES / "vllm" / "slower", tmp_path / "bench")
    done, outputs = _entrypoint(tmp_path, **{"RESULTS-DIR": str(results)})
    assert done.returncode == 0, done.stdout + done.stderr  # no baseline: nothing to gate
    assert outputs["verdict"] == "no baseline" and outputs["passed"] == "true"
    assert "concurrency-c2" in (results / "report.md").read_text()
    assert "vllm bench serve" in (tmp_path / "summary").read_text()
