"""Multi-turn sessions as a workload (issue 25, item 2): the suite's ``turns``, bad input, and the
same sessions turn by turn from the same seed (both arms of an A/B run build them alike)."""

from __future__ import annotations

import pytest

from kitt.config import load_suite, suite_to_dict
from kitt.errors import UsageError
from kitt.workload import identity, plan, sessions
from kitt.workload.datasets import DatasetSpec, read_dataset
from kitt.workload.lengths import Uniform
from kitt.workload.prefixes import PrefixSpec
from kitt.workload.sessions import TurnsSpec

TEST = "tests: [{name: a, input_len: 16, output_len: 4, %s}]\n"


def write(tmp_path, text: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return str(path)


def build(spec: TurnsSpec, salt: str = "a-c2:1", prefix: PrefixSpec | None = None):
    counts = sessions.turn_counts(spec, 5, 7, salt)
    requests = plan.build_level(
        sum(counts),
        input_len=16,
        output_len=4,
        seed=7,
        salt=salt,
        prefix=prefix,
        prefix_texts=["P1 p", "P2 p"] if prefix else None,
        turn_counts=counts,
    )
    return sessions.group(requests, requests, counts, spec, 7, salt)


def test_turns_parse_as_numbers_or_distributions(tmp_path) -> None:
    suite = load_suite(write(tmp_path, TEST % "concurrency: 2, turns: {count: {uniform: [2, 4]}, think_ms: 250}"))
    turns = suite.tests[0].turns
    assert turns == TurnsSpec(Uniform(2, 4), 250.0)
    assert suite_to_dict(suite)["tests"][0]["turns"] == {"count": {"uniform": [2, 4]}, "think_ms": 250.0}
    spread = load_suite(write(tmp_path, TEST % "request_rate: 1, turns: {count: 3, think_ms: {uniform: [100, 900]}}"))
    assert spread.tests[0].turns == TurnsSpec(3, Uniform(100, 900))
    assert load_suite(write(tmp_path, TEST % "concurrency: 1, turns: {count: 2}")).tests[0].turns == TurnsSpec(2, 0.0)


@pytest.mark.parametrize(
    ("turns", "fragment"),
    [
        ("{count: 0}", "suite.tests[0].turns.count: must be a whole number >= 1, got 0"),
        ("{count: -2}", "suite.tests[0].turns.count: must be a whole number >= 1, got -2"),
        ("{count: 2.5}", "suite.tests[0].turns.count: must be a whole number >= 1"),
        ("{count: 3, think_ms: -1}", "suite.tests[0].turns.think_ms: must be a number of milliseconds from 0"),
        ("{count: 3, think_ms: .nan}", "suite.tests[0].turns.think_ms: must be a number of milliseconds from 0"),
        ("{count: 3, think_ms: soon}", "suite.tests[0].turns.think_ms: must be a number, got 'soon'"),
        (
            "{count: 3, think_ms: {uniform: [-5, 10]}}",
            "suite.tests[0].turns.think_ms.uniform[0]: must be a whole number >= 1",
        ),
        ("{think_ms: 5}", "suite.tests[0].turns.count: is missing"),
        ("{count: 3, pause: 5}", "suite.tests[0].turns.pause: unknown key"),
        ("3", "suite.tests[0].turns: must be a mapping {count, think_ms}"),
        ("{count: 1001}", "suite.tests[0].turns.count: must be at most 1,000 turns"),
    ],
)
def test_bad_turns_name_the_field(tmp_path, turns: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        load_suite(write(tmp_path, TEST % f"concurrency: 1, turns: {turns}"))
    assert fragment in str(info.value)


def test_turns_with_a_capacity_search_are_refused(tmp_path) -> None:
    with pytest.raises(UsageError, match="turns: multi-turn sessions run at fixed load levels for now"):
        load_suite(
            write(
                tmp_path,
                "slo: {ttft_ms: 100}\n" + TEST % "capacity: {over: concurrency, min: 1, max: 4}, turns: {count: 2}",
            )
        )


CONVERSATIONS = [
    {
        "conversations": [
            {"from": "system", "value": "be brief"},
            {"from": "human", "value": "first question"},
            {"from": "gpt", "value": "one two three"},
            {"from": "human", "value": "second question"},
            {"from": "gpt", "value": "four five"},
            {"from": "human", "value": "third question"},
        ]
    },
    {"conversations": [{"from": "human", "value": "only question"}, {"from": "gpt", "value": "a b c d e f"}]},
]


def test_a_dataset_session_replays_its_user_turns_in_order_never_its_recorded_answers(tmp_path) -> None:
    import json

    path = tmp_path / "chats.json"
    path.write_text(json.dumps(CONVERSATIONS))
    dataset = read_dataset(DatasetSpec(str(path), format="sharegpt", sample="order"))
    assert dataset.prompts[0].later == (("second question", "four five"), ("third question", None))
    spec = TurnsSpec(5)
    requests, counts = plan.build_sessions(
        3, spec, input_len=16, output_len=Uniform(2, 9), dataset=dataset, seed=1, salt="s"
    )
    assert counts == [3, 1, 3]  # at most the conversation's user turns
    assert [r.prompt for r in requests] == [
        "first question",
        "second question",
        "third question",
        "only question",
        "first question",
        "second question",
        "third question",
    ]
    # Output lengths from the recorded answers (words x 1.3 without a tokenizer), capped by output_len;
    # the answers themselves are never part of what is sent (the engine's own go in between).
    assert [r.max_tokens for r in requests[:2]] == [4, 3] and requests[3].max_tokens == 8
    assert not any(r.history for r in requests)
    # A turn fitting leaves out (past the context) ends its session there.
    fitted = [r for r in requests if r.index != 1]
    built = sessions.group(requests, fitted, counts, spec, 1, "s")
    assert [[t.prompt for t in s.turns] for s in built] == [
        ["first question"],
        ["only question"],
        ["first question", "second question", "third question"],
    ]
    again, _ = plan.build_sessions(3, spec, input_len=16, output_len=Uniform(2, 9), dataset=dataset, seed=1, salt="s")
    assert again == requests


def test_bad_turns_exit_2_in_one_line_before_any_engine_starts(tmp_path) -> None:
    from support import run_kitt, unique_model

    suite = write(tmp_path, TEST % "concurrency: 1, turns: {count: 3, think_ms: -5}")
    done = run_kitt("run", "-m", unique_model(), "-e", "sim", "-s", suite, "-o", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("kitt: error:")]
    assert len(errors) == 1 and "turns.think_ms: must be a number of milliseconds from 0" in errors[0]
    assert "Starting" not in done.stdout + done.stderr and not (tmp_path / "out").exists()


def test_the_same_seed_builds_the_same_sessions_turn_by_turn() -> None:
    spec = TurnsSpec(Uniform(1, 4), Uniform(100, 500))
    first, again = build(spec), build(spec)
    assert first == again
    assert first != build(spec, salt="a-c2:2")  # another level or repeat: other sessions
    for session in first:
        assert len(session.think_s) == len(session.turns) - 1
        assert all(0.1 <= t <= 0.5 for t in session.think_s)
        assert all(not t.history for t in session.turns)  # the load generator fills the history from answers
    assert len({t.index for s in first for t in s.turns}) == sum(len(s.turns) for s in first)


def test_a_shared_prefix_opens_only_a_sessions_first_turn() -> None:
    built = build(TurnsSpec(3), prefix=PrefixSpec(2, 2))
    for session in built:
        assert session.turns[0].prefix in ("P1 p", "P2 p") and session.turns[0].input_len == 18
        assert all(not t.prefix and t.input_len == 16 for t in session.turns[1:])


def test_turns_are_part_of_the_workload_fingerprint(tmp_path) -> None:
    def record(turns: str):
        suite = load_suite(write(tmp_path, TEST % f"concurrency: 1{turns}"))
        return identity.workload_record(suite_to_dict(suite), api="chat", method="exact", sent={})

    plain, three, slower = (
        record(""),
        record(", turns: {count: 3, think_ms: 10}"),
        record(", turns: {count: 3, think_ms: 20}"),
    )
    assert plain["plain"] and not three["plain"]
    assert len({plain["fingerprint"], three["fingerprint"], slower["fingerprint"]}) == 3
    assert three["tests"]["a"]["turns"] == {"count": 3, "think_ms": 10.0}
