"""Serving metrics from request records, with vLLM's names and definitions.

Definitions (all latencies in milliseconds, measured from the moment the request was sent):

- TTFT: send to the first token event (an SSE event carrying generated text).
- E2EL: send to the last token event.
- TPOT: per request, ``(e2el - ttft) / (output_tokens - 1)``, for requests with more than one
  output token; output_tokens is the server's usage count when it reports one.
- ITL: the gaps between consecutive token events of a request, pooled over requests. An event
  that carries k tokens contributes one gap, not k (as ``vllm bench serve`` counts it), so with
  chunked streaming ITL describes the gaps between deliveries and TPOT the per-token pace.
- request_throughput = completed / duration, output_throughput = output tokens / duration,
  total_token_throughput = (prompt + output tokens) / duration, where duration runs from the
  first send to the end of the last request of the repeat.
- request_goodput: completed requests meeting every given SLO, per second of duration.
- Multi-turn sessions (records with a ``turn``), informational: ``median_ttft_ms_turn1`` and
  ``median_ttft_ms_later`` (the first turns' median TTFT against the later turns', where KV reuse
  shows), ``sessions_cut_by_length`` (sessions ended early because the next turn would not fit
  the model's context) and ``turns_not_sent`` (turns of sessions ended early: by a failed turn,
  the context, or the level's time; not failures of the engine).

Statistics: mean, median, std (population), p90/p95/p99 with linear interpolation, as numpy does.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from kitt.bench.records import RequestRecord

STATS = ("mean", "median", "std", "p90", "p95", "p99")


def summarize(values: Iterable[float], name: str) -> dict[str, float | None]:
    """``{mean,median,std,p90,p95,p99}_<name>_ms`` from values in seconds (None when empty)."""
    arr = np.fromiter(values, dtype=float) * 1e3
    if arr.size == 0:
        return {f"{stat}_{name}_ms": None for stat in STATS}
    p90, p95, p99 = np.percentile(arr, [90, 95, 99])
    return {
        f"mean_{name}_ms": float(arr.mean()),
        f"median_{name}_ms": float(np.median(arr)),
        f"std_{name}_ms": float(arr.std()),
        f"p90_{name}_ms": float(p90),
        f"p95_{name}_ms": float(p95),
        f"p99_{name}_ms": float(p99),
    }


def request_latencies(record: RequestRecord) -> tuple[float, float, float | None, list[float]]:
    """(ttft, e2el, tpot or None, itl gaps) in seconds for a successful record."""
    first, last = record.events[0], record.events[-1]
    ttft = first - record.sent
    e2el = last - record.sent
    tokens = record.output_tokens
    tpot = (e2el - ttft) / (tokens - 1) if tokens > 1 else None
    gaps = [b - a for a, b in zip(record.events, record.events[1:])]
    return ttft, e2el, tpot, gaps


def compute_metrics(
    records: list[RequestRecord],
    duration: float,
    slo_ms: dict[str, float] | None = None,
    *,
    cpu_seconds: float | None = None,
    cpu_window: float | None = None,
    exact_length: bool = False,
) -> dict[str, float | None]:
    """Metrics of one repeat at one load level. Warmup records must already be excluded.

    ``cpu_seconds`` is the client's own CPU time (kitt's whole process) over ``cpu_window`` seconds
    of wall time (default ``duration``): client_cpu_util_pct is their ratio, 100 per busy core;
    ``exact_length``: the engine was asked for exact output lengths, so count the misses.
    """
    ok = [r for r in records if r.ok]
    failed = len(records) - len(ok)
    ttfts: list[float] = []
    e2els: list[float] = []
    tpots: list[float] = []
    itls: list[float] = []
    good = 0
    for record in ok:
        ttft, e2el, tpot, gaps = request_latencies(record)
        ttfts.append(ttft)
        e2els.append(e2el)
        itls.extend(gaps)
        if tpot is not None:
            tpots.append(tpot)
        if slo_ms and _meets_slo(ttft, tpot, e2el, slo_ms):
            good += 1
    output_tokens = sum(r.output_tokens for r in ok)
    input_tokens = sum(r.prompt_tokens or 0 for r in ok)
    lags = [(r.sent - r.scheduled) for r in records if r.sent]
    per_second = (lambda x: x / duration) if duration > 0 else (lambda x: 0.0)
    metrics: dict[str, float | None] = {
        "completed": float(len(ok)),
        "failed": float(failed),
        "duration": duration,
        "total_input_tokens": float(input_tokens),
        "total_output_tokens": float(output_tokens),
        "request_throughput": per_second(len(ok)),
        "output_throughput": per_second(output_tokens),
        "total_token_throughput": per_second(input_tokens + output_tokens),
    }
    if slo_ms:
        metrics["request_goodput"] = per_second(good)
    for name, values in (("ttft", ttfts), ("tpot", tpots), ("itl", itls), ("e2el", e2els)):
        metrics.update(summarize(values, name))
    if cpu_seconds is not None:
        metrics["client_cpu_seconds"] = cpu_seconds
        window = duration if cpu_window is None else cpu_window
        metrics["client_cpu_util_pct"] = 100.0 * cpu_seconds / window if window > 0 else None
    # Requests whose usage count was not believed (kitt.bench.loadgen.parse_events), and complete
    # requests whose engine held all their text back: counted, so the results say so.
    metrics["usage_count_rejected"] = float(sum(1 for r in records if r.usage_rejected))
    metrics["completed_without_text"] = float(sum(1 for r in ok if r.text_withheld))
    if exact_length:
        metrics["output_len_mismatch"] = float(sum(1 for r in ok if r.output_tokens != r.requested_output_tokens))
    if any(r.turn is not None for r in records):
        metrics.update(session_metrics(records))
    if lags:
        lag_ms = np.asarray(lags) * 1e3
        metrics["mean_schedule_lag_ms"] = float(lag_ms.mean())
        metrics["p99_schedule_lag_ms"] = float(np.percentile(lag_ms, 99))
    return metrics


def session_metrics(records: list[RequestRecord]) -> dict[str, float | None]:
    """The multi-turn split (see the module's definitions): first-turn against later-turn TTFT."""
    first = [r.events[0] - r.sent for r in records if r.ok and r.turn == 1]
    later = [r.events[0] - r.sent for r in records if r.ok and r.turn is not None and r.turn > 1]
    return {
        "median_ttft_ms_turn1": float(np.median(first)) * 1e3 if first else None,
        "median_ttft_ms_later": float(np.median(later)) * 1e3 if later else None,
        "sessions_cut_by_length": float(sum(1 for r in records if r.session_end == "length")),
        "turns_not_sent": float(sum(r.turns_not_sent for r in records)),
    }


def _meets_slo(ttft: float, tpot: float | None, e2el: float, slo_ms: dict[str, float]) -> bool:
    checks = {"ttft_ms": ttft, "tpot_ms": tpot if tpot is not None else 0.0, "e2el_ms": e2el}
    return all(checks[key] * 1e3 <= limit for key, limit in slo_ms.items())
