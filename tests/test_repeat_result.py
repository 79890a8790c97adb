"""kitt.repeat_result: a repeat's result from its records and the engine's counters, with no I/O."""

from __future__ import annotations

from kitt.bench.records import RequestRecord
from kitt.config import Level, parse_suite
from kitt.engines.specs import LLAMA_CPP, OPENAI, VLLM
from kitt.repeat_result import CLIENT_SATURATION_PCT, build_result

SUITE = parse_suite({"name": "s", "max_error_rate": 0.25, "tests": [{"name": "t", "concurrency": [2]}]}, "s.yaml")


def record(
    index: int, *, tokens: int = 4, error: str | None = None, cached: int | None = None, usage: bool = True
) -> RequestRecord:
    sent = 1.0 + index
    events = [] if error else [sent + 0.02 + 0.01 * k for k in range(tokens)]
    return RequestRecord(
        index=index,
        test_name="t-c2",
        run_number=1,
        scheduled=sent,
        sent=sent,
        events=events,
        end=events[-1] if events else sent + 0.01,
        prompt_tokens=None if error else 16,
        cached_tokens=cached,
        completion_tokens=None if error or not usage else tokens,
        usage_from_server=usage and not error,
        requested_output_tokens=tokens,
        error=error,
    )


def build(records, *, before=None, after=None, spec=VLLM, cpu=(0.1, 10.0), prefixed=False, suite=SUITE):
    return build_result(
        "t-c2",
        1,
        Level("concurrency", 2),
        records,
        duration=4.0,
        cpu=cpu,
        before=before,
        after=after,
        spec=spec,
        suite=suite,
        gpu_summary=lambda tokens: {"gpu_energy_j": None},
        prefixed=prefixed,
    )


def test_metrics_from_records_and_counters_and_no_notes_when_all_agree():
    records = [record(i) for i in range(4)]
    before = {"vllm:generation_tokens_total": 100.0, "vllm:prompt_tokens_total": 1000.0}
    after = {"vllm:generation_tokens_total": 116.0, "vllm:prompt_tokens_total": 1064.0}
    built = build(records, before=before, after=after)
    m = built.result.metrics
    assert built.result.passed and built.result.errors == [] and built.warnings == []
    assert m["concurrency"] == 2 and m["completed"] == 4 and m["failed"] == 0 and "gpu_energy_j" in m
    assert m["server_generation_tokens"] == 16 and m["token_count_mismatch"] == 0 and m["server_prompt_tokens"] == 64
    assert m["mean_input_tokens"] == 16 and m["mean_output_tokens"] == 4


def test_a_count_the_server_and_the_client_disagree_on_is_a_warning_not_a_failure():
    built = build(
        [record(i) for i in range(4)],
        before={"vllm:generation_tokens_total": 0.0},
        after={"vllm:generation_tokens_total": 15.0},
    )
    assert built.result.passed and built.result.metrics["token_count_mismatch"] == 1
    assert built.warnings == [
        "t-c2 run 1: the server counted 15 generated tokens, the client 16; see token_count_mismatch"
    ]


def test_more_failures_than_the_suite_allows_fail_the_repeat_with_the_first_error():
    records = [record(0), record(1), record(2, error="HTTP 500: boom"), record(3, error="HTTP 503")]
    built = build(records)
    assert not built.result.passed
    assert built.result.errors == ["2 of 4 requests failed (max_error_rate 0.25); first error: HTTP 500: boom"]
    assert build(records[:3] + [record(3)]).result.passed  # 1 of 4 is within 0.25


def test_a_trace_level_has_no_load_value_and_a_rate_level_its_rate():
    records = [record(i) for i in range(2)]
    trace = build_result(
        "t-trace",
        1,
        Level("trace", 0),
        records,
        duration=2.0,
        cpu=(0.0, 1.0),
        before=None,
        after=None,
        spec=OPENAI,
        suite=SUITE,
        gpu_summary=lambda _: {},
    )
    rate = build_result(
        "t-r4",
        1,
        Level("rate", 4.0),
        records,
        duration=2.0,
        cpu=(0.0, 1.0),
        before=None,
        after=None,
        spec=OPENAI,
        suite=SUITE,
        gpu_summary=lambda _: {},
    )
    assert "concurrency" not in trace.result.metrics and "request_rate" not in trace.result.metrics
    assert rate.result.metrics["request_rate"] == 4.0


def test_a_saturated_client_is_said():
    built = build([record(i) for i in range(2)], cpu=(CLIENT_SATURATION_PCT / 100 * 1.5, 1.0))
    assert any("the load generator used 135% of a CPU core" in w for w in built.warnings)


def test_cache_metrics_from_vllms_counters_and_the_usage_each_say_their_source():
    records = [record(i, cached=8) for i in range(4)]
    before = {"vllm:prefix_cache_hits_total": 0.0, "vllm:prefix_cache_queries_total": 0.0}
    after = {"vllm:prefix_cache_hits_total": 32.0, "vllm:prefix_cache_queries_total": 64.0}
    built = build(records, before=before, after=after)
    assert built.result.metrics["prefix_cache_hit_rate"] == 0.5 and built.result.metrics["cached_prompt_tokens"] == 32
    assert set(built.sources) == {"rate", "usage"}
    without_usage = build([record(i) for i in range(4)], before=before, after=after)
    assert without_usage.result.metrics["cached_prompt_tokens"] == 32 and set(without_usage.sources) == {
        "rate",
        "counter",
    }


def test_caching_off_is_a_measured_zero_and_no_counters_is_no_number():
    zero = {"vllm:prefix_cache_hits_total": 5.0, "vllm:prefix_cache_queries_total": 9.0}
    off = build([record(0)], before=zero, after=dict(zero))
    assert off.result.metrics["prefix_cache_hit_rate"] == 0.0 and off.result.metrics["cached_prompt_tokens"] == 0
    assert set(off.sources) == {"off", "counter"}
    none = build([record(0)], spec=OPENAI, prefixed=True)
    assert "prefix_cache_hit_rate" not in none.result.metrics and "cached_prompt_tokens" not in none.result.metrics
    assert "kitt reads no cache counter of this engine" in none.sources["none"]
    assert build([record(0)], spec=OPENAI).sources == {}  # no shared prefixes: nothing to explain


def test_llama_cpp_counts_its_queries_as_hits_plus_misses():
    spec = LLAMA_CPP
    before = {spec.prefix_cache_hits_metric: 0.0, spec.prefix_cache_misses_metric: 0.0}
    after = {spec.prefix_cache_hits_metric: 30.0, spec.prefix_cache_misses_metric: 90.0}
    built = build([record(0)], before=before, after=after, spec=spec)
    assert built.result.metrics["prefix_cache_hit_rate"] == 0.25
    assert "over itself plus" in built.sources["rate"]
