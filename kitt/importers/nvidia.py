"""NVIDIA's tools: AIPerf's ``profile_export_aiperf.json`` and genai-perf's ``*_genai_perf.json``.

Both write one file per run: one repeat of one level (``--concurrency`` or ``--request-rate``),
with a block per metric (``{"unit": "ms", "avg": ..., "p50": ..., "p99": ...}``). Both call
``inter_token_latency`` what kitt calls TPOT: per request, (latency - TTFT) / (tokens - 1); it
is read as ``*_tpot_ms``. Neither reports the gaps between tokens (kitt's ITL).

The AIPerf reader is checked against files AIPerf 0.13.0 wrote here. The genai-perf reader is
checked against the code that writes its file (triton-inference-server/perf_analyzer@263c5f6,
the same in the genai-perf 0.0.16 wheel): ``JsonExporter`` in
``genai-perf/genai_perf/export_data/json_exporter.py`` dumps ``Statistics.stats_dict``
(``metrics/statistics.py``: ``unit`` "ms" for times, ``avg``, ``p1``..``p99``, ``min``, ``max``,
``std``; system metrics such as ``request_throughput``, ``output_token_throughput`` and
``request_count`` carry ``avg`` only) and adds ``input_config``, its ``ConfigCommand`` as JSON
(``model_names``, ``perf_analyzer.stimulus`` = ``{"concurrency": N}`` or ``{"request_rate": R}``;
releases before its config files, perf_analyzer@9fd7980 of March 2025, wrote the flat CLI
arguments: ``model``, ``concurrency``, ``request_rate``).
``profile_data_parser/llm_profile_data_parser.py`` computes ``inter_token_latency`` as
(E2EL - TTFT) / (output tokens - 1) per request, with the output tokens counted by genai-perf's
own tokenizer on the text (there is no server-count option): kitt's TPOT, with that count.
"""

from __future__ import annotations


from typing import Any

from kitt.importers.base import Level, Reader, ToolFile, level_name, number, parse_time, request_errors, stats

_STATS = {"mean": "avg", "median": "p50", "std": "std", "p90": "p90", "p95": "p95", "p99": "p99"}
_LATENCIES = {"time_to_first_token": "ttft", "inter_token_latency": "tpot", "request_latency": "e2el"}
_THROUGHPUT = {
    "request_throughput": "request_throughput",
    "output_token_throughput": "output_throughput",
    "total_token_throughput": "total_token_throughput",
    "goodput": "request_goodput",
    "request_goodput": "request_goodput",
}  # genai-perf's name
_UNIT_TO_MS = {"ms": 1.0, "s": 1000.0, "sec": 1000.0, "us": 1e-3, "ns": 1e-6}


def _definitions(tool: str, data: dict[str, Any]) -> list[str]:
    lines = [
        f"{tool}'s inter-token latency is per request (latency - TTFT) / (tokens - 1): shown as kitt's TPOT; "
        f"{tool} reports no per-gap ITL."
    ]
    endpoint = (data.get("input_config") or {}).get("endpoint")
    if tool == "AIPerf" and isinstance(endpoint, dict) and not endpoint.get("use_server_token_count"):
        lines.append(
            "AIPerf counted output tokens with its own tokenizer, not the server's usage as kitt does, so "
            "its TPOT and token rates use that count (`--use-server-token-count` changes it)."
        )
    if tool == "genai-perf":
        lines.append(
            "genai-perf counts output tokens with its own tokenizer (`--tokenizer`), not the server's usage "
            "as kitt does, so its TPOT and token rates use that count."
        )
    return lines


def _metric_blocks(data: dict[str, Any]) -> dict[str, Any]:
    """The metric blocks: at the top level (AIPerf 0.13, genai-perf), or under ``records`` (older AIPerf)."""
    records = data.get("records")
    return records if isinstance(records, dict) else data


def _read(data: dict[str, Any], tool: str) -> ToolFile:
    blocks = _metric_blocks(data)
    metrics: dict[str, float | None] = {}
    for theirs, ours in _LATENCIES.items():
        block = blocks.get(theirs)
        scale = _UNIT_TO_MS.get(str(block.get("unit", "ms")).lower(), 1.0) if isinstance(block, dict) else 1.0
        metrics |= stats(block, ours, _STATS, scale)
    for theirs, ours in _THROUGHPUT.items():
        block = blocks.get(theirs)
        if isinstance(block, dict) and (value := number(block.get("avg"))) is not None:
            metrics[ours] = value
    completed = _count(blocks.get("completed_request_count")) or _count(blocks.get("request_count"))
    failed = _count(blocks.get("error_request_count"))
    if failed is None:
        failed = sum(number(e.get("count")) or 0.0 for e in data.get("error_summary") or [] if isinstance(e, dict))
    if completed is not None:
        metrics["completed"], metrics["failed"] = completed, failed
    config = data.get("input_config") or {}
    load = _load(config)
    name, level = level_name(number(load.get("concurrency")), number(load.get("request_rate", load.get("rate"))))
    errors = request_errors(completed, failed) if completed is not None else []
    if data.get("was_cancelled") is True or data.get("is_complete") is False:
        errors.append(f"the {tool} run was cancelled or did not complete")
    return ToolFile(
        tool=tool,
        levels=[Level(name, {**metrics, **level}, passed=not errors, errors=errors)],
        timestamp=parse_time(data.get("start_time") or data.get("benchmark_start_time")),
        model=_model(config),
        definitions=_definitions(tool, data),
    )


def _load(config: dict[str, Any]) -> dict[str, Any]:
    """The load settings: AIPerf's profiling phase, genai-perf's ``perf_analyzer.stimulus``, or the
    flat input_config of genai-perf releases before its config files."""
    phases = config.get("phases")
    if isinstance(phases, list):
        profiling = [p for p in phases if isinstance(p, dict) and p.get("kind", "profiling") == "profiling"]
        return profiling[-1] if profiling else {}
    analyzer = config.get("perf_analyzer")
    stimulus = analyzer.get("stimulus") if isinstance(analyzer, dict) else None
    return stimulus if isinstance(stimulus, dict) else config


def _count(block: Any) -> float | None:
    return number(block.get("avg")) if isinstance(block, dict) else number(block)


def _model(config: dict[str, Any]) -> str:
    models = config.get("models")
    if isinstance(models, dict) and isinstance(models.get("items"), list) and models["items"]:
        return str((models["items"][0] or {}).get("name") or "unknown")
    names = config.get("model_names") or config.get("model")
    if isinstance(names, list) and names:
        return str(names[0])
    return str(names) if isinstance(names, str) and names else "unknown"


def _is_aiperf(data: dict[str, Any]) -> bool:
    return "aiperf_version" in data


def recognise_genai_perf(data: dict[str, Any]) -> bool:
    block = data.get("time_to_first_token") or data.get("request_latency")
    return isinstance(block, dict) and "avg" in block and "input_config" in data and not _is_aiperf(data)


def recognise_aiperf(data: dict[str, Any]) -> bool:
    blocks = _metric_blocks(data)
    block = blocks.get("time_to_first_token") or blocks.get("request_latency")
    return isinstance(block, dict) and "avg" in block and _is_aiperf(data)


READERS = [
    Reader("aiperf", recognise_aiperf, lambda data, path: _read(data, "AIPerf")),
    Reader("genai_perf", recognise_genai_perf, lambda data, path: _read(data, "genai-perf")),
]
