"""What an engine is: a declarative spec, and the runner interface that starts and stops it.

An :class:`EngineSpec` is data: image, server arguments, ports and paths. Docker mode and native
mode build the server's arguments from the same ``server_args`` template, so a test of one mode's
arguments covers the other's. Runners (docker, native, endpoint) know how to run *any* spec; no
code outside ``kitt.engines`` branches on an engine's name.

Template fields in ``server_args``: ``{model}`` (path or id as the server sees it), ``{served}``
(the name requests use), ``{host}`` and ``{port}`` (where the server listens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class EngineSpec:
    name: str
    description: str
    modes: tuple[str, ...]  # subset of docker, native, sim, endpoint; the first is the default
    image: str | None = None
    container_port: int = 8000
    server_args: tuple[str, ...] = ()
    native_command: tuple[str, ...] = ()  # prefix before server_args in native mode
    docker_command: tuple[str, ...] = ()  # prefix before server_args inside the container
    docker_flags: tuple[str, ...] = ()  # engine-specific docker run flags (shm, ipc, volumes)
    hf_cache_target: str | None = "/root/.cache/huggingface"  # where the HF cache is mounted
    hf_cache_subdir: str = ""  # mount this subfolder of the host cache (TGI wants hub/)
    # Docker mode: (host subfolder, container path) of caches that make the next start faster
    # (compiled graphs, kernels), mounted from ENGINE_CACHE/<engine>/<subfolder> when the run has one.
    persistent_caches: tuple[tuple[str, str], ...] = ()
    health_path: str = "/health"
    models_path: str = "/v1/models"
    models_format: str = "openai"  # openai: data[].id | ollama: models[].name | tgi: model_id
    metrics_path: str | None = "/metrics"
    generation_tokens_metric: str | None = None  # Prometheus counter of generated tokens
    prompt_tokens_metric: str | None = None
    # The prefix cache's Prometheus counters, in tokens: the cached prompt tokens (hits) and every
    # prompt token looked up (queries). An engine that counts the uncached prompt tokens instead
    # of the queries names that counter as ``prefix_cache_misses_metric`` (queries = hits + misses).
    prefix_cache_hits_metric: str | None = None
    prefix_cache_queries_metric: str | None = None
    prefix_cache_misses_metric: str | None = None
    api: str = "completions"  # default API when the suite does not say
    stream_options: dict[str, Any] = field(default_factory=lambda: {"include_usage": True})
    exact_length_fields: dict[str, Any] | None = None  # None: the engine cannot force lengths
    native_env: dict[str, str] = field(default_factory=dict)  # may use {host} and {port}
    needs_model_pull: bool = False  # Ollama: pull, then pre-load with keep-alive
    model_is_file: bool = False  # llama.cpp serves one GGUF file
    # How the engine counts prompt tokens over HTTP (kitt.engines.tokenize.DIALECTS): exact prompt
    # lengths; None: it cannot say (the model's tokenizer.json, else an approximation).
    tokenizer: str | None = None

    @property
    def default_mode(self) -> str:
        return self.modes[0]


@dataclass
class ServerHandle:
    """Where a started engine answers, and what requests must call the model."""

    base_url: str
    served_model: str
    mode: str
    image: str | None = None
    image_digest: str | None = None
    command: list[str] = field(default_factory=list)  # for config.json; never holds secrets
    # What the runner's own start took, in seconds, where it can tell: "pull_s" (the image), "start_s"
    # (container or process launched). Readiness is timed by the caller (kitt.arm).
    startup: dict[str, float] = field(default_factory=dict)


class Runner(Protocol):
    """Starts an engine and guarantees it is gone after ``stop``, whatever happened."""

    spec: EngineSpec

    def start(self) -> ServerHandle: ...

    def exit_status(self) -> int | None:
        """None while the engine runs (or when there is no process to watch), else its exit code."""

    def log_tail(self, lines: int = 50) -> str: ...

    def stop(self) -> None: ...
