"""Docker mode: the engine in a container with GPUs, torn down whatever happens.

Docker mode drives ``docker`` or ``podman`` (``kitt.engines.container`` chooses the CLI and its GPU
flags); both take every command here. Every container carries labels (``kitt.managed``,
``kitt.run-id``, ``kitt.owner-host``, ``kitt.owner-pid``) so that a later run on the same host
removes containers left behind by a kitt process that no longer exists (one killed with SIGKILL,
or a lost runner). ``HF_TOKEN`` is passed by name (``--env HF_TOKEN``): its value never appears
on a command line or in a log.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from kitt.engines.base import EngineSpec, ServerHandle
from kitt.engines.container import gpu_flags, qualified_image, remove_args, run_cli

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
    cli: str = "docker",
    engine_cache: Path | None = None,
) -> list[str]:
    """The exact ``docker run`` (or ``podman run``) command line for ``spec``; pure, so tests can check every flag."""
    model_in_container, model_volumes = container_model_path(spec, model)
    values = {"model": model_in_container, "served": served, "host": "0.0.0.0", "port": str(spec.container_port)}
    command = [
        cli,
        "run",
        "--detach",
        f"--name={name}",
        f"--label={LABEL}",
        f"--label=kitt.run-id={run_id}",
        f"--label=kitt.owner-host={owner_host}",
        f"--label=kitt.owner-pid={owner_pid}",
        f"--label=kitt.engine={spec.name}",
        *gpu_flags(cli, gpus),
        # Publish on loopback only: the benchmark client runs on this host.
        f"--publish=127.0.0.1:{host_port}:{spec.container_port}",
        *spec.docker_flags,
        *model_volumes,
    ]
    cache = hf_cache_volume(spec, environ)
    if cache:
        command.append(f"--volume={cache}:{spec.hf_cache_target}")
    command += [f"--volume={host}:{target}" for host, target in persistent_cache_volumes(spec, engine_cache)]
    if "HF_TOKEN" in environ:
        command.append("--env=HF_TOKEN")  # by name: the CLI reads the value from our environment
    command.append(image)
    command += list(spec.docker_command)
    command += [part.format(**values) for part in spec.server_args]
    command += list(extra_args)
    return command


def hf_cache_volume(spec: EngineSpec, environ: dict[str, str]) -> Path | None:
    """The host folder mounted as the engine's Hugging Face cache, if the engine has one."""
    if not spec.hf_cache_target:
        return None
    return hf_cache_dir(environ) / spec.hf_cache_subdir if spec.hf_cache_subdir else hf_cache_dir(environ)


def persistent_cache_volumes(spec: EngineSpec, engine_cache: Path | None) -> list[tuple[Path, str]]:
    """(host folder, container path) of the engine's persistent caches under ``engine_cache``
    (the runner's tool cache, passed down by the shells), so the next job on the runner reuses
    what this one compiled; none without an ``engine_cache``."""
    if engine_cache is None:
        return []
    return [(Path(engine_cache) / spec.name / sub, target) for sub, target in spec.persistent_caches]


def image_digest(image: str, cli: str = "docker") -> str | None:
    result = run_cli(cli, "image", "inspect", "--format", "{{json .RepoDigests}}", image, check=False)
    if result.returncode != 0:
        return None
    try:
        digests = json.loads(result.stdout.strip() or "[]")
    except ValueError:
        return None
    return digests[0] if digests else None


def ensure_image(image: str, cli: str = "docker") -> None:
    if run_cli(cli, "image", "inspect", image, check=False).returncode != 0:
        run_cli(cli, "pull", image, timeout=3600)


def remove_orphans(owner_host: str | None = None, *, everything: bool = False, cli: str = "docker") -> list[str]:
    """Remove kitt containers whose owning process is gone (or all of them with ``everything``)."""
    owner_host = owner_host or socket.gethostname()
    # Docker and Podman format `ps` rows differently (Podman has no .Label), but both read
    # a container's labels the same way in `inspect`.
    listing = run_cli(cli, "ps", "--all", "--quiet", "--no-trunc", f"--filter=label={LABEL}")
    containers = listing.stdout.split()
    if not containers:
        return []
    owners = run_cli(
        cli,
        "inspect",
        "--type=container",
        "--format",
        '{{.Id}}\t{{index .Config.Labels "kitt.owner-host"}}\t{{index .Config.Labels "kitt.owner-pid"}}',
        *containers,
        check=False,
    )
    removed = []
    for line in owners.stdout.splitlines():
        container, host, pid = (line.split("\t") + ["", ""])[:3]
        if container and (everything or (host == owner_host and not _pid_alive(pid))):
            run_cli(cli, *remove_args(cli), container, check=False)
            removed.append(container[:12])
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
        cli: str = "docker",
        gpus: str = "all",
        engine_cache: Path | None = None,
    ) -> None:
        self.spec = spec
        self.engine_cache = engine_cache
        self.image = qualified_image(cli, image)
        self.served = served
        self.port = port
        self.cli = cli
        self.name = f"kitt-{spec.name}-{run_id}"
        self.environ = dict(os.environ)
        self.command = docker_run_command(
            spec,
            image=self.image,
            model=model,
            served=served,
            host_port=port,
            extra_args=extra_args,
            name=self.name,
            run_id=run_id,
            environ=self.environ,
            owner_pid=os.getpid(),
            owner_host=socket.gethostname(),
            gpus=gpus,
            cli=cli,
            engine_cache=engine_cache,
        )
        self._container: str | None = None

    def _cli(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(self.cli, *args, timeout=timeout, check=check)

    def start(self) -> ServerHandle:
        remove_orphans(cli=self.cli)
        began = time.monotonic()
        ensure_image(self.image, cli=self.cli)
        pulled = time.monotonic()
        cache = hf_cache_volume(self.spec, self.environ)
        if cache:
            # Docker would create a missing host folder as root; Podman refuses to mount one.
            cache.mkdir(parents=True, exist_ok=True)
        for host, _ in persistent_cache_volumes(self.spec, self.engine_cache):
            host.mkdir(parents=True, exist_ok=True)
        self._container = self.name  # from here on, stop() must remove it even if run fails
        result = self._cli(*self.command[1:], timeout=300)
        self._container = result.stdout.strip().splitlines()[-1]
        startup = {"pull_s": round(pulled - began, 3), "start_s": round(time.monotonic() - pulled, 3)}
        return ServerHandle(
            base_url=f"http://127.0.0.1:{self.port}",
            served_model=self.served,
            mode="docker",
            image=self.image,
            image_digest=image_digest(self.image, cli=self.cli),
            command=list(self.command),
            startup=startup,
        )

    def exit_status(self) -> int | None:
        if self._container is None:
            return None
        result = self._cli(
            "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", self._container, check=False
        )
        if result.returncode != 0:
            return -1  # the container is gone
        running, code = (result.stdout.split() + ["", ""])[:2]
        return None if running == "true" else int(code or -1)

    def log_tail(self, lines: int = 50) -> str:
        if self._container is None:
            return ""
        result = self._cli("logs", "--tail", str(lines), self._container, check=False)
        return result.stdout + result.stderr

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            # A cancelled CI job gives seconds, not minutes: remove at once, no graceful stop.
            self._cli(*remove_args(self.cli), container, check=False, timeout=60)
