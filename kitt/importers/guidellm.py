"""GuideLLM's JSON report (``guidellm run --output kind=json,path=...``; checked with GuideLLM 0.8.1).

One file holds ``benchmarks[]``, one per load level (its ``config.strategy``: ``concurrent``
streams, ``constant``/``poisson`` rate, ``synchronous``, ``throughput``); a folder of reports
is a folder of repeats. Figures are read from each metric's ``successful`` distribution.

GuideLLM's names collide with kitt's:

- its ``inter_token_latency_ms`` is per request (last token - first token) / (tokens - 1),
  which is kitt's TPOT, so it is read as ``*_tpot_ms``;
- its ``time_per_output_token_ms`` is (last token - request start) / tokens, TTFT included:
  kept as ``*_e2el_per_token_ms``, shown and never gated;
- it keeps no per-gap times, so there is no kitt ITL;
- its ``request_latency`` (seconds) runs to the end of the response, which kitt's E2EL (to the
  last token) misses by the final ``[DONE]`` event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kitt.importers.base import Level, Reader, ToolFile, level_name, number, parse_time, request_errors, stats

TOOL = "GuideLLM"
_STATS = {"mean": "mean", "median": "median", "std": "std_dev"}
_PERCENTILES = {"p90": "p90", "p95": "p95", "p99": "p99"}
_LATENCIES = {
    "time_to_first_token_ms": ("ttft", 1.0),
    "inter_token_latency_ms": ("tpot", 1.0),
    "request_latency": ("e2el", 1000.0),
    "time_per_output_token_ms": ("e2el_per_token", 1.0),
}
_RATES = {
    "requests_per_second": "request_throughput",
    "output_tokens_per_second": "output_throughput",
    "tokens_per_second": "total_token_throughput",
}
DEFINITIONS = [
    "GuideLLM's inter-token latency is per request (last token - first token) / (tokens - 1): shown as kitt's "
    "TPOT (its percentiles weigh each request by its tokens); its TPOT includes the first token, so it is shown "
    "as e2el_per_token and not gated; it reports no per-gap ITL.",
]


def recognise(data: dict[str, Any]) -> bool:
    benchmarks = data.get("benchmarks")
    return (
        isinstance(benchmarks, list)
        and bool(benchmarks)
        and all(
            isinstance(b, dict) and isinstance(b.get("metrics"), dict) and "time_to_first_token_ms" in b["metrics"]
            for b in benchmarks
        )
    )


def _successful(metric: Any) -> dict[str, Any]:
    block = metric.get("successful") if isinstance(metric, dict) else None
    if not isinstance(block, dict):
        return {}
    return {**block, **(block.get("percentiles") or {})}


def _level(benchmark: dict[str, Any]) -> tuple[str, dict[str, float | None]]:
    strategy = (benchmark.get("config") or {}).get("strategy") or {}
    kind = str(strategy.get("type_") or strategy.get("type") or "throughput")
    if kind == "synchronous":
        return level_name(1.0, None)
    return level_name(number(strategy.get("streams")), number(strategy.get("rate")), unbounded=kind)


def _read_benchmark(benchmark: dict[str, Any]) -> Level:
    metrics_in = benchmark["metrics"]
    metrics: dict[str, float | None] = {}
    for theirs, (ours, scale) in _LATENCIES.items():
        metrics |= stats(_successful(metrics_in.get(theirs)), ours, _STATS | _PERCENTILES, scale)
    for theirs, ours in _RATES.items():
        if (value := number(_successful(metrics_in.get(theirs)).get("mean"))) is not None:
            metrics[ours] = value
    totals = metrics_in.get("request_totals") or {}
    completed, failed = number(totals.get("successful")), number(totals.get("errored"))
    metrics |= {k: v for k, v in (("completed", completed), ("failed", failed)) if v is not None}
    name, level = _level(benchmark)
    errors = request_errors(completed, failed)
    return Level(name, {**metrics, **level}, passed=not errors, errors=errors)


def read(data: dict[str, Any], path: Path) -> ToolFile:
    benchmarks = data["benchmarks"]
    starts = [number((b.get("scheduler_metrics") or {}).get("start_time")) for b in benchmarks]
    first = min((s for s in starts if s is not None), default=None)
    backend = (benchmarks[0].get("config") or {}).get("backend") or {}
    model = backend.get("model") if isinstance(backend, dict) else None
    return ToolFile(
        tool=TOOL,
        levels=[_read_benchmark(b) for b in benchmarks],
        timestamp=parse_time(first),
        model=str(model or "unknown"),
        definitions=list(DEFINITIONS),
    )


READER = Reader("guidellm", recognise, read)
