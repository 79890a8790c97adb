"""The sim server as a process, over HTTP: tokens, limits, the serving model, the counters."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import math
import subprocess
import sys
from typing import Any, Iterator

import pytest

from kitt import telemetry
from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.workload.spec import RequestSpec
from kitt.config import Level
from kitt.engines.simmodel import PrefixCache, block_keys
from kitt.engines.specs import SIM, VLLM


@contextlib.contextmanager
def sim(*args: str) -> Iterator[http.client.HTTPConnection]:
    """A sim server with ``args`` and an exact schedule; yields a keep-alive connection to it.

    The server stops (and writes its ``--log``, if given) when the block ends."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kitt.engines.simserver",
            "--port",
            "0",
            "--ttft-ms",
            "2",
            "--itl-ms",
            "1",
            "--ttft-cv",
            "0",
            "--itl-cv",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening "), line
        conn = http.client.HTTPConnection("127.0.0.1", int(line.split()[1]), timeout=10)
        yield conn
        conn.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def send(
    conn: http.client.HTTPConnection,
    prompts: list[str],
    streams: int = 1,
    output_len: int = 4,
    api: str = "completions",
) -> list[RequestRecord]:
    """``prompts`` through kitt's own load generator, ``streams`` closed-loop streams."""
    specs = [RequestSpec(index=i, prompt=prompt, max_tokens=output_len) for i, prompt in enumerate(prompts)]
    records: list[RequestRecord] = []
    target = Target(
        base_url=f"http://127.0.0.1:{conn.port}", model="sim-model", api=api, stream_options=dict(SIM.stream_options)
    )
    asyncio.run(
        asyncio.wait_for(
            run_level(target, specs, Level("concurrency", streams), test_name="t", run_number=1, sink=records), 60
        )
    )
    assert [r.error for r in records if r.error] == []
    return sorted(records, key=lambda r: r.index)


def late_ms(logged: dict[str, Any]) -> float:
    """How late a logged request's first event left against the sim's plan (start + TTFT + prefill)."""
    return (logged["events"][0] - logged["start"]) * 1e3 - logged["ttft_ms"] - logged["prefill_ms"]


def scrape(conn: http.client.HTTPConnection) -> dict[str, float]:
    conn.request("GET", "/metrics")
    return telemetry.parse_prometheus(conn.getresponse().read().decode())


def post(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.fixture(scope="module")
def server() -> Iterator[http.client.HTTPConnection]:
    with sim("--max-model-len", "64") as conn:
        yield conn


def test_tokenize_counts_words_and_detokenize_round_trips(server):
    status, answer = post(server, "/tokenize", {"model": "sim-model", "prompt": "  the quick\tBrown fox, 42 "})
    assert status == 200 and answer["count"] == 5 == len(answer["tokens"]) and answer["max_model_len"] == 64
    assert answer["token_strs"] is None
    status, back = post(server, "/detokenize", {"model": "sim-model", "tokens": answer["tokens"]})
    assert status == 200 and back == {"prompt": "the quick Brown fox, 42"}
    _, strs = post(server, "/tokenize", {"prompt": "a b", "return_token_strs": True})
    assert strs["token_strs"] == ["a", "b"] and strs["tokens"] == [0, 1]
    status, error = post(server, "/detokenize", {"tokens": [2**30 + 7]})
    assert status == 400 and error["error"]["type"] == "BadRequestError" and error["error"]["code"] == 400


def test_usage_agrees_with_tokenize_for_completions_chat_and_token_ids(server):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say three words"}]
    _, chat = post(server, "/tokenize", {"messages": messages, "add_generation_prompt": True})
    _, bare = post(server, "/tokenize", {"messages": messages, "add_generation_prompt": False})
    assert chat["count"] == 2 + 3 + 2 * 3 + 2 and bare["count"] == chat["count"] - 2
    status, reply = post(server, "/v1/chat/completions", {"messages": messages, "max_tokens": 3})
    assert status == 200 and reply["usage"]["prompt_tokens"] == chat["count"]

    prompt = "one two three Four five"
    _, tokenized = post(server, "/tokenize", {"prompt": prompt})
    for sent in (prompt, tokenized["tokens"]):
        status, reply = post(server, "/v1/completions", {"prompt": sent, "max_tokens": 2})
        assert status == 200 and reply["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_max_model_len_answers_vllms_400_and_shortens_the_output(server):
    status, error = post(server, "/v1/completions", {"prompt": "w " * 65, "max_tokens": 1})
    assert status == 400 and error["error"]["param"] == "input_tokens"
    assert (
        "maximum context length is 64 tokens" in error["error"]["message"]
        and "65 input tokens" in error["error"]["message"]
    )
    status, error = post(server, "/v1/completions", {"prompt": "w", "max_tokens": 65})
    assert status == 400 and error["error"]["param"] == "max_tokens"
    status, reply = post(server, "/v1/completions", {"prompt": "w " * 60, "max_tokens": 10})
    assert status == 200 and reply["usage"]["completion_tokens"] == 4  # 60 + 4 = max_model_len
    status, error = post(server, "/v1/completions", {"prompt": [5, 2**30 + 3], "max_tokens": 1})
    assert status == 400 and "vocabulary" in error["error"]["message"]


def test_a_repeated_prompt_is_served_from_the_cache_and_its_ttft_drops_by_the_prefill_it_skipped(tmp_path):
    log = tmp_path / "truth.json"
    prompt = " ".join(f"w{i}" for i in range(65))  # 4 full blocks of 16, and one token more
    with sim(
        "--prefill-ms-per-token", "1", "--kv-cache-tokens", "1024", "--enable-prompt-tokens-details", "--log", str(log)
    ) as conn:
        first, second = send(conn, [prompt, prompt])
        status, whole = post(conn, "/v1/completions", {"prompt": prompt, "max_tokens": 2})
        counters = scrape(conn)
    assert status == 200 and whole["usage"]["prompt_tokens_details"] == {"cached_tokens": 64}
    truth = json.loads(log.read_text())["requests"]
    assert [r["cached_tokens"] for r in truth[-3:]] == [0, 64, 64]
    # The plan: base TTFT 2 ms + 1 ms per uncached token; the second skips 64 tokens of prefill.
    assert [r["ttft_ms"] + r["prefill_ms"] for r in truth[:2]] == [2 + 65, 2 + 1]
    for record, logged in zip((first, second), truth):
        assert abs((record.events[0] - record.sent) - (logged["events"][0] - logged["arrival"])) < 1e-3
        assert -0.01 < late_ms(logged) < 25  # its own lateness on shared cores, far below the 64 ms skipped
    assert [r["prompt_tokens"] for r in truth[-3:]] == [65] * 3
    queries, hits = counters["vllm:prefix_cache_queries_total"], counters["vllm:prefix_cache_hits_total"]
    assert (queries, hits) == (3 * 65, 2 * 64)


def test_a_kv_budget_smaller_than_the_working_set_evicts_as_the_model_predicts():
    """Four prompts of 3 blocks cycled 4 times, one at a time: the server's hit counter matches a
    replay through the pure cache, and falls block by block as the budget drops below 12 blocks."""
    prompts = [" ".join(f"p{p}w{i}" for i in range(49)) for p in range(4)] * 4
    measured = {}
    for blocks in (12, 11, 10, 9):
        with sim("--kv-cache-tokens", str(blocks * 16)) as conn:
            send(conn, prompts)
            counters = scrape(conn)
        replay = PrefixCache(16, blocks * 16)
        for prompt in prompts:
            keys = block_keys(prompt.split(), 16)
            replay.lookup(keys, 49)
            replay.insert(keys)
        assert counters["vllm:prefix_cache_queries_total"] == replay.queries == 16 * 49
        measured[blocks] = counters["vllm:prefix_cache_hits_total"]
        assert measured[blocks] == replay.hits
    # Once warm (12 requests), each keeps budget - 9 blocks of its prompt: 3, 2, 1, 0.
    assert measured == {12: 12 * 48, 11: 12 * 32, 10: 12 * 16, 9: 0}


def test_counters_read_as_vllms_and_agree_with_the_client():
    assert SIM.generation_tokens_metric == VLLM.generation_tokens_metric
    assert SIM.prompt_tokens_metric == VLLM.prompt_tokens_metric
    with sim("--max-num-seqs", "2", "--kv-cache-tokens", "256") as conn:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        before = telemetry.parse_prometheus(text)
        records = send(conn, [f"{i} a b c" for i in range(6)], streams=3, output_len=5)
        records += send(conn, [f"{i} a b c" for i in range(2)], streams=1, output_len=3, api="chat")
        after = scrape(conn)
    for name in ("prompt_tokens", "generation_tokens", "request_success", "prefix_cache_queries", "prefix_cache_hits"):
        assert f'vllm:{name}_total{{engine="0",' in text and 'model_name="sim-model"' in text
    assert telemetry.counter_delta(before, after, SIM.generation_tokens_metric) == sum(r.output_tokens for r in records)
    assert telemetry.counter_delta(before, after, SIM.prompt_tokens_metric) == sum(r.prompt_tokens for r in records)
    assert sum(r.prompt_tokens for r in records) == 6 * 4 + 2 * (4 + 3 + 2)
    assert after["vllm:request_success_total"] == 8 and after["vllm:num_requests_running"] == 0
    assert after["vllm:num_requests_waiting"] == 0 and after["vllm:prefix_cache_queries_total"] == 6 * 4 + 2 * 9


def test_a_lost_client_frees_its_slot_and_a_waiting_one_leaves_the_queue():
    """One slot held by a stream that never answers (--stall): the next requests wait, the gauges
    say so, and when the stalled client goes away the queue moves on; a waiting client that goes
    away leaves the queue."""
    with sim("--max-num-seqs", "1", "--stall") as conn:
        port = conn.port
        held = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        held.request("POST", "/v1/completions", json.dumps({"prompt": "a", "max_tokens": 2, "stream": True}))
        quitter = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        quitter.request("POST", "/v1/completions", json.dumps({"prompt": "b", "max_tokens": 2, "stream": True}))
        waiter = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        waiter.request("POST", "/v1/completions", json.dumps({"prompt": "c", "max_tokens": 2}))  # whole: not stalled
        gauges = {}
        for _ in range(200):  # until the server has read all three
            gauges = scrape(conn)
            if gauges["vllm:num_requests_waiting"] == 2:
                break
        assert gauges["vllm:num_requests_running"] == 1 and gauges["vllm:num_requests_waiting"] == 2
        quitter.close()
        for _ in range(200):
            gauges = scrape(conn)
            if gauges["vllm:num_requests_waiting"] == 1:
                break
        assert gauges["vllm:num_requests_running"] == 1 and gauges["vllm:num_requests_waiting"] == 1
        held.close()  # the stalled stream's client goes: its slot goes to the waiter
        response = waiter.getresponse()
        assert response.status == 200 and json.loads(response.read())["usage"]["completion_tokens"] == 2
        waiter.close()
        after = scrape(conn)
    assert after["vllm:num_requests_running"] == after["vllm:num_requests_waiting"] == 0
    assert after["vllm:request_success_total"] == 1


def test_prefix_caching_off_and_no_serving_model_keep_the_counters_at_zero():
    prompt = " ".join(f"w{i}" for i in range(40))
    for flags in (
        ["--kv-cache-tokens", "1024", "--no-enable-prefix-caching"],
        ["--max-num-seqs", "2", "--kv-cache-tokens", "1024", "--no-serving-model"],
    ):
        with sim(*flags) as conn:
            for _ in range(2):
                status, reply = post(conn, "/v1/completions", {"prompt": prompt, "max_tokens": 1})
                assert status == 200 and "prompt_tokens_details" not in reply["usage"]
            counters = scrape(conn)
        assert counters["vllm:prefix_cache_queries_total"] == counters["vllm:prefix_cache_hits_total"] == 0
        assert counters["vllm:prompt_tokens_total"] == 80


def test_slowdown_and_noise_scale_the_whole_model(tmp_path):
    """--slowdown scales base TTFT, prefill and the per-request ITL growth alike; --ttft-cv draws
    the base TTFT around its mean while prefill stays exact."""
    log = tmp_path / "truth.json"
    with sim(
        "--slowdown",
        "2",
        "--prefill-ms-per-token",
        "0.5",
        "--itl-ms-per-seq",
        "1",
        "--ttft-cv",
        "0.2",
        "--log",
        str(log),
    ) as conn:
        records = send(conn, [f"{i} " + "w " * 19 for i in range(6)], streams=2, output_len=3)
    truth = json.loads(log.read_text())["requests"]
    assert all(r["prefill_ms"] == 2 * 0.5 * 20 and r["itl_ms"] == 2 * 1 for r in truth)
    assert len({round(r["ttft_ms"], 6) for r in truth}) == len(truth)  # drawn per request
    assert len(records) == len(truth) == 6
    for logged in truth:
        # Two gaps, each ITL 1 ms x2 plus 1 ms x2 per running request (1 or 2 of them): 4-6 ms in
        # the plan; the sent times differ from the plan by at most the request's logged lateness.
        span = (logged["events"][-1] - logged["events"][0]) * 1e3
        assert 2 * 4 - logged["lag_ms"] - 0.01 <= span <= 2 * 6 + logged["lag_ms"] + 0.01, logged


def test_decode_steps_send_every_event_at_the_end_of_the_step_its_plan_falls_in(tmp_path):
    """--step-ms: events leave at step ends on one clock for all requests (as a batching engine
    sends a step's tokens together), never before their plan's step ends; the plan is unchanged."""
    log = tmp_path / "truth.json"
    step = 5.0
    with sim("--step-ms", str(step), "--itl-ms", str(step), "--log", str(log)) as conn:
        records = send(conn, [f"{i} w w" for i in range(8)], streams=3, output_len=4)
    payload = json.loads(log.read_text())
    origin, truth = payload["step_origin"], payload["requests"]
    assert len(records) == len(truth) == 8
    ends = set()
    for logged in truth:
        plans = [logged["start"] + (logged["ttft_ms"] + i * step) / 1e3 for i in range(len(logged["events"]))]
        dues = [origin + math.ceil((p - origin) / (step / 1e3) - 1e-9) * step / 1e3 for p in plans]
        late = [(sent - due) * 1e3 for sent, due in zip(logged["events"], dues)]
        # Never before its step's end, and as late as the server logged, no later.
        assert min(late) > -1e-6 and max(late) == pytest.approx(logged["lag_ms"], abs=1e-6), (late, logged)
        assert all(due - plan < step / 1e3 for due, plan in zip(dues, plans))
        ends.update(round((due - origin) * 1e3 / step) for due in dues)
    # Three streams of four events each share their step ends: far fewer ends than events.
    assert len(ends) < sum(len(r["events"]) for r in truth) / 2
