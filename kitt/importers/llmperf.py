"""LLMPerf's ``<model>_<in>_<out>_summary.json`` (ray-project/llmperf), in seconds.

Checked against the code that writes it, ray-project/llmperf@f1d6bed: ``metrics_summary`` and
``run_token_benchmark`` in ``token_benchmark_ray.py`` (``LLMPerfResults.to_dict`` flattens it to
``results_<metric>_quantiles_p25``..``_p99``, ``_mean``, ``_min``, ``_max``, ``_stddev``), the
names in ``src/llmperf/common_metrics.py`` and the timing in
``src/llmperf/ray_clients/openai_chat_completions_client.py``; and against files LLMPerf wrote
here. Each file is one repeat of one level, ``num_concurrent_requests``; its
``_individual_responses.json`` (a list) is not a summary and is left alone.

Its TTFT (the first chunk with content) and ``end_to_end_latency_s`` (to the stream's end) are
kitt's. Its ``inter_token_latency_s`` is, per request, the time to the last content chunk over
the number of streamed chunks (every ``data:`` event, the role and closing chunks included):
neither kitt's ITL nor TPOT, so it is kept as ``*_e2el_per_token_ms`` (shown, not gated).
``number_output_tokens`` and ``mean_output_throughput_token_per_s`` count the text as
re-tokenized by a Llama tokenizer, not the server's usage as kitt does: the throughput is
``output_throughput_own_tokens``, not gated. LLMPerf reports no TPOT and no per-gap ITL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kitt.importers.base import Level, Reader, ToolFile, level_name, number, parse_time, request_errors

TOOL = "LLMPerf"
_STATS = {
    "mean": "mean",
    "median": "quantiles_p50",
    "std": "stddev",
    "p90": "quantiles_p90",
    "p95": "quantiles_p95",
    "p99": "quantiles_p99",
}
DEFINITIONS = [
    "LLMPerf's inter-token latency is a request's time to its last chunk over the chunks it streamed "
    "(first token included), so it is shown as e2el_per_token, not as kitt's ITL or TPOT; LLMPerf "
    "reports neither of those.",
    "LLMPerf counts output tokens by re-tokenizing the text with a Llama tokenizer, not the server's "
    "usage: its output throughput is shown as output_throughput_own_tokens, not gated.",
]


def recognise(data: dict[str, Any]) -> bool:
    return "num_concurrent_requests" in data and any(key.startswith("results_ttft_s_") for key in data)


def _seconds(data: dict[str, Any], theirs: str, ours: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for stat, suffix in _STATS.items():
        value = number(data.get(f"results_{theirs}_{suffix}"))
        if value is not None:
            out[f"{stat}_{ours}_ms"] = value * 1000.0
    return out


def read(data: dict[str, Any], path: Path) -> ToolFile:
    metrics: dict[str, float | None] = {}
    metrics |= _seconds(data, "ttft_s", "ttft")
    metrics |= _seconds(data, "end_to_end_latency_s", "e2el")
    metrics |= _seconds(data, "inter_token_latency_s", "e2el_per_token")
    completed = number(data.get("results_num_completed_requests"))
    failed = number(data.get("results_number_errors"))
    per_minute = number(data.get("results_num_completed_requests_per_min"))
    for key, value in (
        ("completed", completed),
        ("failed", failed),
        ("output_throughput_own_tokens", number(data.get("results_mean_output_throughput_token_per_s"))),
        ("request_throughput", per_minute / 60.0 if per_minute is not None else None),
    ):
        if value is not None:
            metrics[key] = value
    name, level = level_name(number(data.get("num_concurrent_requests")), None)
    errors = request_errors(completed, failed)
    return ToolFile(
        tool=TOOL,
        levels=[Level(name, {**metrics, **level}, passed=not errors, errors=errors)],
        timestamp=parse_time(data.get("timestamp")),
        model=str(data.get("model") or "unknown"),
        definitions=list(DEFINITIONS),
    )


READER = Reader("llmperf", recognise, read)
