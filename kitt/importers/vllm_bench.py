"""``vllm bench serve --save-result`` JSON (with or without ``--save-detailed``).

One file is one repeat of one load level; a file of ``--append-result`` holds one a line. The
metric names are already kitt's (kitt follows vLLM's serving benchmark), so they are taken as they are; the per-request lists that
``--save-detailed`` adds are left out. The level is ``max_concurrency`` (``concurrency-c8``) or,
with a finite ``request_rate``, the rate (``rate-r4``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kitt.importers.base import Reader, ToolFile, Level, level_name, number, parse_time, request_errors
from kitt.thresholds import metric_direction

TOOL = "vllm bench serve"
_KEEP = {
    "completed",
    "failed",
    "duration",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
}


def recognise(data: dict[str, Any]) -> bool:
    return {"completed", "duration", "request_throughput"} <= data.keys() and any(
        key.endswith(("_ttft_ms", "_e2el_ms")) for key in data
    )


def read(data: dict[str, Any], path: Path) -> ToolFile:
    metrics: dict[str, float | None] = {}
    for key, value in data.items():
        # p50_* repeats median_*; the lists of --save-detailed are per request, not metrics.
        if key in _KEEP or key.endswith("_ms") and metric_direction(key) is not None and not key.startswith("p50_"):
            if (figure := number(value)) is not None:
                metrics[key] = figure
    rate = data.get("request_rate")
    rate = float("inf") if rate in (None, "inf", "Infinity") else number(rate)
    name, level = level_name(number(data.get("max_concurrency")), rate)
    errors = request_errors(metrics.get("completed"), metrics.get("failed"))
    return ToolFile(
        tool=TOOL,
        levels=[Level(name, {**metrics, **level}, passed=not errors, errors=errors)],
        timestamp=parse_time(data.get("date"), ("%Y%m%d-%H%M%S",)),
        model=str(data.get("model_id") or "unknown"),
        engine="unknown",
    )


READER = Reader("vllm_bench", recognise, read)
