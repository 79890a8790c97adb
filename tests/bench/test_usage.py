"""Issue 30: the server's usage is validated where it enters (kitt.bench.loadgen.parse_events), and
a stream whose engine held its text back but whose usage confirms tokens counts as complete."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kitt.bench.loadgen import MAX_USAGE_TOKENS, check_usage, parse_events
from kitt.bench.metrics import compute_metrics
from kitt.bench.records import RequestRecord
from support import clean_environ, run_kitt


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n"


def record(max_tokens: int = 4) -> RequestRecord:
    return RequestRecord(
        index=0, test_name="t", run_number=1, scheduled=0.0, sent=0.0, requested_output_tokens=max_tokens
    )


def text_stream(texts: list[str], usage: Any, chat: bool = False) -> list[tuple[float, bytes]]:
    lines = []
    for i, text in enumerate(texts):
        choice = {"delta": {"content": text}} if chat else {"text": text}
        lines.append((0.01 * (i + 1), sse({"choices": [choice]})))
    lines.append((0.5, sse({"choices": [], "usage": usage})))
    lines.append((0.51, b"data: [DONE]\n"))
    return lines


# --------------------------------------------------------------------------- counts that are not counts


@pytest.mark.parametrize(
    "completion",
    [-1, -32, 3.0, 4.5, "4", "four", True, False, "", [4], {"n": 4}, MAX_USAGE_TOKENS + 1, 10**15, float("nan")],
)
def test_a_usage_count_that_is_not_a_count_is_ignored(completion: Any) -> None:
    r = record()
    parse_events(text_stream(["a", "b", "c", "d"], {"prompt_tokens": 3, "completion_tokens": completion}), r)
    assert r.ok and r.usage_rejected and "not a count of tokens" in r.usage_rejected
    assert r.output_tokens == 4 and r.usage_from_server is False  # the events stand in
    metrics = compute_metrics([r], 1.0)
    assert metrics["output_throughput"] == 4.0 and metrics["usage_count_rejected"] == 1.0


@pytest.mark.parametrize("prompt", [-7, "7", 7.5, True, 10**12])
def test_a_bad_prompt_count_is_ignored_too(prompt: Any) -> None:
    r = record()
    parse_events(text_stream(["a", "b"], {"prompt_tokens": prompt, "completion_tokens": 2}), r)
    assert r.prompt_tokens is None and r.usage_rejected and compute_metrics([r], 1.0)["total_input_tokens"] == 0.0


@pytest.mark.parametrize(
    ("texts", "completion", "max_tokens"),
    [
        (["a", "b", "c", "d"], 400, 4),  # 100 times what the events show
        (["a", "b", "c", "d"], 5, 4),  # more than max_tokens
        (["a", "b", "c", "d"], 2, 4),  # fewer tokens than token events
        (["a", "b", "c", "d"], 0, 4),  # zero with text on the wire
        (["x"] * 32, 3200, 32),
    ],
)
def test_a_count_the_stream_contradicts_is_flagged(texts: list[str], completion: int, max_tokens: int) -> None:
    r = record(max_tokens)
    parse_events(text_stream(texts, {"prompt_tokens": 3, "completion_tokens": completion}), r)
    assert r.ok and r.usage_rejected and f"usage says {completion}" in r.usage_rejected
    assert r.completion_tokens == completion  # kept for inspection in samples.jsonl...
    assert r.output_tokens == len(texts)  # ...but not used
    assert r.to_sample(0.0)["usage_rejected"] == r.usage_rejected


@pytest.mark.parametrize(
    ("texts", "completion", "max_tokens"),
    [
        (["a", "b", "c", "d"], 4, 4),
        (["ab", "cd"], 4, 4),
        (["abcd"], 4, 8),
        (["a", "b"], 2, 0),
    ],
)
def test_believable_counts_are_used(texts: list[str], completion: int, max_tokens: int) -> None:
    r = record(max_tokens)
    parse_events(text_stream(texts, {"prompt_tokens": 3, "completion_tokens": completion}), r)
    assert r.ok and r.usage_rejected is None and r.output_tokens == completion and r.usage_from_server


def test_check_usage_bounds() -> None:
    assert check_usage({"completion_tokens": 0, "prompt_tokens": MAX_USAGE_TOKENS}) == (0, MAX_USAGE_TOKENS, None)
    assert check_usage({}) == (None, None, None)


# --------------------------------------------------------------------------- text held back


@pytest.mark.parametrize(
    ("lines", "tokens", "first"),
    [
        # llama.cpp holding back incomplete UTF-8: every event empty, usage confirms 32 tokens
        (
            [(0.02 * (i + 1), sse({"choices": [{"text": ""}]})) for i in range(32)]
            + [
                (0.9, sse({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 32}})),
                (0.91, b"data: [DONE]\n"),
            ],
            32,
            0.02,
        ),
        # a chat stream: the role delta first (no token), then empty contents, usage in the last chunk
        (
            [(0.01, sse({"choices": [{"delta": {"role": "assistant"}}]}))]
            + [(0.05 + 0.01 * i, sse({"choices": [{"delta": {"content": ""}}]})) for i in range(3)]
            + [(0.2, sse({"choices": [{"delta": {}, "finish_reason": "length"}], "usage": {"completion_tokens": 3}}))],
            3,
            0.05,
        ),
        # two multi-byte characters over four byte tokens, none completed before the end
        (
            [
                (0.1, sse({"choices": [{"text": ""}]})),
                (0.2, sse({"choices": [{"text": ""}]})),
                (0.3, sse({"choices": [{"text": "", "finish_reason": "length"}], "usage": {"completion_tokens": 4}})),
            ],
            4,
            0.1,
        ),
    ],
)
def test_a_stream_whose_text_was_held_back_is_complete(
    lines: list[tuple[float, bytes]], tokens: int, first: float
) -> None:
    r = record(max_tokens=64)
    parse_events(lines, r)
    assert r.ok and r.error is None and r.text_withheld and r.usage_rejected is None
    assert r.events[0] == first  # TTFT runs to the first event that carried a choice
    assert r.output_tokens == tokens
    metrics = compute_metrics([r], 1.0)
    assert metrics["completed"] == 1.0 and metrics["completed_without_text"] == 1.0
    assert metrics["median_ttft_ms"] == pytest.approx(first * 1e3)


@pytest.mark.parametrize(
    "lines",
    [
        [(0.1, sse({"choices": [{"text": ""}]})), (0.2, sse({"choices": [], "usage": {"completion_tokens": 0}}))],
        [(0.1, sse({"choices": [{"text": ""}]})), (0.2, b"data: [DONE]\n")],  # no usage at all
        [(0.1, sse({"choices": [{"text": ""}]})), (0.2, sse({"choices": [], "usage": {"completion_tokens": -3}}))],
        [(0.1, sse({"choices": [{"text": ""}]})), (0.2, sse({"choices": [], "usage": {"completion_tokens": "9"}}))],
        [(0.2, sse({"choices": [], "usage": {"completion_tokens": 9}}))],  # a count, but no event carried a choice
        [
            (0.1, sse({"choices": [{"delta": {"role": "assistant"}}]})),
            (0.2, sse({"choices": [], "usage": {"completion_tokens": 2}})),
        ],
    ],
)
def test_a_stream_that_really_carried_nothing_still_fails(lines: list[tuple[float, bytes]]) -> None:
    r = record()
    parse_events(lines, r)
    assert not r.ok and r.error == "stream ended without any generated text" and not r.text_withheld


# --------------------------------------------------------------------------- end to end, on the sim


@pytest.mark.parametrize(
    ("engine_arg", "check"),
    [
        ("--withhold-text=2", lambda m: m["completed"] == 8 and m["failed"] == 0 and m["completed_without_text"] == 4),
        ("--usage-completion=-5", lambda m: m["usage_count_rejected"] == 8 and m["output_throughput"] > 0),
        ('--usage-completion="4"', lambda m: m["usage_count_rejected"] == 8 and m["total_output_tokens"] == 32),
        ("--usage-completion=4000", lambda m: m["usage_count_rejected"] == 8 and m["total_output_tokens"] == 32),
    ],
)
def test_on_the_sim(tmp_path, engine_arg: str, check: Any) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\nrepeats: 1\nwarmup: 0\ntests:\n  - name: t\n    concurrency: [2]\n"
        "    num_requests: 8\n    input_len: 8\n    output_len: 4\n"
    )
    done = run_kitt(
        "run",
        "-m",
        "m",
        "-e",
        "sim",
        "-s",
        str(suite),
        "-o",
        str(tmp_path / "out"),
        f"--engine-arg={engine_arg}",
        env=clean_environ(),
        timeout=120,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["passed"] is True and check(metrics["results"][0]["metrics"]), metrics["results"][0]["metrics"]
    if "usage" in engine_arg:  # flagged in the results and in summary.md, one warning line in the log
        assert "usage_count_rejected" in " ".join(metrics["notes"])
        assert "not believable" in (tmp_path / "out" / "summary.md").read_text()
        assert len([line for line in done.stderr.splitlines() if "not believable" in line]) == 1


def test_cached_prompt_tokens_from_the_usage_details() -> None:
    """usage.prompt_tokens_details.cached_tokens (vLLM with --enable-prompt-tokens-details) is kept
    when it is a count; absent, null or garbage leaves it unknown (issue 25)."""
    for details, expected in (
        ({"cached_tokens": 256}, 256),
        ({"cached_tokens": None}, None),
        (None, None),
        ({"cached_tokens": -3}, None),
        ({"cached_tokens": "256"}, None),
        ([], None),
    ):
        rec = record()
        usage = {"completion_tokens": 2, "prompt_tokens": 300}
        if details is not None:
            usage["prompt_tokens_details"] = details
        parse_events(text_stream(["a", "b"], usage), rec)
        assert rec.cached_tokens == expected and rec.error is None
        assert rec.to_sample(0.0)["cached_tokens"] == expected
