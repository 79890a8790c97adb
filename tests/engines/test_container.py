"""kitt.engines.container: choosing the CLI, reading --gpus, and the one-line errors a refused GPU
request or a missing CLI gives. The real runtimes' answers are checked in tests/e2e/test_podman.py."""

from __future__ import annotations

import pytest

from kitt.engines.container import failure, parse_gpus, qualified_image, remove_args, resolve_cli, run_cli
from kitt.errors import BenchmarkError, UsageError


def which_of(*installed: str):
    return lambda name: f"/usr/bin/{name}" if name in installed else None


@pytest.mark.parametrize(
    ("requested", "installed", "chosen"),
    [
        (None, ("docker", "podman"), "docker"),
        (None, ("docker",), "docker"),
        (None, ("podman",), "podman"),
        (None, (), "docker"),  # and the run then says docker is not installed
        ("podman", ("docker", "podman"), "podman"),
        ("docker", ("podman",), "docker"),
    ],
)
def test_resolve_cli(requested, installed, chosen):
    assert resolve_cli(requested, which=which_of(*installed)) == chosen


def test_unknown_cli_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown container CLI 'nerdctl'.*docker, podman"):
        resolve_cli("nerdctl")


@pytest.mark.parametrize(
    ("text", "value"), [("all", "all"), ("NONE", "none"), ("0", "0"), (" 0, 1 ", "0,1"), ("01", "1")]
)
def test_parse_gpus(text, value):
    assert parse_gpus(text) == value


@pytest.mark.parametrize("text", ["", "some", "0,", "-1", "0;1", "gpu0"])
def test_bad_gpus(text):
    with pytest.raises(UsageError, match="all, none or GPU indexes"):
        parse_gpus(text)


def test_podman_removes_without_the_ten_second_grace():
    assert remove_args("podman") == ["rm", "--force", "--time=0"]
    assert remove_args("docker") == ["rm", "--force"]


# What the runtimes print when a GPU request cannot be served (Docker 28 without the NVIDIA
# Container Toolkit; Podman 4.3 without a CDI spec, as measured in tests/e2e/test_podman.py).
DOCKER_NO_TOOLKIT = (
    'docker: Error response from daemon: could not select device driver "" with capabilities: '
    "[[gpu]].\nRun 'docker run --help' for more information"
)
PODMAN_NO_CDI = "Error: setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=all"


def test_docker_without_the_toolkit_names_it():
    error = failure("docker", ("run", "--detach", "--gpus=all", "img"), DOCKER_NO_TOOLKIT)
    assert isinstance(error, UsageError)
    assert "NVIDIA Container Toolkit" in str(error) and "--gpus none" in str(error)
    assert "\n" not in str(error)


def test_podman_without_cdi_names_nvidia_ctk():
    error = failure(
        "podman",
        ("run", "--device=nvidia.com/gpu=0", "--device=nvidia.com/gpu=1", "img"),
        PODMAN_NO_CDI.replace("=all", "=0"),
    )
    assert isinstance(error, UsageError)
    assert "nvidia-ctk cdi generate" in str(error) and "nvidia.com/gpu=0, nvidia.com/gpu=1" in str(error)


def test_other_failures_keep_the_first_line():
    error = failure("podman", ("run", "--detach", "img"), "\nError: short-name resolution failed\nmore")
    assert isinstance(error, BenchmarkError) and not isinstance(error, UsageError)
    assert str(error).startswith("`podman run` failed: Error: short-name resolution failed.")
    # Without a GPU flag, a CDI word in the output is not a GPU problem.
    assert not isinstance(failure("docker", ("ps",), DOCKER_NO_TOOLKIT), UsageError)


def test_a_missing_cli_names_the_other():
    with pytest.raises(UsageError, match="the no-such-cli command is not installed"):
        run_cli("no-such-cli", "ps")


def test_cli_reads_kitt_container_cli_and_rejects_bad_gpus():
    from support import clean_environ, run_kitt

    done = run_kitt("engines", "cleanup", env=clean_environ(KITT_CONTAINER_CLI="nerdctl"), timeout=60)
    assert done.returncode == 2 and "unknown container CLI 'nerdctl'" in done.stderr
    done = run_kitt("run", "-m", "m", "-e", "vllm", "-o", "/tmp/kitt-never", "--gpus", "two", timeout=60)
    assert done.returncode == 2 and "argument --gpus: expected all, none or GPU indexes like 0,1" in done.stderr


@pytest.mark.parametrize(
    ("image", "for_podman"),
    [
        ("vllm/vllm-openai:v0.21.0", "docker.io/vllm/vllm-openai:v0.21.0"),
        ("ubuntu:24.04", "docker.io/library/ubuntu:24.04"),
        ("ghcr.io/huggingface/text-generation-inference:3.3.5", "ghcr.io/huggingface/text-generation-inference:3.3.5"),
        ("localhost/kitt-test-vllm:abc", "localhost/kitt-test-vllm:abc"),
        ("registry.local:5000/team/vllm:1", "registry.local:5000/team/vllm:1"),
        ("docker.io/vllm/vllm-openai@sha256:" + "0" * 64, "docker.io/vllm/vllm-openai@sha256:" + "0" * 64),
    ],
)
def test_podman_gets_fully_qualified_images(image, for_podman):
    """Podman refuses short names without a search registry (Debian's registries.conf has none)."""
    assert qualified_image("podman", image) == for_podman
    assert qualified_image("docker", image) == image  # Docker users see the names they wrote
