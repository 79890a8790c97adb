"""inference-perf's ``summary_lifecycle_metrics.json`` (kubernetes-sigs/inference-perf), in seconds.

Read from inference-perf's published report schema (``load_summary``, ``successes.latency.*``
with ``mean``/``median``/``p90``/``p95``/``p99``, ``successes.throughput``, ``failures``), not from a
file produced here. Each file is one repeat; the level is the requested rate of
``load_summary`` (``rate-r10``).

Its ``time_per_output_token`` is kitt's TPOT ((latency - TTFT) / (tokens - 1)) and its
``inter_token_latency`` holds the gaps between tokens, kitt's ITL; its
``normalized_time_per_output_token`` (latency over tokens, first token included) is kept as
``*_e2el_per_token_ms``, shown and not gated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kitt.importers import Level, Reader, ToolFile, level_name, number, request_errors, stats

TOOL = "inference-perf"
_STATS = {"mean": "mean", "median": "median", "p90": "p90", "p95": "p95", "p99": "p99"}
_LATENCIES = {"time_to_first_token": "ttft", "time_per_output_token": "tpot", "inter_token_latency": "itl",
              "request_latency": "e2el", "normalized_time_per_output_token": "e2el_per_token"}  # fmt: skip
_THROUGHPUT = {"requests_per_sec": "request_throughput", "output_tokens_per_sec": "output_throughput",
               "total_tokens_per_sec": "total_token_throughput"}  # fmt: skip
DEFINITIONS = ["inference-perf's normalized time per output token (latency over tokens, first token included) "
               "is shown as e2el_per_token, not gated; its time per output token is kitt's TPOT."]  # fmt: skip


def recognise(data: dict[str, Any]) -> bool:
    successes = data.get("successes")
    return "load_summary" in data and isinstance(successes, dict) and isinstance(successes.get("latency"), dict)


def read(data: dict[str, Any], path: Path) -> ToolFile:
    successes, failures, load = data["successes"], data.get("failures") or {}, data.get("load_summary") or {}
    metrics: dict[str, float | None] = {}
    for theirs, ours in _LATENCIES.items():
        metrics |= stats(successes["latency"].get(theirs), ours, _STATS, scale=1000.0)
    for theirs, ours in _THROUGHPUT.items():
        if (value := number((successes.get("throughput") or {}).get(theirs))) is not None:
            metrics[ours] = value
    completed, failed = number(successes.get("count")), number(failures.get("count"))
    metrics |= {k: v for k, v in (("completed", completed), ("failed", failed)) if v is not None}
    name, level = level_name(None, number(load.get("requested_rate")))
    errors = request_errors(completed, failed)
    return ToolFile(tool=TOOL, levels=[Level(name, {**metrics, **level}, passed=not errors, errors=errors)],
                    definitions=list(DEFINITIONS))  # fmt: skip


READER = Reader("inference_perf", recognise, read)
