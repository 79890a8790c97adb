"""Podman for the tests: the base image, the test images built on it, and cleanup by label.

``scripts/setup-podman.sh`` (run by ``scripts/test``) installs Podman and imports a Debian base
image; :func:`base_image` runs it again (a no-op when done) so that pytest alone works too, and
says why when Podman cannot run here. The images:

- the *engine image*: the base image with kitt's sim server as its entrypoint. The sim takes
  vLLM's server arguments, so the real vllm spec's Docker command line starts it;
- the *action image*: the repository's Dockerfile, built with the base image as ``BASE_IMAGE``
  (no registry serves the python image here).

The fixtures (``base``, ``remove_containers``, ``podman_docker_api``) are imported by the
podman test modules. Both images are tagged by a hash of what goes into them, so an unchanged image is built once per machine.
Containers the tests start themselves carry ``TEST_LABEL``; kitt's and act's are found by the
test image they run (``ancestor=``), so a cleanup never touches anything else on the machine.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import pytest

from support import REPO, stop_process

TEST_LABEL = "kitt.test=podman"
ENGINE_REPO = "localhost/kitt-test-vllm"
ACTION_REPO = "localhost/kitt-test-action"

ENGINE_CONTAINERFILE = """FROM {base}
COPY kitt /opt/kitt/kitt
ENV PYTHONPATH=/opt/kitt PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["python3", "-m", "kitt.engines.simserver"]
"""


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


@lru_cache(maxsize=1)
def base_image() -> tuple[str | None, str]:
    """(the base image, "") when Podman works here, else (None, why not)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup-podman.sh")], capture_output=True, text=True, timeout=900
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0:
        return None, f"scripts/setup-podman.sh failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    if not lines:
        return None, (done.stderr.strip().splitlines() or ["scripts/setup-podman.sh set nothing up"])[-1]
    check = subprocess.run(
        ["podman", "run", "--rm", "--network=none", lines[-1], "true"], capture_output=True, text=True, timeout=120
    )
    if check.returncode != 0:
        return None, f"podman cannot run a container here: {check.stderr.strip()[-300:]}"
    return lines[-1], ""


def _tree_hash(paths: list[Path], extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _exists(image: str) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def engine_image(base: str) -> str:
    """The sim server in a container, started by vLLM's server arguments."""
    tag = f"{ENGINE_REPO}:{_tree_hash([REPO / 'kitt'], base)}"
    if not _exists(tag):
        with tempfile.TemporaryDirectory(prefix="kitt-engine-image-") as context:
            shutil.copytree(REPO / "kitt", Path(context) / "kitt", ignore=shutil.ignore_patterns("__pycache__"))
            (Path(context) / "Containerfile").write_text(ENGINE_CONTAINERFILE.format(base=base))
            podman("build", "--pull=never", "--quiet", "--tag", tag, context, timeout=300)
    return tag


def host_ca_bundle() -> Path | None:
    """The machine's CA bundle: a TLS-inspecting proxy's CA (as on these VMs) lives only there."""
    found = ssl.get_default_verify_paths().cafile
    for candidate in (found, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def action_image(base: str) -> str:
    """The Docker flavour's image, built from the repository's Dockerfile as the release does."""
    inputs = [
        REPO / name
        for name in (
            "Dockerfile",
            "requirements.lock",
            "pyproject.toml",
            "README.md",
            "LICENSE",
            "entrypoint.py",
            "kitt",
        )
    ]
    tag = f"{ACTION_REPO}:{_tree_hash(inputs, base)}"
    if not _exists(tag):
        # pip inside the build fetches from PyPI like the release build; the host's network and CA
        # bundle are lent to that one step, and nothing of them stays in the image.
        ca = host_ca_bundle()
        mount = [f"--volume={ca}:/etc/ssl/certs/ca-certificates.crt:ro"] if ca else []
        podman(
            "build",
            "--pull=never",
            "--network=host",
            *mount,
            f"--build-arg=BASE_IMAGE={base}",
            "--tag",
            tag,
            "--file",
            str(REPO / "Dockerfile"),
            str(REPO),
            timeout=600,
        )
    return tag


def containers(*filters: str) -> list[str]:
    listing = podman("ps", "--all", "--quiet", "--no-trunc", *[f"--filter={f}" for f in filters])
    return listing.stdout.split()


def remove_test_containers(images: list[str]) -> list[str]:
    """Remove what the tests started: TEST_LABEL, and any container of the test images (kitt's
    own, act's job containers). Only the tests use these images, so nothing else is touched."""
    found = containers(f"label={TEST_LABEL}")
    for image in images:
        found += containers(f"ancestor={image}")
    found = sorted(set(found))
    if found:
        podman("rm", "--force", "--time=0", *found, check=False)
    return found


# ------------------------------------------------------------------ fixtures for the podman tests

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
    image, why = base_image()
    if image is None:
        pytest.skip(f"Podman cannot run containers here: {why}")
    return image


@pytest.fixture(autouse=True)
def remove_containers(request):
    """Whatever a test leaves behind (it failed, or kitt did) is removed, and a leak fails it."""
    yield
    images = [request.getfixturevalue(name) for name in ("base", "engine") if name in request.fixturenames]
    images += getattr(request.node, "kitt_images", [])
    if images:
        left = remove_test_containers(images)
        assert not left, f"containers left behind: {left}"


def suite_file(tmp_path: Path, *, repeats: int = 2, requests: int = 6) -> Path:
    path = tmp_path / f"suite-{repeats}-{requests}.yaml"
    path.write_text(SUITE.format(repeats=repeats, requests=requests))
    return path


@pytest.fixture
def podman_docker_api(tmp_path):
    """Podman's Docker-compatible API on a private socket, for the real docker CLI to talk to."""
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed (Debian: docker.io); Podman's own CLI is tested above")
    sock = tmp_path / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline and service.poll() is None:
            time.sleep(0.1)
        assert sock.exists(), "podman system service did not open its socket"
        yield f"unix://{sock}"
    finally:
        stop_process(service, timeout=15)
