"""kitt.workload.traces: trace files read and checked, their schedule, prompts of exact lengths
whose shared leading hash ids are identical leading token blocks (issue 25, trace replay)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pytest

from kitt.config import Overrides, apply_overrides, parse_suite, suite_to_dict
from kitt.errors import UsageError
from kitt.report.sentences import sent_line
from kitt.workload.identity import workload_record
from kitt.workload.traces import TraceSpec, build_requests, read_trace
from test_compare import result_set


class Pieces:
    """A tokenizer that is not one token a word: BOS, each digit a token, 'th' words two tokens."""

    method = "exact, test"
    max_model_len = None

    def tokens(self, prompt: str) -> list[str]:
        out = ["<s>"]
        for word in prompt.split():
            if word.isdigit():
                out += list(word)
            elif "th" in word:
                out += [word + "#1", word + "#2"]
            else:
                out.append(word)
        return out

    def count(self, prompts: Sequence[str]) -> list[int]:
        return [len(self.tokens(p)) for p in prompts]


def write(path: Path, lines: list[dict | str]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def mooncake(ts: float, inp: int, out: int, hashes: list[int]) -> dict:
    return {"timestamp": ts, "input_length": inp, "output_length": out, "hash_ids": hashes}


TRACE = [
    mooncake(0, 40, 5, [1, 2, 3]),
    mooncake(250, 33, 6, [1, 2, 4]),
    mooncake(250, 20, 7, [1, 9]),
    mooncake(1000, 16, 3, [1]),
    mooncake(1600, 25, 2, [5, 2, 3]),
]


def test_prompts_are_exact_and_share_exactly_their_common_leading_blocks(tmp_path: Path) -> None:
    spec = read_trace(TraceSpec(str(write(tmp_path / "t.jsonl", TRACE)), block_size=8))
    counter = Pieces()
    fitted = build_requests(spec, 5, seed=3, salt="replay-trace:1", counter=counter)
    assert fitted.inexact == 0
    texts = [r.text for r in fitted.requests]
    assert counter.count(texts) == [40, 33, 20, 16, 25]  # exact, as the engine counts (BOS included)
    assert [r.input_len for r in fitted.requests] == [40, 33, 20, 16, 25]
    assert [r.max_tokens for r in fitted.requests] == [5, 6, 7, 3, 2]
    toks = [counter.tokens(t) for t in texts]

    def common(a: int, b: int) -> int:
        n = 0
        while n < min(len(toks[a]), len(toks[b])) and toks[a][n] == toks[b][n]:
            n += 1
        return n

    # Shared leading hash ids are identical leading blocks of 8 tokens, and no more is shared.
    assert 16 <= common(0, 1) < 24  # [1, 2] shared; 3 against 4 differ
    assert 8 <= common(0, 2) < 16  # [1] shared (request 2's second block is partial: its own)
    assert 8 <= common(0, 3) < 16  # 16 tokens: [1] and its own 8
    assert common(0, 4) < 8  # [5, 2, 3]: 2 and 3 after another first block are other blocks
    # The same seed and salt (both arms of an A/B run) give the same prompts; another repeat others.
    again = build_requests(spec, 5, seed=3, salt="replay-trace:1", counter=counter)
    assert [r.text for r in again.requests] == texts
    other = build_requests(spec, 5, seed=3, salt="replay-trace:2", counter=counter)
    assert not set(r.text for r in other.requests) & set(texts)


def test_without_a_counter_a_block_is_block_size_words(tmp_path: Path) -> None:
    spec = read_trace(TraceSpec(str(write(tmp_path / "t.jsonl", TRACE)), block_size=8))
    requests = build_requests(spec, 2, seed=3, salt="s", counter=None).requests
    words = [r.text.split() for r in requests]
    assert [len(w) for w in words] == [40, 33]
    assert words[0][:16] == words[1][:16] and words[0][16:24] != words[1][16:24]


def test_schedule_is_timestamp_over_speedup_capped_by_count_and_duration(tmp_path: Path) -> None:
    lines = [mooncake(ts, 4, 1, []) for ts in (1000, 1000, 1500, 3000, 9000)]
    spec = read_trace(TraceSpec(str(write(tmp_path / "t.jsonl", lines)), speedup=2.0))
    assert spec.offsets(5) == [0.0, 0.0, 0.25, 1.0, 4.0]  # from the first line's timestamp, in seconds
    assert spec.offsets(3) == [0.0, 0.0, 0.25]
    assert spec.offsets(5, duration_s=1.0) == [0.0, 0.0, 0.25]


def test_timed_traces_take_lengths_or_prompts(tmp_path: Path) -> None:
    lines = [
        {"timestamp_ms": 0, "input_len": 12, "output_len": 3},
        {"timestamp_ms": 5, "prompt": "the world is round", "output_len": 4},
        {"timestamp_ms": 9, "messages": [{"role": "user", "content": "hello there"}], "output_len": 2},
    ]
    spec = read_trace(TraceSpec(str(write(tmp_path / "t.jsonl", lines)), format="timed"))
    counter = Pieces()
    requests = build_requests(spec, 3, seed=1, salt="s", counter=counter).requests
    assert counter.count([r.text for r in requests]) == [12, 6, 4]  # BOS, "the" two tokens
    assert [r.input_len for r in requests] == [12, 6, 4]  # a given prompt is measured
    assert requests[1].text == "the world is round" and requests[2].text == "hello there"
    assert [r.max_tokens for r in requests] == [3, 4, 2]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            mooncake(100, 8, 1, [1]) | {"timestamp": 50},
            "line 2: timestamp 50 ms is before the previous request's 100 ms",
        ),
        (mooncake(200, 0, 1, [1]), "line 2: input_length must be a whole number of tokens >= 1, got 0"),
        (mooncake(200, 8, -3, [1]), "line 2: output_length must be a whole number of tokens >= 1, got -3"),
        (mooncake(200, 8, 1, [1, "a"]), 'line 2: hash_ids must be a list of whole numbers, got [1, "a"]'),
        (mooncake(200, 8, 1, [1, True]), "line 2: hash_ids must be a list of whole numbers"),
        (
            {"timestamp": 200, "input_length": 8, "output_length": 1},
            "line 2: hash_ids must be a list of whole numbers, got nothing",
        ),
        ('{"timestamp": 200, ', "line 2: not a JSON object (mooncake format)"),
        (mooncake(-1, 8, 1, []), "line 2: timestamp must be a number of milliseconds >= 0, got -1"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, line: dict | str, problem: str) -> None:
    path = write(tmp_path / "t.jsonl", [mooncake(100, 8, 1, [1]), line])
    with pytest.raises(UsageError) as caught:
        read_trace(TraceSpec(str(path)))
    assert f"trace {path}, {problem}" in caught.value.message
    assert "\n" not in caught.value.message


def test_a_trace_test_reads_its_file_before_any_engine_and_is_in_the_workload(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", TRACE)
    raw = {
        "name": "s",
        "seed": 4,
        "tests": [{"name": "replay", "trace": {"path": str(path), "speedup": 2, "block_size": 8}}],
    }
    with pytest.raises(UsageError, match="trace replays, which pick their own load"):
        apply_overrides(parse_suite(raw, "s.yaml"), Overrides(concurrency=(4,)))  # no test it could apply to
    suite = apply_overrides(parse_suite(raw, "s.yaml"), Overrides())
    test = suite.tests[0]
    assert test.levels[0].label == "trace" and test.test_name(test.levels[0]) == "replay-trace"
    assert test.num_requests == 5  # the whole trace by default; num_requests caps it
    capped = apply_overrides(parse_suite(raw, "s.yaml"), Overrides(num_requests=2))
    assert capped.tests[0].num_requests == 2
    boxed = apply_overrides(parse_suite(raw, "s.yaml"), Overrides(duration_s=1.0))
    assert boxed.tests[0].num_requests == 5 and boxed.tests[0].duration_s == 1.0  # a time box, not 1,000 requests
    assert boxed.tests[0].trace.offsets(5, 0.6) == [0.0, 0.125, 0.125, 0.5]  # 1600 ms at 2x is past 0.6 s
    data = suite_to_dict(suite)
    assert "input_len" not in data["tests"][0] and data["tests"][0]["levels"] == [{"kind": "trace", "value": 2.0}]
    sent = {"replay": {"inputs": [40, 33], "outputs": [5, 6], "skipped": 0, "inexact": 0}}
    record = workload_record(data, api="completions", method="exact, engine /tokenize", sent=sent)
    entry = record["tests"]["replay"]
    assert entry["source"] == "trace" and not record["plain"]
    assert entry["trace"]["sha256"] == test.trace.sha256 and entry["trace"]["speedup"] == 2.0
    assert entry["trace"]["block_size"] == 8 and entry["trace"]["path"] == str(path)
    # The fingerprint follows the file's content and the speed, not where the file lies.
    moved = write(tmp_path / "elsewhere.jsonl", TRACE)
    raw2 = json.loads(json.dumps(raw))
    raw2["tests"][0]["trace"]["path"] = str(moved)
    same = workload_record(
        suite_to_dict(apply_overrides(parse_suite(raw2, "s.yaml"), Overrides())),
        api="completions",
        method="exact, engine /tokenize",
        sent=sent,
    )
    assert same["fingerprint"] == record["fingerprint"]
    raw2["tests"][0]["trace"]["speedup"] = 3
    faster = workload_record(
        suite_to_dict(apply_overrides(parse_suite(raw2, "s.yaml"), Overrides())),
        api="completions",
        method="exact, engine /tokenize",
        sent=sent,
    )
    assert faster["fingerprint"] != record["fingerprint"]
    line = sent_line(replace(result_set({}), config={"workload": record}))
    assert line.startswith(f"Sent: Mooncake trace (sha {test.trace.sha256[:6]}), 2 requests")
    assert "at 2x speed, blocks of 8 tokens" in line
