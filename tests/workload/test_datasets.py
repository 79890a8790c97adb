"""kitt.workload.datasets: the user's own prompts, read as untrusted input, sampled with a seed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kitt import cli
from kitt.errors import UsageError
from kitt.workload.datasets import DATASET_MAX_BYTES, FORMATS, DatasetSpec, build_requests, read_dataset, sample


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def sharegpt(n: int) -> list[dict]:
    return [
        {
            "id": str(i),
            "conversations": [
                {"from": "system", "value": "be brief"},
                {"from": "human", "value": f"question {i} " + "word " * i},
                {"from": "gpt", "value": "answer " * (i * 10)},
            ],
        }
        for i in range(n)
    ]


def test_the_three_formats(tmp_path: Path) -> None:
    chat = write(
        tmp_path,
        "chat.jsonl",
        "\n".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "system", "content": "s"},
                        {"role": "user", "content": [{"type": "text", "text": f"hi {i}"}]},
                        {"role": "assistant", "content": "a b c"},
                    ]
                }
            )
            for i in range(3)
        )
        + "\n\n",
    )
    spec = read_dataset(DatasetSpec(chat, "openai-chat"))
    assert [p.text for p in spec.prompts] == ["hi 0", "hi 1", "hi 2"] and spec.prompts[0].answer == "a b c"
    assert len(spec.sha256) == 64
    array = read_dataset(DatasetSpec(write(tmp_path, "sg.json", json.dumps(sharegpt(4))), "sharegpt"))
    lines = read_dataset(DatasetSpec(write(tmp_path, "sg.jsonl", "\n".join(map(json.dumps, sharegpt(4)))), "sharegpt"))
    assert [p.text for p in array.prompts] == [p.text for p in lines.prompts] and array.prompts[
        1
    ].text == "question 1 word "
    jsonl = read_dataset(
        DatasetSpec(write(tmp_path, "p.jsonl", '{"prompt": "a", "output_len": 9}\n{"prompt": "b"}\n'), "prompts")
    )
    assert [(p.text, p.output_len) for p in jsonl.prompts] == [("a", 9), ("b", None)]
    text = read_dataset(DatasetSpec(write(tmp_path, "p.txt", "first prompt\n\nsecond prompt\n"), "prompts"))
    assert [p.text for p in text.prompts] == ["first prompt", "second prompt"]
    assert cli.DATASET_FORMATS == FORMATS


def test_sampling_is_seeded_with_or_without_replacement(tmp_path: Path) -> None:
    spec = read_dataset(DatasetSpec(write(tmp_path, "sg.json", json.dumps(sharegpt(10))), "sharegpt", "shuffle"))
    first = sample(spec, 25, random.Random(1))
    assert first == sample(spec, 25, random.Random(1))
    assert sorted(p.text for p in first[:10]) == sorted(p.text for p in spec.prompts)  # each once per pass
    assert sorted(p.text for p in first[10:20]) == sorted(p.text for p in spec.prompts)
    ordered = sample(DatasetSpec(spec.path, "sharegpt", "order", prompts=spec.prompts), 12, random.Random(1))
    assert [p.text for p in ordered] == [p.text for p in spec.prompts] + [p.text for p in spec.prompts[:2]]
    drawn = sample(DatasetSpec(spec.path, "sharegpt", "random", prompts=spec.prompts), 200, random.Random(3))
    assert len({p.text for p in drawn}) == 10 and len(drawn) == 200


def test_output_length_is_the_answer_capped_by_output_len(tmp_path: Path) -> None:
    spec = read_dataset(
        DatasetSpec(
            write(
                tmp_path,
                "p.jsonl",
                '{"prompt": "a", "output_len": 900}\n{"prompt": "b", "output_len": 5}\n{"prompt": "c"}\n',
            ),
            "prompts",
            "order",
        )
    )
    requests = build_requests(3, spec, 64, seed=1, salt="s")
    assert [(r.prompt, r.max_tokens) for r in requests] == [("a", 64), ("b", 5), ("c", 64)]
    counted = read_dataset(DatasetSpec(write(tmp_path, "sg.json", json.dumps(sharegpt(3))), "sharegpt", "order"))
    requests = build_requests(
        3, counted, 25, seed=1, salt="s", count_tokens=lambda texts: [len(t.split()) for t in texts]
    )
    assert [r.max_tokens for r in requests] == [25, 10, 20]  # an empty answer is none: output_len


@pytest.mark.parametrize(
    ("fmt", "content", "fragment"),
    [
        ("openai-chat", None, "does not exist"),
        ("openai-chat", "folder", "is a directory"),
        ("openai-chat", "  \n", "is empty"),
        ("openai-chat", b"\xff\xfe{}", "is not UTF-8"),
        ("openai-chat", '{"messages": [{"role": "user", "content": "x"}]}\nnot json\n', "line 2: not a JSON object"),
        (
            "openai-chat",
            '{"messages": [{"role": "assistant", "content": "x"}]}\n',
            "line 1: the conversation has no user turn",
        ),
        ("openai-chat", '{"prompt": "x"}\n', "line 1: no 'messages' list"),
        (
            "sharegpt",
            '[{"conversations": [{"from": "gpt", "value": "x"}]}]',
            "entry 0: the conversation has no user turn",
        ),
        ("sharegpt", '{"conversations": []}\n{"id": 1}\n', "line 1: the conversation has no user turn"),
        ("prompts", '{"prompt": "a"}\n{"prompt": "b", "output_len": 0}\n', "line 2: output_len must be"),
    ],
)
def test_bad_dataset_files_name_the_file_and_line(tmp_path: Path, fmt: str, content: object, fragment: str) -> None:
    path = str(tmp_path / "data")
    if content == "folder":
        (tmp_path / "data").mkdir()
    elif content is not None:
        write(tmp_path, "data", content)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as caught:
        read_dataset(DatasetSpec(path, fmt))
    assert fragment in caught.value.message and path in caught.value.message


def test_a_dataset_over_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    with path.open("wb") as handle:
        handle.truncate(DATASET_MAX_BYTES + 1)
    with pytest.raises(UsageError, match="more than kitt's limit"):
        read_dataset(DatasetSpec(str(path), "prompts"))


def test_a_bad_dataset_exits_2_before_any_engine_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path, "bad.jsonl", '{"messages": []}\n')
    code = cli.main(["run", "-m", "m", "-e", "sim", "-s", "quick", "-o", str(tmp_path / "out"), "--dataset", data])
    err = capsys.readouterr().err
    assert code == 2 and "line 1: the conversation has no user turn" in err
    assert not (tmp_path / "out").exists()  # nothing started, nothing written
