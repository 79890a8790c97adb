"""The exact `docker run` line for each engine, checked against that engine's documented flags.

The flags each engine documents for its container (its own docs' `docker run` examples):
- vLLM: image entrypoint is the OpenAI server; --ipc=host; HF cache at /root/.cache/huggingface;
  --model, --host, --port 8000.
- SGLang: `python3 -m sglang.launch_server --model-path ... --host 0.0.0.0 --port 30000`; --ipc=host, large shm.
- TGI: `--model-id`, listens on 80 in the container, --shm-size 1g, weights cached under /data.
- llama.cpp: `llama-server -m FILE --host 0.0.0.0 --port 8080 -ngl N`; /metrics needs --metrics.
- Ollama: `ollama/ollama`, port 11434, models kept in a volume at /root/.ollama.
"""

import pytest

from kitt.engines import ENGINES, get_engine, served_name
from kitt.engines.docker import docker_run_command
from kitt.engines.native import native_command

SECRET = "hf_supersecretvalue123"


def build(engine, model="org/model", **kw):
    spec = get_engine(engine)
    args = dict(
        image=spec.image,
        model=model,
        served=served_name(spec, model),
        host_port=18000,
        extra_args=(),
        name=f"kitt-{engine}-r1",
        run_id="r1",
        environ={"HOME": "/home/runner", "HF_TOKEN": SECRET},
        owner_pid=4242,
        owner_host="gpu-host-1",
    )
    args.update(kw)
    return spec, docker_run_command(spec, **args)


def after_image(command, image):
    return command[command.index(image) + 1 :]


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tgi", "llama-cpp", "ollama"])
def test_common_flags(engine):
    spec, command = build(engine)
    assert command[:3] == ["docker", "run", "--detach"]
    assert "--gpus=all" in command
    assert f"--publish=127.0.0.1:18000:{spec.container_port}" in command
    for label in ("kitt.managed=true", "kitt.run-id=r1", "kitt.owner-pid=4242", "kitt.owner-host=gpu-host-1"):
        assert f"--label={label}" in command
    assert f"--name=kitt-{engine}-r1" in command
    assert spec.image in command
    # HF_TOKEN goes by name only: its value is never on a command line.
    assert "--env=HF_TOKEN" in command
    assert not any(SECRET in part for part in command)


def test_no_token_no_env_flag():
    _, command = build("vllm", environ={"HOME": "/h"})
    assert not any("HF_TOKEN" in part for part in command)


def test_vllm():
    spec, command = build("vllm", extra_args=("--tensor-parallel-size", "2"))
    assert "--ipc=host" in command
    assert "--volume=/home/runner/.cache/huggingface:/root/.cache/huggingface" in command
    assert after_image(command, spec.image) == [
        "--model",
        "org/model",
        "--served-model-name",
        "org/model",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--tensor-parallel-size",
        "2",
    ]


def test_sglang():
    spec, command = build("sglang")
    assert "--ipc=host" in command and any(p.startswith("--shm-size=") for p in command)
    assert after_image(command, spec.image)[:3] == ["python3", "-m", "sglang.launch_server"]
    args = after_image(command, spec.image)[3:]
    assert args[args.index("--model-path") + 1] == "org/model"
    assert args[args.index("--port") + 1] == "30000" and args[args.index("--host") + 1] == "0.0.0.0"
    assert "--enable-metrics" in args


def test_tgi():
    spec, command = build("tgi")
    assert "--shm-size=1g" in command
    assert "--volume=/home/runner/.cache/huggingface/hub:/data" in command
    assert after_image(command, spec.image) == ["--model-id", "org/model", "--hostname", "0.0.0.0", "--port", "80"]
    assert "--publish=127.0.0.1:18000:80" in command


def test_llama_cpp_mounts_the_gguf_file(tmp_path):
    gguf = tmp_path / "tiny-q4.gguf"
    gguf.write_bytes(b"GGUF")
    spec, command = build("llama-cpp", model=str(gguf))
    assert f"--volume={gguf}:/models/tiny-q4.gguf:ro" in command
    args = after_image(command, spec.image)
    assert args[args.index("--model") + 1] == "/models/tiny-q4.gguf"
    assert args[args.index("--alias") + 1] == "tiny-q4"
    assert args[args.index("--port") + 1] == "8080" and "--metrics" in args and "--n-gpu-layers" in args


def test_ollama():
    spec, command = build("ollama", model="llama3.2:1b")
    assert "--volume=ollama:/root/.ollama" in command
    assert after_image(command, spec.image) == []
    assert "--publish=127.0.0.1:18000:11434" in command


def test_local_model_directory_is_mounted_read_only(tmp_path):
    model = tmp_path / "llama-tiny"
    model.mkdir()
    spec, command = build("vllm", model=str(model))
    assert f"--volume={model}:/models/llama-tiny:ro" in command
    args = after_image(command, spec.image)
    assert args[:4] == ["--model", "/models/llama-tiny", "--served-model-name", "llama-tiny"]


def test_hf_home_is_honoured():
    _, command = build("vllm", environ={"HF_HOME": "/mnt/hf"})
    assert "--volume=/mnt/hf:/root/.cache/huggingface" in command


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tgi", "llama-cpp"])
def test_native_and_docker_share_the_argument_template(engine):
    """Only host and port differ between the modes, so the vLLM CPU test covers Docker's arguments too."""
    spec, command = build(engine, extra_args=("--x", "1"))
    native = native_command(spec, model="org/model", served="org/model", port=18000, extra_args=("--x", "1"))
    docker_args = after_image(command, spec.image)[len(spec.docker_command) :]
    native_args = native[len(spec.native_command) :]
    swap = {"0.0.0.0": "127.0.0.1", str(spec.container_port): "18000"}
    assert [swap.get(a, a) for a in docker_args] == native_args


def test_every_engine_with_docker_mode_has_a_pinned_image():
    for spec in ENGINES.values():
        if "docker" in spec.modes:
            assert spec.image, spec.name
            name, _, tag = spec.image.rpartition(":")
            assert "/" in name and tag and tag != "latest", spec.image
            assert any(ch.isdigit() for ch in tag), f"{spec.image}: the tag names no release"


# ---------------------------------------------------------------- podman, and the GPU flags


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tgi", "llama-cpp", "ollama"])
def test_podman_takes_the_same_command_with_cdi_gpus(engine):
    spec, docker_line = build(engine)
    _, podman_line = build(engine, cli="podman")
    assert podman_line[:3] == ["podman", "run", "--detach"]
    assert "--device=nvidia.com/gpu=all" in podman_line
    # Podman 4 accepts --gpus and silently ignores it: it must never be passed.
    assert not any(part.startswith("--gpus") for part in podman_line)
    swap = {"--gpus=all": "--device=nvidia.com/gpu=all", "docker": "podman"}
    assert [swap.get(part, part) for part in docker_line] == podman_line


def test_podman_runner_names_the_registry():
    from kitt.engines.docker import DockerRunner

    runner = DockerRunner(
        get_engine("vllm"),
        image="vllm/vllm-openai:v0.21.0",
        model="m",
        served="m",
        port=18000,
        extra_args=(),
        run_id="r1",
        cli="podman",
        gpus="none",
    )
    assert runner.image == "docker.io/vllm/vllm-openai:v0.21.0" and runner.image in runner.command
    docker = DockerRunner(
        get_engine("vllm"),
        image="vllm/vllm-openai:v0.21.0",
        model="m",
        served="m",
        port=18000,
        extra_args=(),
        run_id="r1",
    )
    assert docker.image == "vllm/vllm-openai:v0.21.0" and docker.command[0] == "docker"


@pytest.mark.parametrize(
    ("cli", "gpus", "flags"),
    [
        ("docker", "all", ["--gpus=all"]),
        ("docker", "0,1", ['--gpus="device=0,1"']),
        ("docker", "2", ['--gpus="device=2"']),  # an index, not docker's "any 2 GPUs"
        ("docker", "none", []),
        ("podman", "all", ["--device=nvidia.com/gpu=all"]),
        ("podman", "0,1", ["--device=nvidia.com/gpu=0", "--device=nvidia.com/gpu=1"]),
        ("podman", "none", []),
    ],
)
def test_gpu_flags(cli, gpus, flags):
    _, command = build("vllm", cli=cli, gpus=gpus)
    gpu_parts = [p for p in command if p.startswith(("--gpus", "--device"))]
    assert gpu_parts == flags


def test_vllm_mounts_its_compile_caches_under_the_engine_cache(tmp_path):
    spec, command = build("vllm", engine_cache=tmp_path / "tool-cache" / "kitt" / "engine-cache")
    root = tmp_path / "tool-cache" / "kitt" / "engine-cache" / "vllm"
    assert f"--volume={root / 'vllm'}:/root/.cache/vllm" in command
    assert f"--volume={root / 'triton'}:/root/.triton" in command
    assert command.index(f"--volume={root / 'vllm'}:/root/.cache/vllm") < command.index(spec.image)
    _, without = build("vllm")  # no engine cache given: nothing extra mounted
    assert not [part for part in without if "/root/.cache/vllm" in part or "/root/.triton" in part]


def test_actions_context_puts_the_engine_cache_under_the_runner_tool_cache(tmp_path):
    from kitt.github.actions_io import ActionsContext

    context = ActionsContext.from_environment({"RUNNER_TOOL_CACHE": str(tmp_path)})
    assert context.engine_cache == tmp_path / "kitt" / "engine-cache"
    assert ActionsContext.from_environment({}).engine_cache is None
