"""Docker mode with a real container engine: Podman, and the docker CLI on Podman's Docker API.

No Docker daemon runs here, but Podman does (``scripts/setup-podman.sh``). The engine image holds
kitt's sim server, which takes vLLM's server arguments, so ``kitt run -e vllm`` starts it with
the real vllm spec's container command line: readiness, the benchmark, the digest in
config.json, teardown on success, on SIGTERM, after a SIGKILL (by the next run and by
``kitt engines cleanup``), an image that exits at once, and a GPU request the runtime cannot
serve. The real docker CLI also drives Docker mode through Podman's Docker-compatible API
(``podman system service``), so both CLIs' commands run for real. The Docker flavour's image
is tested in test_podman_action.py.
"""

from __future__ import annotations

import json
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e import podman as pm
from e2e.podman import base, podman_docker_api, remove_containers, suite_file  # noqa: F401  (fixtures)
from support import REPO, clean_environ, run_kitt, sample_ids, wait_for_samples

pytestmark = pytest.mark.podman


@pytest.fixture(scope="module")
def engine(base: str) -> str:
    return pm.engine_image(base)


@pytest.fixture
def kitt_env(tmp_path) -> dict[str, str]:
    # HF_HOME in tmp: Docker mode mounts the Hugging Face cache, and it must not touch ~/.cache.
    return clean_environ(HF_HOME=str(tmp_path / "hf"), PYTHONUNBUFFERED="1")


def vllm_args(engine: str, out: Path, suite: Path, *extra: str) -> list[str]:
    return [
        "run",
        "-m",
        "tiny-model",
        "-e",
        "vllm",
        "-s",
        str(suite),
        "-o",
        str(out),
        "--engine-image",
        engine,
        "--container-cli",
        "podman",
        *extra,
    ]


def kitt_containers(engine: str) -> list[str]:
    return pm.containers("label=kitt.managed=true", f"ancestor={engine}")


def start_until_ready(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.Popen[str]:
    """Start `kitt run` and return once it says (on stderr, with its progress) that the engine is ready."""
    child = subprocess.Popen(
        [sys.executable, "-m", "kitt", *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
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
    # On a runner the tool cache holds the engines' compile caches between jobs (issue 28).
    kitt_env = {**kitt_env, "RUNNER_TOOL_CACHE": str(tmp_path / "tool-cache")}
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
        "--model",
        "tiny-model",
        "--served-model-name",
        "tiny-model",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert (tmp_path / "hf").is_dir()  # created for the mount: Podman refuses a missing host folder
    caches = tmp_path / "tool-cache" / "kitt" / "engine-cache" / "vllm"
    for host, target in ((caches / "vllm", "/root/.cache/vllm"), (caches / "triton", "/root/.triton")):
        assert f"--volume={host}:{target}" in command and host.is_dir()  # mounted, so Podman ran with it
    (startup,) = config["startup"]  # measured: the image check or pull, the container's start, readiness
    assert startup["mode"] == "docker" and {"pull_s", "start_s", "ready_s", "total_s"} <= set(startup)
    assert kitt_containers(engine) == []


def test_sigterm_mid_run_removes_the_container(tmp_path, engine, kitt_env):
    out = tmp_path / "out"
    child = start_until_ready(
        vllm_args(engine, out, suite_file(tmp_path, repeats=1, requests=2000), "--gpus", "none"), kitt_env
    )
    (container,) = kitt_containers(engine)
    seen = wait_for_samples(out, child, 120)  # on an observed event: the warm-up's samples are written
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 1, err
    assert "received SIGTERM" in err
    assert pm.podman("container", "exists", container, check=False).returncode == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["passed"] is False and "SIGTERM" in " ".join(metrics["failures"])
    kept = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sample_ids(seen) <= sample_ids(kept)  # what was measured before the signal is kept


def test_sigkilled_runs_container_is_removed_by_the_next_run_and_by_cleanup(tmp_path, engine, kitt_env):
    long_suite = suite_file(tmp_path, repeats=1, requests=2000)
    killed = start_until_ready(vllm_args(engine, tmp_path / "killed", long_suite, "--gpus", "none"), kitt_env)
    (orphan,) = kitt_containers(engine)
    killed.kill()  # SIGKILL: kitt gets no chance to tear down
    killed.communicate(timeout=30)
    assert kitt_containers(engine) == [orphan], "the premise: a SIGKILLed kitt leaves its container"

    done = run_kitt(
        *vllm_args(engine, tmp_path / "next", suite_file(tmp_path), "--gpus", "none"), env=kitt_env, timeout=180
    )
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
    done = run_kitt(
        *vllm_args(engine, tmp_path / "out", suite_file(tmp_path), "--gpus", "none", "--engine-arg=--no-such-flag"),
        env=kitt_env,
        timeout=180,
    )
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
        assert (
            "--device=nvidia.com/gpu=all"
            in json.loads((tmp_path / "out" / "config.json").read_text())["server_command"]
        )
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
    saved = subprocess.run(
        f"podman save {engine} | docker load", shell=True, capture_output=True, text=True, timeout=300
    )
    assert saved.returncode == 0, saved.stderr
    try:
        done = run_kitt(
            *vllm_args(engine, tmp_path / "out", suite_file(tmp_path))[:-2],
            "--container-cli",
            "docker",
            env=kitt_env,
            timeout=300,
        )
        toolkit = "nvidia" in json.dumps(info.get("Runtimes", {})) or any(
            shutil.which(tool) for tool in ("nvidia-container-runtime-hook", "nvidia-ctk")
        )
        if toolkit:
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode == 2, done.stderr
            assert "NVIDIA Container Toolkit" in done.stderr.strip().splitlines()[-1]
    finally:
        subprocess.run(["docker", "rmi", "--force", engine], capture_output=True, timeout=60)


def test_the_docker_cli_drives_docker_mode_through_podmans_docker_api(tmp_path, engine, kitt_env, podman_docker_api):
    """Every docker command kitt runs (run with labels, inspect, logs, ps with label filters, rm,
    image inspect), by the real docker CLI, against Podman's Docker-compatible API."""
    env = {**kitt_env, "DOCKER_HOST": podman_docker_api}
    done = run_kitt(
        *vllm_args(engine, tmp_path / "out", suite_file(tmp_path))[:-2],
        "--container-cli",
        "docker",
        "--gpus",
        "none",
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["server_command"][:2] == ["docker", "run"] and "@sha256:" in config["engine_image_digest"]
    assert kitt_containers(engine) == []

    killed = start_until_ready(
        [
            *vllm_args(engine, tmp_path / "killed", suite_file(tmp_path, repeats=1, requests=2000))[:-2],
            "--container-cli",
            "docker",
            "--gpus",
            "none",
        ],
        env,
    )
    (orphan,) = kitt_containers(engine)
    killed.kill()
    killed.communicate(timeout=30)
    cleanup = run_kitt("engines", "cleanup", env=env, timeout=120)  # docker: the default CLI
    assert cleanup.returncode == 0, cleanup.stderr
    assert cleanup.stdout.strip() == f"removed 1 container(s): {orphan[:12]}"
    assert kitt_containers(engine) == []
