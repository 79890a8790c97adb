"""Metric maths against timelines computed by hand, chunked events included."""

import math

import pytest

from kitt.bench.loadgen import parse_events
from kitt.bench.metrics import compute_metrics, summarize
from kitt.bench.records import RequestRecord


def record(sent, events, *, tokens=None, prompt=10, event_tokens=None, error=None, scheduled=None):
    r = RequestRecord(index=0, test_name="t-c1", run_number=1, scheduled=sent if scheduled is None else scheduled)
    r.sent = sent
    r.events = list(events)
    r.completion_tokens = tokens
    r.prompt_tokens = prompt
    r.event_tokens = event_tokens
    r.error = error
    r.end = events[-1] if events else sent
    return r


def test_single_token_events_match_vllm_definitions():
    # Sent at 0; tokens at 100, 110, 125, 145 ms.
    r = record(0.0, [0.100, 0.110, 0.125, 0.145], tokens=4)
    m = compute_metrics([r], duration=0.2)
    assert m["median_ttft_ms"] == pytest.approx(100.0)
    assert m["median_e2el_ms"] == pytest.approx(145.0)
    # TPOT = (e2el - ttft) / (tokens - 1) = 45 / 3
    assert m["median_tpot_ms"] == pytest.approx(15.0)
    # ITL gaps 10, 15, 20
    assert m["mean_itl_ms"] == pytest.approx(15.0)
    assert m["median_itl_ms"] == pytest.approx(15.0)
    assert m["std_itl_ms"] == pytest.approx(math.sqrt((25 + 0 + 25) / 3))
    assert m["p99_itl_ms"] == pytest.approx(10 + (20 - 10) * 0.99)  # numpy's linear interpolation


def test_chunked_events_count_one_gap_per_event_and_tpot_per_token():
    # Two events carrying 3 tokens each (speculative decoding style), 6 tokens in all.
    r = record(1.0, [1.050, 1.080], tokens=6, event_tokens=[3, 3])
    m = compute_metrics([r], duration=0.1)
    assert m["median_ttft_ms"] == pytest.approx(50.0)
    assert m["mean_itl_ms"] == pytest.approx(30.0)  # one gap, not three
    assert m["median_tpot_ms"] == pytest.approx(30.0 / 5)  # per token: (80 - 50) / (6 - 1)
    assert m["total_output_tokens"] == 6


def test_throughputs_goodput_and_failures():
    ok_fast = record(0.0, [0.010, 0.020], tokens=2, prompt=5)
    ok_slow = record(0.0, [0.300, 0.400], tokens=2, prompt=5)
    failed = record(0.0, [], error="HTTP 500: boom")
    m = compute_metrics([ok_fast, ok_slow, failed], duration=2.0, slo_ms={"ttft_ms": 100})
    assert m["completed"] == 2 and m["failed"] == 1
    assert m["request_throughput"] == pytest.approx(1.0)
    assert m["output_throughput"] == pytest.approx(2.0)
    assert m["total_token_throughput"] == pytest.approx(7.0)
    assert m["request_goodput"] == pytest.approx(0.5)  # only the fast one meets TTFT <= 100 ms


def test_single_token_requests_have_no_tpot_and_no_itl():
    m = compute_metrics([record(0.0, [0.05], tokens=1)], duration=1.0)
    assert m["median_tpot_ms"] is None
    assert m["median_itl_ms"] is None
    assert m["median_ttft_ms"] == pytest.approx(50.0)


def test_schedule_lag_is_reported():
    late = record(0.010, [0.05], tokens=1, scheduled=0.0)
    m = compute_metrics([late], duration=1.0)
    assert m["mean_schedule_lag_ms"] == pytest.approx(10.0)


def test_summarize_empty_is_none():
    assert all(v is None for v in summarize([], "ttft").values())


def sse(obj):
    import json

    return b"data: " + json.dumps(obj).encode() + b"\n"


def test_parse_events_ignores_role_empty_and_usage_chunks():
    lines = [
        (0.01, sse({"choices": [{"delta": {"role": "assistant", "content": ""}}]})),  # role-only
        (0.02, sse({"choices": [{"delta": {}}]})),  # empty delta
        (
            0.03,
            sse({"choices": [{"delta": {"content": "Hel"}}], "usage": {"prompt_tokens": 7, "completion_tokens": 1}}),
        ),
        (
            0.05,
            sse(
                {"choices": [{"delta": {"content": "lo there"}}], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}
            ),
        ),
        (0.06, sse({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})),  # usage-only
        (0.07, b"data: [DONE]\n"),
    ]
    r = RequestRecord(index=0, test_name="t", run_number=1, scheduled=0.0)
    parse_events(lines, r)
    assert r.events == [0.03, 0.05]  # the TTFT clock starts at the first text, not the role delta
    assert r.event_tokens == [1, 2]
    assert (r.prompt_tokens, r.completion_tokens, r.usage_from_server) == (7, 3, True)
    assert r.error is None


def test_parse_events_without_usage_counts_events_and_flags_bad_data():
    lines = [
        (0.1, sse({"choices": [{"text": "a"}]})),
        (0.2, b"data: {not json\n"),
        (0.3, sse({"choices": [{"text": "b"}]})),
    ]
    r = RequestRecord(index=0, test_name="t", run_number=1, scheduled=0.0)
    parse_events(lines, r)
    assert r.events == [0.1, 0.3]
    assert r.output_tokens == 2 and r.usage_from_server is False
    assert r.error and "malformed" in r.error


def test_stream_without_text_is_an_error():
    r = RequestRecord(index=0, test_name="t", run_number=1, scheduled=0.0)
    parse_events([(0.1, sse({"choices": [], "usage": {"completion_tokens": 0}}))], r)
    assert not r.ok and "without any generated text" in r.error


def test_client_cpu_and_output_length_misses_are_metrics_of_the_repeat():
    exact, short = record(0.0, [0.1, 0.2], tokens=2), record(0.0, [0.1], tokens=1)
    exact.requested_output_tokens = short.requested_output_tokens = 2
    m = compute_metrics([exact, short], duration=2.0, cpu_seconds=0.5, exact_length=True)
    assert m["client_cpu_seconds"] == 0.5 and m["client_cpu_util_pct"] == pytest.approx(25.0)
    assert m["output_len_mismatch"] == 1.0
    plain = compute_metrics([exact], duration=2.0)
    assert "output_len_mismatch" not in plain and "client_cpu_seconds" not in plain
