"""Mooncake trace replay end to end on the sim (issue 25, "How it is checked"): the sim's truth log
(kernel receive stamps) shows each request arriving at its timestamp over the speedup, every
prompt of exactly its input_length, and requests that share leading hash_ids served those
blocks from the sim's block-hashed prefix cache, no more and no less."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

from support import run_kitt, unique_model

BLOCK = 32  # the trace's block; the sim hashes 16-token blocks, so a trace block is two of them
SPEEDUP = 2.0
# On this shared 2-core machine (load ~1.8) the median arrival error measured 0.05-0.3 ms over 5
# runs, the largest single one 0.4-7.9 ms (issue target: median under 1 ms); the bound leaves room
# for a loaded machine without hiding a schedule that is off.
MEDIAN_ERROR_MS = 3.0


def make_trace(count: int = 20) -> list[dict]:
    """Requests 200-300 trace-ms apart (100-150 ms at 2x: each earlier prefill has ended and entered
    the cache), drawing their leading hash ids from a small tree so that many share 1-3 blocks."""
    rng = random.Random(5)
    roots = [[1, 2, 3], [1, 2, 7], [4, 5], [1, 8]]
    lines, timestamp = [], 0
    for i in range(count):
        chain = list(rng.choice(roots)[: rng.randint(1, 3)]) + [100 + i]  # then a block of its own
        input_length = BLOCK * (len(chain) - 1) + rng.randint(5, BLOCK + 20)  # never a whole number of blocks
        lines.append({"timestamp": timestamp, "input_length": input_length, "output_length": 3, "hash_ids": chain})
        timestamp += rng.randint(200, 300)
    return lines


def expected_cached(trace: list[dict]) -> list[int]:
    """Per request, the tokens the cache holds for it: its longest run of leading whole blocks
    shared with an earlier request (only whole blocks are shared; the rest of a prompt is its own)."""
    chains = [tuple(r["hash_ids"][: r["input_length"] // BLOCK]) for r in trace]
    out = []
    for i, chain in enumerate(chains):
        best = 0
        for earlier in chains[:i]:
            n = 0
            while n < min(len(chain), len(earlier)) and chain[n] == earlier[n]:
                n += 1
            best = max(best, n)
        out.append(best * BLOCK)
    return out


def test_a_mooncake_trace_is_replayed_on_time_with_exact_prompts_and_shared_blocks(tmp_path: Path) -> None:
    trace = make_trace()
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in trace))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: replay\napi: completions\nrepeats: 1\nwarmup: 0\nseed: 3\ntests:\n"
        f"  - {{name: mc, trace: {{path: {path}, format: mooncake, speedup: {SPEEDUP:g}, "
        f"block_size: {BLOCK}}}}}\n"
    )
    out, log = tmp_path / "r", tmp_path / "truth.json"
    done = run_kitt(
        "run",
        "-m",
        unique_model(),
        "-e",
        "sim",
        "-s",
        str(suite),
        "-o",
        str(out),
        *[
            f"--engine-arg={a}"
            for a in (
                "--ttft-ms=20",
                "--itl-ms=2",
                "--ttft-cv=0",
                "--itl-cv=0",
                "--prefill-ms-per-token=0.01",
                "--enable-prompt-tokens-details",
                f"--log={log}",
            )
        ],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    logged = json.loads(log.read_text())["requests"][1:]  # the first is kitt's readiness probe
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(logged) == len(samples) == len(trace)
    # Send offsets follow timestamp / speedup: the sim's kernel receive stamps against the trace.
    # The level's start is not seen by the server: it is taken as the median of arrival minus due
    # (the first request alone would carry its own lag, a new connection's, into every other).
    due = [r["timestamp"] / SPEEDUP / 1e3 for r in trace]
    start = statistics.median(r["arrival"] - d for r, d in zip(logged, due))
    errors_ms = [abs(r["arrival"] - start - d) * 1e3 for r, d in zip(logged, due)]
    lags = [s["schedule_lag_ms"] for s in samples]
    print(
        f"arrival error median {statistics.median(errors_ms):.3f} ms, max {max(errors_ms):.3f} ms; "
        f"schedule lag median {statistics.median(lags):.3f} ms"
    )  # shown with -s
    assert statistics.median(errors_ms) < MEDIAN_ERROR_MS, errors_ms
    assert max(errors_ms) < 50, errors_ms  # none far off: the order and spacing are the trace's
    assert sorted(s["scheduled_s"] for s in samples) == sorted(round(d, 6) for d in due)
    # Prompts of exactly input_length tokens, as the sim counted them; outputs as asked.
    assert [r["prompt_tokens"] for r in logged] == [r["input_length"] for r in trace]
    by_index = sorted(samples, key=lambda s: s["index"])
    assert [s["prompt_tokens"] for s in by_index] == [r["input_length"] for r in trace]
    assert [s["completion_tokens"] for s in by_index] == [r["output_length"] for r in trace]
    # Shared leading hash ids hit the sim's cache for exactly those blocks.
    expected = expected_cached(trace)
    assert sum(expected) > 0 and [r["cached_tokens"] for r in logged] == expected
    assert [s["cached_tokens"] for s in by_index] == expected  # and the usage's details say the same
    config = json.loads((out / "config.json").read_text())
    entry = config["workload"]["tests"]["mc"]
    assert entry["source"] == "trace" and entry["trace"]["speedup"] == SPEEDUP and entry["trace"]["block_size"] == BLOCK
    assert config["workload"]["length_method"] == "exact, engine /tokenize"
    summary = (out / "summary.md").read_text()
    assert f"Mooncake trace (sha {entry['trace']['sha256'][:6]}), 20 requests" in summary
    assert "mc-trace" in summary


def test_both_arms_of_an_ab_run_replay_identical_chat_requests(tmp_path: Path) -> None:
    """Item 5 of the issue: the same trace, seed and suite give both arms the same requests, here
    through the chat API (the template counted in each exact length), as each arm's sim logged them."""
    trace = make_trace(8)
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in trace))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: replay\napi: chat\nrepeats: 1\nwarmup: 1\nseed: 3\ntests:\n"
        f"  - {{name: mc, trace: {{path: {path}, speedup: 4, block_size: {BLOCK}}}}}\n"
    )
    out = tmp_path / "ab"
    logs = {arm: tmp_path / f"{arm}.json" for arm in ("baseline", "candidate")}
    done = run_kitt(
        "run",
        "-m",
        unique_model(),
        "-e",
        "sim",
        "-s",
        str(suite),
        "-o",
        str(out),
        f"--engine-arg=--log={logs['candidate']}",
        f"--baseline-engine-arg=--log={logs['baseline']}",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sent = {}
    for arm, log in logs.items():
        requests = json.loads(log.read_text())["requests"][1:]  # after the readiness probe
        assert len(requests) == 1 + len(trace)  # the warm-up's one, then the trace
        sent[arm] = [(r["prompt_head"], r["prompt_tokens"]) for r in requests]
        assert [tokens for _, tokens in sent[arm][1:]] == [r["input_length"] for r in trace]
    assert sent["baseline"] == sent["candidate"]
    assert sent["baseline"][0][0] != sent["baseline"][1][0]  # the warm-up's blocks are not the trace's
    fingerprints = {json.loads((out / arm / "config.json").read_text())["workload"]["fingerprint"] for arm in logs}
    assert len(fingerprints) == 1
