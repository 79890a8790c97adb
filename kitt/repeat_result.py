"""A measured repeat's result, from what was measured: a pure function, no I/O.

:class:`kitt.arm.Arm` measures (the requests' records, the engine's Prometheus counters before
and after, the client's CPU time, the GPUs) and hands it all to :func:`build_result`, which turns
it into one :class:`kitt.results.TestResult` with the notes that explain it: a count the server
and the client disagree on, a usage count that was not believed, a saturated client, where the
cache metrics came from. The arm keeps the notes and writes the result set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kitt import results as rs
from kitt import telemetry
from kitt.bench.metrics import compute_metrics
from kitt.bench.records import RequestRecord
from kitt.config import Level, Suite
from kitt.engines.base import EngineSpec

CLIENT_SATURATION_PCT = 90.0
Counters = dict[str, float] | None  # one scrape of the engine's Prometheus endpoint (None: none)


@dataclass
class Built:
    """A repeat's result; ``warnings`` to print and keep in the notes; ``sources``: where a metric
    came from, keyed so that each is said once per run."""

    result: rs.TestResult
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def build_result(
    name: str,
    run_number: int,
    level: Level,
    records: list[RequestRecord],
    *,
    duration: float,
    cpu: tuple[float, float],
    before: Counters,
    after: Counters,
    spec: EngineSpec,
    suite: Suite,
    gpu_summary: Callable[[float], dict[str, float | None]],
    prefixed: bool = False,
) -> Built:
    """The repeat ``name`` run ``run_number``: its metrics from ``records`` over ``duration`` seconds,
    the client's ``cpu`` (seconds, over a window of seconds), the engine's counters ``before`` and
    ``after``, and ``gpu_summary`` of the output tokens; ``prefixed``: the test sends shared prefixes
    (so missing cache counters deserve a word). Failed when more requests failed than the suite allows."""
    metrics: dict[str, float | None] = {}
    if level.kind in ("concurrency", "rate"):  # a trace's load is its timestamps: no level value
        metrics[level.kind if level.kind == "concurrency" else "request_rate"] = level.value
    metrics.update(
        compute_metrics(
            records,
            duration,
            suite.slo or None,
            cpu_seconds=cpu[0],
            cpu_window=cpu[1],
            exact_length=spec.exact_length_fields is not None,
        )
    )
    client_tokens = sum(r.output_tokens for r in records)
    metrics.update(gpu_summary(metrics["total_output_tokens"] or 0))
    server_tokens = telemetry.counter_delta(before, after, spec.generation_tokens_metric)
    if server_tokens is not None:
        metrics["server_generation_tokens"] = server_tokens
        metrics["token_count_mismatch"] = abs(server_tokens - client_tokens)
    counted = [r for r in records if r.ok and r.usage_from_server]
    if counted:  # what the server counted: the lengths that were really sent and generated
        metrics["mean_input_tokens"] = sum(r.prompt_tokens or 0 for r in counted) / len(counted)
        metrics["mean_output_tokens"] = sum(r.output_tokens for r in counted) / len(counted)
    prompt_delta = telemetry.counter_delta(before, after, spec.prompt_tokens_metric)
    if prompt_delta is not None:
        metrics["server_prompt_tokens"] = prompt_delta
    built = Built(rs.TestResult(test_name=name, run_number=run_number, passed=True, metrics=metrics, errors=[]))
    metrics.update(_cache_metrics(built, records, before, after, spec, prefixed))
    total = len(records)
    failed = int(metrics["failed"] or 0)
    if total and failed / total > suite.max_error_rate:
        first_error = next((r.error for r in records if r.error), "unknown error")
        built.result.errors.append(
            f"{failed} of {total} requests failed (max_error_rate {suite.max_error_rate:g}); first error: {first_error}"
        )
        built.result.passed = False
    if metrics.get("token_count_mismatch"):
        built.warnings.append(
            f"{name} run {run_number}: the server counted {server_tokens:.0f} generated tokens, "
            f"the client {client_tokens}; see token_count_mismatch"
        )
    if metrics.get("usage_count_rejected"):
        why = next(r.usage_rejected for r in records if r.usage_rejected)
        built.warnings.append(
            f"{name} run {run_number}: the server's usage count of "
            f"{metrics['usage_count_rejected']:.0f} request(s) was not believable ({why}); their "
            "tokens are counted from the stream's events (see usage_count_rejected)"
        )
    if (metrics["client_cpu_util_pct"] or 0) > CLIENT_SATURATION_PCT:
        built.warnings.append(
            f"{name} run {run_number}: the load generator used {metrics['client_cpu_util_pct']:.0f}% "
            "of a CPU core; latencies may include client overhead"
        )
    return built


def _cache_metrics(
    built: Built, records: list[RequestRecord], before: Counters, after: Counters, spec: EngineSpec, prefixed: bool
) -> dict[str, float]:
    """``prefix_cache_hit_rate`` (the engine's cache counters' change over the repeat: hits over
    queries) and ``cached_prompt_tokens`` (the usage's ``cached_tokens`` summed over the repeat's
    requests, else the hits counter's change). Each omitted when the engine gives nothing to
    compute it from (never a zero that was not measured); ``built.sources`` says where each came from."""
    found: dict[str, float] = {}
    served = any(r.ok for r in records)
    hits, queries = telemetry.prefix_cache_delta(
        before, after, spec.prefix_cache_hits_metric, spec.prefix_cache_queries_metric, spec.prefix_cache_misses_metric
    ) or (None, None)
    if hits is not None and queries:
        found["prefix_cache_hit_rate"] = hits / queries
        counters = (
            f"{spec.prefix_cache_hits_metric} over {spec.prefix_cache_queries_metric}"
            if spec.prefix_cache_queries_metric
            else f"{spec.prefix_cache_hits_metric} over itself plus {spec.prefix_cache_misses_metric}"
        )
        built.sources["rate"] = f"prefix_cache_hit_rate is the engine's {counters}, their change over each repeat"
    elif hits == 0 and queries == 0 and served:
        # Prompts were served and none was looked up (vLLM and the sim count nothing with
        # prefix caching off): the cache served no token, a measured 0.
        found["prefix_cache_hit_rate"] = 0.0
        built.sources["off"] = (
            "the engine's prefix cache counters did not move while prompts were served "
            "(prefix caching off): prefix_cache_hit_rate is 0 for such a repeat"
        )
    cached = [r.cached_tokens for r in records if r.ok and r.cached_tokens is not None]
    if cached:
        found["cached_prompt_tokens"] = float(sum(cached))
        built.sources["usage"] = (
            "cached_prompt_tokens is usage.prompt_tokens_details.cached_tokens summed over each repeat's requests"
        )
    elif "prefix_cache_hit_rate" in found and hits is not None:
        found["cached_prompt_tokens"] = hits
        built.sources["counter"] = (
            f"cached_prompt_tokens is the change of the engine's {spec.prefix_cache_hits_metric}"
            " over each repeat (the responses' usage gave no prompt_tokens_details.cached_tokens)"
        )
    if "prefix_cache_hit_rate" not in found and prefixed:
        why = (
            "it has no metrics endpoint"
            if not spec.metrics_path
            else "kitt reads no cache counter of this engine"
            if not spec.prefix_cache_hits_metric
            else f"no {spec.prefix_cache_hits_metric} on its {spec.metrics_path}"
        )
        built.sources["none"] = (
            f"{spec.name} gave no prefix cache counters ({why}): prefix_cache_hit_rate is not reported"
        )
    return found
