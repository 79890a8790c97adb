"""The container CLI that Docker mode drives: ``docker`` or ``podman``, and how each is given GPUs.

Both CLIs take the same commands kitt runs (run, inspect, logs, rm, ps with label filters, image
inspect, pull); they differ in how a container gets GPUs:

    docker   --gpus=all | --gpus="device=0,1"       (the NVIDIA Container Toolkit)
    podman   --device=nvidia.com/gpu=all | =0 ...   (CDI: ``nvidia-ctk cdi generate``)
    none     no GPU flag at all (CPU images, tests)

Podman 4 accepts ``--gpus`` and ignores it, so it would silently run without GPUs: never pass it.

The CLI is chosen once: the one asked for, else docker when it is installed, else podman when
only podman is. A GPU request the runtime cannot serve, a missing CLI and an unreachable daemon
each become one line that names the fix.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Callable

from kitt.errors import BenchmarkError, UsageError

CLIS = ("docker", "podman")
CDI_GPU = "nvidia.com/gpu"
TOOLKIT_URL = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"
CDI_URL = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/cdi-support.html"


def resolve_cli(requested: str | None, which: Callable[[str], str | None] = shutil.which) -> str:
    """The CLI to drive: ``requested`` if given, else docker, else podman when only podman is installed."""
    if requested:
        if requested not in CLIS:
            raise UsageError(f"unknown container CLI {requested!r}", hint=f"Choose one of: {', '.join(CLIS)}.")
        return requested
    if which("docker") is None and which("podman") is not None:
        return "podman"
    return "docker"


def parse_gpus(text: str) -> str:
    """``all``, ``none`` or GPU indexes like ``0,1`` (normalised), else a UsageError."""
    value = text.strip().lower()
    if value in ("all", "none"):
        return value
    parts = [part.strip() for part in value.split(",")]
    if parts and all(part.isdigit() for part in parts):
        return ",".join(str(int(part)) for part in parts)
    raise UsageError(f"--gpus takes all, none or GPU indexes like 0,1; got {text!r}")


def gpu_flags(cli: str, gpus: str) -> list[str]:
    """The run flags that give a container the GPUs ``gpus`` names (see :func:`parse_gpus`)."""
    if gpus == "none":
        return []
    if cli == "podman":
        devices = ["all"] if gpus == "all" else gpus.split(",")
        return [f"--device={CDI_GPU}={device}" for device in devices]
    # Docker reads --gpus as CSV, so a list of devices is quoted; a bare number would be a count.
    return ["--gpus=all"] if gpus == "all" else [f'--gpus="device={gpus}"']


def qualified_image(cli: str, image: str) -> str:
    """The image as ``cli`` must be given it: Podman refuses Docker Hub short names such as
    ``vllm/vllm-openai:TAG`` unless registries.conf lists a search registry (and prompts for one
    in enforcing mode), so they are spelled out as Docker reads them: ``docker.io/vllm/...``."""
    if cli != "podman" or not image:
        return image
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image  # already names its registry
    return f"docker.io/{image}" if rest else f"docker.io/library/{image}"


def remove_args(cli: str) -> list[str]:
    """``rm`` that kills at once: Podman's ``rm --force`` first waits 10 s for SIGTERM, Docker's does not."""
    return ["rm", "--force", "--time=0"] if cli == "podman" else ["rm", "--force"]


def run_cli(cli: str, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``cli args``; a missing CLI, a timeout or (with ``check``) a failure is one clear error."""
    if shutil.which(cli) is None:
        other = "podman" if cli == "docker" else "docker"
        raise UsageError(
            f"the {cli} command is not installed",
            hint=f"Install {'Docker and the NVIDIA Container Toolkit' if cli == 'docker' else 'Podman'}, "
            f"pass --container-cli {other}, or use --native or --endpoint.",
        )
    try:
        result = subprocess.run([cli, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"`{cli} {args[0]}` did not answer within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        raise failure(cli, args, result.stderr.strip() or result.stdout.strip())
    return result


def failure(cli: str, args: tuple[str, ...], output: str) -> BenchmarkError | UsageError:
    """The one error for a failed ``cli args`` call, from the CLI's own output."""
    first = next((line.strip() for line in output.splitlines() if line.strip()), "no output")
    gpu = _gpu_request(args)
    if gpu and _gpu_refused(cli, output):
        return gpu_unavailable(cli, gpu, first)
    return BenchmarkError(f"`{cli} {args[0]}` failed: {first}", hint=_hint(cli, first))


def gpu_unavailable(cli: str, request: str, said: str) -> UsageError:
    """The GPU request ``request`` was refused; ``said`` is the runtime's own line."""
    if cli == "podman":
        return UsageError(
            f"podman cannot give the container the GPU {request}: no CDI specification names it ({said})",
            hint="Install the NVIDIA Container Toolkit and run `sudo nvidia-ctk cdi generate "
            f"--output=/etc/cdi/nvidia.yaml` ({CDI_URL}); or pass --gpus none for an image that needs no GPU.",
        )
    return UsageError(
        f"docker cannot give the container GPUs ({request}): {said}",
        hint=f"Install the NVIDIA Container Toolkit and restart Docker ({TOOLKIT_URL}); "
        "or pass --gpus none for an image that needs no GPU.",
    )


def _gpu_request(args: tuple[str, ...]) -> str | None:
    """The GPUs a run command asks for, as its flags spell them (None: no GPU asked for)."""
    asked = [arg.split("=", 1)[1] for arg in args if arg.startswith(("--gpus=", f"--device={CDI_GPU}="))]
    return ", ".join(asked) or None


# What each CLI says when the GPU request cannot be served (Docker 28; Podman 4.3 to 5).
_DOCKER_GPU = re.compile(
    r"could not select device driver|nvidia-container-cli|unknown or invalid runtime name: nvidia", re.IGNORECASE
)
_PODMAN_GPU = re.compile(r"CDI|unresolvable .*device|nvidia\.com/gpu", re.IGNORECASE)


def _gpu_refused(cli: str, output: str) -> bool:
    return bool((_PODMAN_GPU if cli == "podman" else _DOCKER_GPU).search(output))


def _hint(cli: str, line: str) -> str:
    if cli == "docker" and ("Cannot connect to the Docker daemon" in line or "permission denied" in line):
        return "Start the Docker daemon and let the runner's user reach it (the docker group)."
    if cli == "podman" and ("cannot connect" in line.lower() or "permission denied" in line):
        return "Check that `podman info` works for the runner's user."
    return f"Run the same {cli} command by hand to see the full error."
