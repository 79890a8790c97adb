"""One spec per engine, with flags taken from each engine's own documentation.

Default images are pinned release tags of each engine's own image, never ``:latest``, so a run
today and a run next month start the same engine. kitt records the resolved image digest in
config.json. To move a default, change the tag here (README: "Moving the default images"); to
hold an engine still in CI without waiting for a kitt release, pin ``--engine-image``.
"""

from __future__ import annotations

from kitt.engines.base import EngineSpec

VLLM = EngineSpec(
    name="vllm",
    description="vLLM OpenAI-compatible server",
    modes=("docker", "native"),
    image="vllm/vllm-openai:v0.21.0",
    container_port=8000,
    # The image's entrypoint is the API server, so Docker mode passes only the arguments.
    server_args=("--model", "{model}", "--served-model-name", "{served}", "--host", "{host}", "--port", "{port}"),
    native_command=("python3", "-m", "vllm.entrypoints.openai.api_server"),
    docker_flags=("--ipc=host",),
    # VLLM_CACHE_ROOT (torch.compile's graphs under torch_compile_cache/) and Triton's kernels.
    persistent_caches=(("vllm", "/root/.cache/vllm"), ("triton", "/root/.triton")),
    generation_tokens_metric="vllm:generation_tokens_total",
    prompt_tokens_metric="vllm:prompt_tokens_total",
    prefix_cache_hits_metric="vllm:prefix_cache_hits_total",
    prefix_cache_queries_metric="vllm:prefix_cache_queries_total",
    # continuous_usage_stats puts a running token count on every chunk, which tells how many
    # tokens each event carried.
    stream_options={"include_usage": True, "continuous_usage_stats": True},
    exact_length_fields={"ignore_eos": True, "min_tokens": "{output_len}"},
    tokenizer="vllm",
)

SGLANG = EngineSpec(
    name="sglang",
    description="SGLang server",
    modes=("docker", "native"),
    image="lmsysorg/sglang:v0.5.12-cu130",
    container_port=30000,
    server_args=(
        "--model-path",
        "{model}",
        "--served-model-name",
        "{served}",
        "--host",
        "{host}",
        "--port",
        "{port}",
        "--enable-metrics",
    ),
    native_command=("python3", "-m", "sglang.launch_server"),
    docker_command=("python3", "-m", "sglang.launch_server"),
    docker_flags=("--ipc=host", "--shm-size=32g"),
    generation_tokens_metric="sglang:generation_tokens_total",
    prompt_tokens_metric="sglang:prompt_tokens_total",
    # SGLang's prefix cache is not read: its hit-rate metric's name is not verified here (no
    # SGLang build runs on this project's machines, DESIGN.md section 11), so kitt reports no
    # prefix_cache_hit_rate for it and says so; cached_prompt_tokens comes from the usage when given.
    exact_length_fields={"ignore_eos": True},
    tokenizer="vllm",
)

TGI = EngineSpec(
    name="tgi",
    description="Hugging Face Text Generation Inference (Messages API)",
    modes=("docker", "native"),
    image="ghcr.io/huggingface/text-generation-inference:3.3.5",
    container_port=80,
    server_args=("--model-id", "{model}", "--hostname", "{host}", "--port", "{port}"),
    native_command=("text-generation-launcher",),
    docker_flags=("--shm-size=1g",),
    hf_cache_target="/data",
    hf_cache_subdir="hub",
    models_path="/info",
    models_format="tgi",
    generation_tokens_metric="tgi_request_generated_tokens_sum",
    prompt_tokens_metric="tgi_request_input_length_sum",
    api="chat",
    exact_length_fields=None,  # TGI's OpenAI API has no ignore_eos: output lengths are recorded
    tokenizer="tgi",
)

LLAMA_CPP = EngineSpec(
    name="llama-cpp",
    description="llama.cpp llama-server (a GGUF file)",
    modes=("docker", "native"),
    image="ghcr.io/ggml-org/llama.cpp:server-cuda12-b9603",
    container_port=8080,
    server_args=(
        "--model",
        "{model}",
        "--alias",
        "{served}",
        "--host",
        "{host}",
        "--port",
        "{port}",
        "--n-gpu-layers",
        "999",
        "--metrics",
    ),
    native_command=("llama-server",),
    generation_tokens_metric="llamacpp:tokens_predicted_total",
    prompt_tokens_metric="llamacpp:prompt_tokens_total",
    # llama.cpp counts the cached prompt tokens apart from the others (prompt_tokens_total excludes them).
    prefix_cache_hits_metric="llamacpp:prompt_tokens_cached_total",
    prefix_cache_misses_metric="llamacpp:prompt_tokens_total",
    exact_length_fields={"ignore_eos": True},
    model_is_file=True,
    hf_cache_target="/root/.cache/llama.cpp",
    tokenizer="llama.cpp",
)

OLLAMA = EngineSpec(
    name="ollama",
    description="Ollama (the model is pulled, then pre-loaded with keep-alive)",
    modes=("docker", "native"),
    image="ollama/ollama:0.18.4",
    container_port=11434,
    server_args=(),
    native_command=("ollama", "serve"),
    native_env={"OLLAMA_HOST": "{host}:{port}"},
    docker_flags=("--volume=ollama:/root/.ollama",),
    hf_cache_target=None,
    health_path="/api/version",
    models_path="/api/tags",
    models_format="ollama",
    metrics_path=None,
    api="chat",
    exact_length_fields=None,  # Ollama cannot force an output length: lengths are recorded
    needs_model_pull=True,
)

SIM_SERVING_DEFAULTS = (
    "--max-num-seqs",
    "8",
    "--prefill-ms-per-token",
    "0.1",
    "--itl-ms-per-seq",
    "0.5",
    "--kv-cache-tokens",
    "65536",
)

SIM = EngineSpec(
    name="sim",
    description="built-in simulated OpenAI-compatible streaming server (no GPU needed)",
    modes=("sim",),
    # A small GPU deployment by default (kitt/engines/simserver.py says what each number models);
    # --engine-arg overrides any of them, --engine-arg=--no-serving-model turns them all off.
    server_args=("--model", "{served}", "--host", "{host}", "--port", "{port}", *SIM_SERVING_DEFAULTS),
    native_command=("{python}", "-m", "kitt.engines.simserver"),
    # The sim's /metrics speaks vLLM's names and labels, so it is read as vLLM is.
    generation_tokens_metric="vllm:generation_tokens_total",
    prompt_tokens_metric="vllm:prompt_tokens_total",
    prefix_cache_hits_metric="vllm:prefix_cache_hits_total",
    prefix_cache_queries_metric="vllm:prefix_cache_queries_total",
    stream_options={"include_usage": True, "continuous_usage_stats": True},
    exact_length_fields={"ignore_eos": True},
    tokenizer="vllm",
)

OPENAI = EngineSpec(
    name="openai",
    description="an already running OpenAI-compatible endpoint (--endpoint URL)",
    modes=("endpoint",),
    metrics_path="/metrics",
    health_path="/v1/models",
    tokenizer="probe",
)

ALL = (VLLM, SGLANG, TGI, LLAMA_CPP, OLLAMA, SIM, OPENAI)
