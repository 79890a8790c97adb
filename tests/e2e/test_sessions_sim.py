"""Multi-turn sessions end to end on the sim (issue 25, item 2), as an A/B run of two sim arms:
every later turn's server-counted prompt holds the earlier turn's prompt and the answer the engine
returned, the sim's prefix cache serves the conversation so far, think time is kept, and both arms
send the same sessions turn by turn."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from support import run_kitt, unique_model

THINK_MS = 100
SUITE = (
    "name: conversations\napi: chat\nrepeats: 1\nwarmup: 1\nseed: 5\ntests:\n"
    "  - {name: conv, concurrency: [2], num_requests: 4, input_len: 32, output_len: 8,\n"
    f"     turns: {{count: 3, think_ms: {THINK_MS}}}}}\n"
)
SIM = ["--ttft-ms=20", "--itl-ms=2", "--ttft-cv=0", "--itl-cv=0", "--enable-prompt-tokens-details"]


def read(out: Path) -> tuple[list[dict], dict, dict]:
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return (
        [s for s in samples if not s["warmup"]],
        json.loads((out / "metrics.json").read_text()),
        json.loads((out / "config.json").read_text()),
    )


def test_sessions_carry_the_engines_answers_turn_by_turn_on_both_arms(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "ab"
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
        *[f"--engine-arg={a}" for a in SIM],
        *[f"--baseline-engine-arg={a}" for a in SIM],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    arms = {arm: read(out / arm) for arm in ("baseline", "candidate")}
    for samples, metrics, config in arms.values():
        assert len(samples) == 12 and all(s["error"] is None for s in samples)
        sessions: dict[int, dict[int, dict]] = defaultdict(dict)
        for s in samples:
            sessions[s["session"]][s["turn"]] = s
        assert sorted(sessions) == [0, 1, 2, 3] and all(sorted(t) == [1, 2, 3] for t in sessions.values())
        added = set()
        for turns in sessions.values():
            for k in (1, 2):
                this, following = turns[k], turns[k + 1]
                # The server counted turn k's prompt and its answer inside turn k+1's prompt.
                assert following["prompt_tokens"] >= this["prompt_tokens"] + this["completion_tokens"]
                added.add(following["prompt_tokens"] - this["prompt_tokens"] - this["completion_tokens"])
                # Its cache held turn k's prompt: turn k+1 opens with exactly what turn k sent.
                assert following["cached_tokens"] >= this["prompt_tokens"] // 16 * 16 > 0
                # Think time, from the answer's end to the next send; the send is never early and
                # (a bound that holds on a loaded machine) not seconds late.
                answered = this["sent_s"] + this["end_ms"] / 1e3
                assert abs(following["scheduled_s"] - (answered + THINK_MS / 1e3)) < 1e-4
                assert THINK_MS / 1e3 - 1e-4 <= following["sent_s"] - answered < THINK_MS / 1e3 + 2.0
        # The same new message each turn, and the whole answer (as many tokens as the engine
        # generated, no more, no less) before it: one constant across sessions and turns.
        # The sim counts a word a token and 3 per ChatML message (2 for the generation prompt): a
        # 32-token turn alone is 27 words + 5, so each later turn adds 27 + 3 for its own message and
        # 3 for the answer's, whose words are exactly the engine's completion tokens.
        assert added == {32 + 1}
        result = metrics["results"][0]["metrics"]
        assert result["prefix_cache_hit_rate"] > 0
        assert result["median_ttft_ms_turn1"] > 0 and result["median_ttft_ms_later"] > 0
        assert result["turns_not_sent"] == 0 and result["sessions_cut_by_length"] == 0
        assert config["workload"]["tests"]["conv"]["turns"] == {"count": 3, "think_ms": float(THINK_MS)}
    (base, _, base_config), (cand, _, cand_config) = arms["baseline"], arms["candidate"]
    assert base_config["workload"]["fingerprint"] == cand_config["workload"]["fingerprint"]
    key = lambda s: (s["run_number"], s["session"], s["turn"], s["index"], s["prompt_tokens"])  # noqa: E731
    assert sorted(map(key, base)) == sorted(map(key, cand))
    assert "sessions of 3 turns, think 100 ms" in (out / "candidate" / "summary.md").read_text()


def test_a_dataset_replays_its_conversations_user_turns_over_the_completions_api(tmp_path: Path) -> None:
    """ShareGPT conversations as sessions: their user turns in order, one a turn, each prompt the
    text so far (every earlier turn and the engine's answer to it), never the recorded answers."""
    chats = [
        {
            "conversations": [
                {"from": "human", "value": f"question {n} one " + "word " * 20},
                {"from": "gpt", "value": "recorded " * 6},
                {"from": "human", "value": f"question {n} two " + "more " * 10},
                {"from": "gpt", "value": "recorded " * 4},
                {"from": "human", "value": f"question {n} three"},
            ]
        }
        for n in range(2)
    ]
    data = tmp_path / "chats.json"
    data.write_text(json.dumps(chats))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: replay\napi: completions\nrepeats: 1\nwarmup: 0\nseed: 3\ntests:\n"
        f"  - {{name: replay, concurrency: [2], num_requests: 2, output_len: 8,\n"
        f"     dataset: {{path: {data}, format: sharegpt, sample: order}}, turns: {{count: 5}}}}\n"
    )
    out = tmp_path / "out"
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
        *[f"--engine-arg={a}" for a in SIM],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    samples, metrics, _ = read(out)
    assert sorted((s["session"], s["turn"]) for s in samples) == [(s, t) for s in (0, 1) for t in (1, 2, 3)]
    turns = {(s["session"], s["turn"]): s for s in samples}
    for session in (0, 1):
        assert turns[(session, 1)]["prompt_tokens"] == 23  # "question N one" and 20 words
        for k in (1, 2):
            this, following = turns[(session, k)], turns[(session, k + 1)]
            own = 13 if k == 1 else 3  # turn k+1's own user message, in words
            # The text so far, the engine's answer of completion_tokens words, then the new message.
            assert following["prompt_tokens"] == this["prompt_tokens"] + this["completion_tokens"] + own
            assert following["cached_tokens"] >= this["prompt_tokens"] // 16 * 16
    # Output lengths: the recorded answers' (6 and 4 tokens, counted by the engine), then output_len.
    assert [turns[(0, k)]["requested_output_tokens"] for k in (1, 2, 3)] == [6, 4, 8]
    assert metrics["results"][0]["metrics"]["prefix_cache_hit_rate"] > 0
