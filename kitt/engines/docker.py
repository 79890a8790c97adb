"""Docker mode: the engine in a container with GPUs, torn down whatever happens.

Every container carries labels (``kitt.managed``, ``kitt.run-id``, ``kitt.owner-host``,
``kitt.owner-pid``) so that a later run on the same host removes containers left behind by a
kitt process that no longer exists (one killed with SIGKILL, or a lost runner). ``HF_TOKEN`` is
passed by name (``--env HF_TOKEN``): its value never appears on a command line or in a log.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

from kitt.engines.base import EngineSpec, ServerHandle
from kitt.errors import BenchmarkError, UsageError

LABEL = "kitt.managed=true"
MODEL_MOUNT = "/models"


def container_model_path(spec: EngineSpec, model: str) -> tuple[str, list[str]]:
    """The model as the container sees it, and the volume flags that put it there."""
    local = Path(model).expanduser()
    if local.exists():
        target = f"{MODEL_MOUNT}/{local.resolve().name}"
        return target, [f"--volume={local.resolve()}:{target}:ro"]
    return model, []


def hf_cache_dir(environ: dict[str, str]) -> Path:
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"])
    return Path(environ.get("HOME", "~")).expanduser() / ".cache" / "huggingface"


def docker_run_command(
    spec: EngineSpec,
    *,
    image: str,
    model: str,
    served: str,
    host_port: int,
    extra_args: tuple[str, ...],
    name: str,
    run_id: str,
    environ: dict[str, str],
    owner_pid: int,
    owner_host: str,
    gpus: str = "all",
) -> list[str]:
    """The exact ``docker run`` command line for ``spec``; pure, so tests can check every flag."""
    model_in_container, model_volumes = container_model_path(spec, model)
    values = {"model": model_in_container, "served": served, "host": "0.0.0.0", "port": str(spec.container_port)}
    command = [
        "docker", "run", "--detach",
        f"--name={name}",
        f"--label={LABEL}",
        f"--label=kitt.run-id={run_id}",
        f"--label=kitt.owner-host={owner_host}",
        f"--label=kitt.owner-pid={owner_pid}",
        f"--label=kitt.engine={spec.name}",
        f"--gpus={gpus}",
        # Publish on loopback only: the benchmark client runs on this host.
        f"--publish=127.0.0.1:{host_port}:{spec.container_port}",
        *spec.docker_flags,
        *model_volumes,
    ]
    if spec.hf_cache_target:
        cache = hf_cache_dir(environ) / spec.hf_cache_subdir if spec.hf_cache_subdir else hf_cache_dir(environ)
        command.append(f"--volume={cache}:{spec.hf_cache_target}")
    if "HF_TOKEN" in environ:
        command.append("--env=HF_TOKEN")  # by name: docker reads the value from our environment
    command.append(image)
    command += list(spec.docker_command)
    command += [part.format(**values) for part in spec.server_args]
    command += list(extra_args)
    return command


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; a missing CLI or an unreachable daemon becomes one clear error."""
    if shutil.which("docker") is None:
        raise UsageError(
            "the docker command is not installed",
            hint="Install Docker and the NVIDIA Container Toolkit, or use --native or --endpoint.",
        )
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"`docker {args[0]}` did not answer within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        first = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[0]
        raise BenchmarkError(f"`docker {args[0]}` failed: {first}", hint=_docker_hint(first))
    return result


def _docker_hint(line: str) -> str:
    if "Cannot connect to the Docker daemon" in line or "permission denied" in line:
        return "Start the Docker daemon and let the runner's user reach it (the docker group)."
    if "could not select device driver" in line or "nvidia" in line.lower():
        return "Install the NVIDIA Container Toolkit so that `docker run --gpus all` works."
    return "Run the same docker command by hand to see the full error."


def image_digest(image: str) -> str | None:
    result = docker("image", "inspect", "--format", "{{json .RepoDigests}}", image, check=False)
    if result.returncode != 0:
        return None
    try:
        digests = json.loads(result.stdout.strip() or "[]")
    except ValueError:
        return None
    return digests[0] if digests else None


def ensure_image(image: str) -> None:
    if docker("image", "inspect", image, check=False).returncode != 0:
        docker("pull", image, timeout=3600)


def remove_orphans(owner_host: str | None = None, *, everything: bool = False) -> list[str]:
    """Remove kitt containers whose owning process is gone (or all of them with ``everything``)."""
    owner_host = owner_host or socket.gethostname()
    listing = docker(
        "ps", "--all", f"--filter=label={LABEL}",
        "--format", '{{.ID}}\t{{.Label "kitt.owner-host"}}\t{{.Label "kitt.owner-pid"}}',
    )
    removed = []
    for line in listing.stdout.splitlines():
        container, host, pid = (line.split("\t") + ["", ""])[:3]
        if everything or (host == owner_host and not _pid_alive(pid)):
            docker("rm", "--force", container, check=False)
            removed.append(container)
    return removed


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


class DockerRunner:
    def __init__(
        self,
        spec: EngineSpec,
        *,
        image: str,
        model: str,
        served: str,
        port: int,
        extra_args: tuple[str, ...],
        run_id: str,
    ) -> None:
        self.spec = spec
        self.image = image
        self.served = served
        self.port = port
        self.name = f"kitt-{spec.name}-{run_id}"
        self.command = docker_run_command(
            spec,
            image=image,
            model=model,
            served=served,
            host_port=port,
            extra_args=extra_args,
            name=self.name,
            run_id=run_id,
            environ=dict(os.environ),
            owner_pid=os.getpid(),
            owner_host=socket.gethostname(),
        )
        self._container: str | None = None

    def start(self) -> ServerHandle:
        remove_orphans()
        ensure_image(self.image)
        self._container = self.name  # from here on, stop() must remove it even if run fails
        result = docker(*self.command[1:], timeout=300)
        self._container = result.stdout.strip().splitlines()[-1]
        return ServerHandle(
            base_url=f"http://127.0.0.1:{self.port}",
            served_model=self.served,
            mode="docker",
            image=self.image,
            image_digest=image_digest(self.image),
            command=list(self.command),
        )

    def exit_status(self) -> int | None:
        if self._container is None:
            return None
        result = docker("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", self._container, check=False)
        if result.returncode != 0:
            return -1  # the container is gone
        running, code = (result.stdout.split() + ["", ""])[:2]
        return None if running == "true" else int(code or -1)

    def log_tail(self, lines: int = 50) -> str:
        if self._container is None:
            return ""
        result = docker("logs", "--tail", str(lines), self._container, check=False)
        return result.stdout + result.stderr

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            # A cancelled CI job gives seconds, not minutes: remove at once, no graceful stop.
            docker("rm", "--force", container, check=False, timeout=60)
