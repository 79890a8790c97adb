"""Issue 30's sweep: bad input to what the workload wave added, tried as a new user would.

Datasets (suite ``dataset:``, ``--dataset``, ``--dataset-format``, the action's inputs), length
distributions and mixtures, arrivals, time boxes, shared prefixes, capacity tests, ``--repeats
auto``, ``--engine-cache``, the sim's serving options and its ``/tokenize`` and ``/detokenize``.
Each case must end in one line that says what is wrong (a UsageError, exit 2, before any engine
starts, no output folder left), or for the sim a 400 and a server that keeps serving.

Tally (this sweep): 216 cases tried, all listed below; 185 behaved as the guide says before the
fixes (4 of them kept with a reworded message); 31 did not, from 11 causes, all fixed and kept
here as regression cases (each failed on main before its fix):

- a dataset turn whose ``role``/``from`` is a list or mapping: TypeError traceback (datasets.py);
- a dataset with a UTF-8 byte-order mark (Windows editors): "not a JSON object" on line 1 (datasets.py);
- a dataset, suite or thresholds path that is a FIFO blocked forever (safeload.read_text: regular files only);
- ``burstiness`` unbounded: 1e308 crashed gammavariate mid-run, 1e-300 sent every request at once (config.py);
- a normal length's ``stdev`` unbounded: 1e308 overflowed to inf and round() raised mid-run (config.py);
- ``mix`` weights whose sum is infinite: random.choices raised mid-run (config.py: weight <= 1e12);
- an error quoting a huge value (a 100,000-item list) printed a 700 KB "line" (config.py: quoted values cut);
- ``capacity.max_probes`` unbounded (10^9 measured levels accepted) (config.py: at most 100);
- ``--concurrency``/``--request-rate`` with an all-capacity suite were silently ignored (config.apply_overrides);
- ``--engine-cache`` a file (mkdir traceback after the image pull), a path with ':' or ',' (splits the
  --volume spec), or relative (a named volume for Docker) (cli.py: absolute folder checked up front);
- the sim took NaN/inf delays, negative CVs, and a port past 65535 (traceback), and a JSON body nested
  100,000 deep killed its handler (no answer, the client hung) (simserver.py).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from kitt import cli, config
from kitt.action_inputs import ActionInputs, preflight
from kitt.engines import simserver
from kitt.errors import UsageError
from kitt.github.actions_io import ActionsContext
from kitt.workload.datasets import DatasetSpec, read_dataset

BASE_RATE = {"name": "t", "request_rate": [2.0], "num_requests": 4, "input_len": 8, "output_len": 4}
BASE_CAP = {"name": "t", "num_requests": 8, "input_len": 8, "output_len": 4}
SLO = {"p99_ttft_ms": 100}
TINY_SUITE = (
    "name: s\ntests:\n  - name: t\n    concurrency: [1]\n    num_requests: 2\n    input_len: 8\n    output_len: 4\n"
)


def one_line(error: UsageError, fragment: str) -> str:
    text = str(error)
    assert "\n" not in text and len(text) < 600, text
    assert fragment in text, text
    return text


def _test(changes: dict[str, Any], base: dict[str, Any] = BASE_RATE) -> dict[str, Any]:
    test = dict(base)
    if "mix" in changes:
        test.pop("input_len", None)
        test.pop("output_len", None)
    test.update(changes)
    return test


# (id, the test's keys (over a request_rate test), a fragment of the one-line message)
TEST_CASES = [
    ("burstiness-huge", {"arrival": "gamma", "burstiness": 1e308}, "burstiness: must be from 0.01"),
    ("burstiness-tiny", {"arrival": "gamma", "burstiness": 1e-300}, "burstiness: must be from 0.01"),
    ("burstiness-nan", {"arrival": "gamma", "burstiness": float("nan")}, "burstiness: must be a finite number"),
    ("burstiness-string", {"arrival": "gamma", "burstiness": "2"}, "burstiness: must be a number"),
    ("burstiness-bool", {"arrival": "gamma", "burstiness": True}, "burstiness: must be a number"),
    ("burstiness-without-gamma", {"burstiness": 2}, "applies to arrival: gamma only"),
    ("arrival-list", {"arrival": ["poisson"]}, "arrival: must be one of poisson, gamma, constant"),
    ("arrival-mapping", {"arrival": {"a": 1}}, "arrival: must be one of"),
    ("arrival-null", {"arrival": None}, "arrival: must be one of"),
    ("arrival-capitalised", {"arrival": "Poisson"}, "arrival: must be one of"),
    ("ramp-negative", {"ramp_up_s": -1}, "ramp_up_s: must be between 0 and 86,400"),
    ("ramp-inf", {"ramp_up_s": float("inf")}, "ramp_up_s: must be between 0"),
    ("ramp-string", {"ramp_up_s": "10s"}, "ramp_up_s: must be a number"),
    ("duration-zero", {"duration_s": 0}, "duration_s: must be a finite number greater than 0"),
    ("duration-nan", {"duration_s": float("nan")}, "duration_s: must be a finite number"),
    ("duration-bool", {"duration_s": True}, "duration_s: must be a number"),
    ("duration-huge-int", {"duration_s": 10**400}, "duration_s: is too large a number"),
    ("duration-above-a-day", {"duration_s": 100_000}, "duration_s: must be at most 86,400"),
    ("duration-string", {"duration_s": "60s"}, "duration_s: must be a number"),
    ("prefix-list", {"prefix": [1, 2]}, "prefix: must be a mapping {groups, len, skew}"),
    ("prefix-null", {"prefix": None}, "prefix: must be a mapping"),
    ("prefix-groups-huge", {"prefix": {"groups": 10**12, "len": 4}}, "prefix.groups: must be at most 100,000"),
    ("prefix-groups-zero", {"prefix": {"groups": 0, "len": 4}}, "prefix.groups: must be a whole number >= 1"),
    ("prefix-groups-float", {"prefix": {"groups": 2.5, "len": 4}}, "prefix.groups: must be a whole number"),
    ("prefix-groups-bool", {"prefix": {"groups": True, "len": 4}}, "prefix.groups: must be a whole number"),
    ("prefix-groups-missing", {"prefix": {"len": 4}}, "prefix.groups: is missing"),
    ("prefix-len-missing", {"prefix": {"groups": 2}}, "prefix.len: is missing"),
    ("prefix-len-huge", {"prefix": {"groups": 1, "len": 10**12}}, "prefix len + input_len"),
    ("prefix-groups-times-len", {"prefix": {"groups": 100_000, "len": 2_000}}, "prefix groups x len"),
    ("prefix-skew-negative", {"prefix": {"groups": 2, "len": 4, "skew": -1}}, "prefix.skew: must be a number from 0"),
    ("prefix-skew-huge", {"prefix": {"groups": 2, "len": 4, "skew": 1e9}}, "prefix.skew: must be a number from 0"),
    ("prefix-skew-nan", {"prefix": {"groups": 2, "len": 4, "skew": float("nan")}}, "prefix.skew"),
    ("prefix-skew-string", {"prefix": {"groups": 2, "len": 4, "skew": "1"}}, "prefix.skew: must be a number"),
    ("prefix-unknown-key", {"prefix": {"groups": 2, "len": 4, "share": 1}}, "prefix.share: unknown key"),
    ("prefix-huge-list-quoted-short", {"prefix": list(range(100_000))}, "prefix: must be a mapping"),
    ("uniform-string", {"input_len": {"uniform": "1,2"}}, "input_len.uniform: must be a list [lo, hi]"),
    ("uniform-three", {"input_len": {"uniform": [1, 2, 3]}}, "input_len.uniform: must be a list"),
    ("uniform-reversed", {"input_len": {"uniform": [5, 2]}}, "lo 5 is above hi 2"),
    ("uniform-float", {"input_len": {"uniform": [1.5, 2]}}, "uniform[0]: must be a whole number >= 1"),
    ("uniform-zero", {"output_len": {"uniform": [0, 2]}}, "output_len.uniform[0]: must be a whole number >= 1"),
    ("uniform-huge", {"output_len": {"uniform": [1, 10**9]}}, "output_len 1000000000 is above the limit"),
    ("uniform-with-mean", {"input_len": {"uniform": [1, 2], "mean": 3}}, "unknown key"),
    ("normal-missing-keys", {"input_len": {"mean": 4}}, "missing: max, min, stdev"),
    ("normal-empty", {"input_len": {}}, "a distribution needs mean, stdev, min and max"),
    (
        "normal-nan-mean",
        {"input_len": {"mean": float("nan"), "stdev": 1, "min": 1, "max": 8}},
        "mean: must lie between",
    ),
    (
        "normal-mean-outside",
        {"input_len": {"mean": 40, "stdev": 1, "min": 1, "max": 8}},
        "mean: must lie between min 1",
    ),
    (
        "normal-inf-stdev",
        {"input_len": {"mean": 4, "stdev": float("inf"), "min": 1, "max": 8}},
        "stdev: must be a number",
    ),
    ("normal-negative-stdev", {"input_len": {"mean": 4, "stdev": -1, "min": 1, "max": 8}}, "stdev: must be a number"),
    (
        "normal-huge-stdev",
        {"input_len": {"mean": 4, "stdev": 1e308, "min": 1, "max": 8}},
        "stdev: must be a number from 0",
    ),
    ("normal-min-above-max", {"input_len": {"mean": 4, "stdev": 1, "min": 9, "max": 8}}, "min 9 is above max 8"),
    (
        "normal-float-min",
        {"input_len": {"mean": 4, "stdev": 1, "min": 1.5, "max": 8}},
        "input_len.min: must be a whole",
    ),
    (
        "normal-huge-max",
        {"output_len": {"mean": 4, "stdev": 1, "min": 1, "max": 10**9}},
        "above the limit of 1,000,000",
    ),
    ("length-bool", {"input_len": True}, "input_len: must be a whole number >= 1, got True"),
    ("length-string", {"input_len": "128"}, "input_len: must be a whole number"),
    ("length-float", {"input_len": 12.5}, "input_len: must be a whole number"),
    ("length-list", {"input_len": [1, 2]}, "input_len: must be a whole number"),
    ("length-zero", {"output_len": 0}, "output_len: must be a whole number >= 1"),
    ("mix-with-lengths", {"mix": [{"weight": 1, "input_len": 4, "output_len": 4}], "input_len": 8}, "mix: replaces"),
    ("mix-empty", {"mix": []}, "mix: must be a non-empty list"),
    ("mix-mapping", {"mix": {"weight": 1}}, "mix: must be a non-empty list"),
    ("mix-entry-string", {"mix": ["a"]}, "mix[0]: must be a mapping"),
    (
        "mix-all-zero",
        {"mix": [{"weight": 0, "input_len": 4, "output_len": 4}]},
        "needs at least one entry with a weight",
    ),
    (
        "mix-negative-weight",
        {"mix": [{"weight": -1, "input_len": 4, "output_len": 4}]},
        "mix[0].weight: must be a number",
    ),
    ("mix-nan-weight", {"mix": [{"weight": float("nan"), "input_len": 4, "output_len": 4}]}, "mix[0].weight"),
    ("mix-inf-weight", {"mix": [{"weight": float("inf"), "input_len": 4, "output_len": 4}]}, "mix[0].weight"),
    (
        "mix-bool-weight",
        {"mix": [{"weight": True, "input_len": 4, "output_len": 4}]},
        "mix[0].weight: must be a number",
    ),
    (
        "mix-weights-overflow",
        {
            "mix": [
                {"weight": 1e308, "input_len": 4, "output_len": 4},
                {"weight": 1e308, "input_len": 5, "output_len": 4},
            ]
        },
        "weight: must be a number from 0",
    ),
    ("mix-missing-output", {"mix": [{"weight": 1, "input_len": 4}]}, "mix[0].output_len: is missing"),
    ("mix-unknown-key", {"mix": [{"weight": 1, "input_len": 4, "output_len": 4, "share": 1}]}, "mix[0].share: unknown"),
    (
        "mix-bad-length",
        {"mix": [{"weight": 1, "input_len": {"uniform": [3, 1]}, "output_len": 4}]},
        "lo 3 is above hi 1",
    ),
    ("dataset-number", {"dataset": 5}, "dataset: must be a mapping {path, format, sample} or a path"),
    ("dataset-empty-path", {"dataset": ""}, "dataset.path: must be a non-empty string"),
    ("dataset-blank-path", {"dataset": {"path": "  "}}, "dataset.path: must be a non-empty string"),
    ("dataset-format-csv", {"dataset": {"path": "x", "format": "csv"}}, "dataset.format: must be one of openai-chat"),
    ("dataset-format-list", {"dataset": {"path": "x", "format": ["prompts"]}}, "dataset.format: must be one of"),
    ("dataset-sample-all", {"dataset": {"path": "x", "sample": "all"}}, "dataset.sample: must be one of shuffle"),
    ("dataset-unknown-key", {"dataset": {"path": "x", "fmt": "csv"}}, "dataset.fmt: unknown key"),
    ("capacity-with-rate", {"capacity": {"over": "concurrency", "min": 1, "max": 2, "slo": SLO}}, "drop 'concurrency'"),
]

# (id, the capacity mapping (over a test with no load key), a fragment)
CAPACITY_CASES = [
    ("not-a-mapping", 5, "capacity: must be a mapping"),
    ("over-qps", {"over": "qps", "min": 1, "max": 2}, "capacity.over: must be one of concurrency, request_rate"),
    ("min-missing", {"over": "concurrency", "max": 2}, "capacity.min: is required"),
    ("min-equals-max", {"over": "concurrency", "min": 2, "max": 2, "slo": SLO}, "capacity.min: must be below max"),
    (
        "streams-float",
        {"over": "concurrency", "min": 1.5, "max": 2, "slo": SLO},
        "capacity.min: must be a whole number",
    ),
    ("streams-above-requests", {"over": "concurrency", "min": 1, "max": 80, "slo": SLO}, "above num_requests 8"),
    ("rate-nan", {"over": "request_rate", "min": float("nan"), "max": 2, "slo": SLO}, "capacity.min: must be a finite"),
    ("rate-huge", {"over": "request_rate", "min": 1, "max": 1e9, "slo": SLO}, "request rates must be between 0.001"),
    ("no-latency-goal", {"over": "concurrency", "min": 1, "max": 2}, "needs a latency goal"),
    ("slo-string", {"over": "concurrency", "min": 1, "max": 2, "slo": "fast"}, "capacity.slo: must be a mapping"),
    ("slo-suite-key", {"over": "concurrency", "min": 1, "max": 2, "slo": {"ttft_ms": 1}}, "slo.ttft_ms: unknown key"),
    (
        "slo-negative",
        {"over": "concurrency", "min": 1, "max": 2, "slo": {"p99_ttft_ms": -1}},
        "must be a finite number",
    ),
    (
        "slo-error-rate-only",
        {"over": "concurrency", "min": 1, "max": 2, "slo": {"max_error_rate": 0.1}},
        "latency goal",
    ),
    ("slo-error-rate-one", {"over": "concurrency", "min": 1, "max": 2, "slo": {**SLO, "max_error_rate": 1}}, "below 1"),
    (
        "slo-error-rate-nan",
        {"over": "concurrency", "min": 1, "max": 2, "slo": {**SLO, "max_error_rate": float("nan")}},
        "max_error_rate: must be at least 0",
    ),
    (
        "precision-zero",
        {"over": "concurrency", "min": 1, "max": 2, "slo": SLO, "precision_pct": 0},
        "above 0 and below 100",
    ),
    (
        "precision-nan",
        {"over": "concurrency", "min": 1, "max": 2, "slo": SLO, "precision_pct": float("nan")},
        "precision_pct",
    ),
    (
        "precision-bool",
        {"over": "concurrency", "min": 1, "max": 2, "slo": SLO, "precision_pct": True},
        "must be a number",
    ),
    (
        "probes-one",
        {"over": "concurrency", "min": 1, "max": 2, "slo": SLO, "max_probes": 1},
        "max_probes: must be a whole",
    ),
    (
        "probes-huge",
        {"over": "concurrency", "min": 1, "max": 2, "slo": SLO, "max_probes": 10**9},
        "max_probes: must be at most",
    ),
    ("unknown-key", {"over": "concurrency", "min": 1, "max": 2, "slo": SLO, "steps": 3}, "capacity.steps: unknown key"),
]

# (id, the suite's repeat keys, a fragment)
REPEAT_CASES = [
    ("auto-min-one", {"repeats": "auto", "min_repeats": 1}, "suite.min_repeats: must be a whole number >= 2"),
    ("auto-max-below-min", {"repeats": "auto", "min_repeats": 5, "max_repeats": 3}, "must be at least min_repeats (5)"),
    ("fixed-with-min", {"repeats": 3, "min_repeats": 3}, "needs `repeats: auto`"),
    ("auto-capitalised", {"repeats": "AUTO"}, "must be a whole number >= 1 or 'auto'"),
    ("repeats-bool", {"repeats": True}, "suite.repeats: must be a whole number"),
    ("auto-max-huge", {"repeats": "auto", "max_repeats": 10**6}, "above the limit of 1,000"),
    ("repeats-zero", {"repeats": 0}, "suite.repeats: must be a whole number >= 1"),
    ("repeats-float", {"repeats": 2.0}, "suite.repeats: must be a whole number"),
    ("auto-min-string", {"repeats": "auto", "min_repeats": "3"}, "suite.min_repeats: must be a whole number"),
]


@pytest.mark.parametrize("changes, fragment", [c[1:] for c in TEST_CASES], ids=[c[0] for c in TEST_CASES])
def test_a_bad_workload_key_is_one_line(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        config.parse_suite({"name": "s", "tests": [_test(changes)]}, "s.yaml")
    assert one_line(caught.value, fragment).startswith("s.yaml: ")


@pytest.mark.parametrize("capacity, fragment", [c[1:] for c in CAPACITY_CASES], ids=[c[0] for c in CAPACITY_CASES])
def test_a_bad_capacity_test_is_one_line(capacity: Any, fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        config.parse_suite({"name": "s", "tests": [{**BASE_CAP, "capacity": capacity}]}, "s.yaml")
    one_line(caught.value, fragment)


@pytest.mark.parametrize("keys, fragment", [c[1:] for c in REPEAT_CASES], ids=[c[0] for c in REPEAT_CASES])
def test_bad_repeats_in_a_suite_are_one_line(keys: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        config.parse_suite({"name": "s", "tests": [dict(BASE_RATE)], **keys}, "s.yaml")
    one_line(caught.value, fragment)


# (id, file name, its bytes, format, a fragment)
DATASET_CASES = [
    (
        "role-a-list",
        "a.jsonl",
        b'{"messages":[{"role":["user"],"content":"hi"}]}\n',
        "openai-chat",
        "no user turn with text",
    ),
    ("from-a-mapping", "a.jsonl", b'{"conversations":[{"from":{"a":1},"value":"hi"}]}\n', "sharegpt", "no user turn"),
    ("from-a-list-in-array", "a.json", b'[{"conversations":[{"from":["human"],"value":"hi"}]}]', "sharegpt", "entry 0"),
    (
        "content-parts-bad",
        "a.jsonl",
        b'{"messages":[{"role":"user","content":[{"type":"text","text":["x"]}]}]}\n',
        "openai-chat",
        "no user turn with text",
    ),
    ("content-a-number", "a.jsonl", b'{"messages":[{"role":"user","content":5}]}\n', "openai-chat", "no user turn"),
    (
        "output-len-inf",
        "a.jsonl",
        b'{"prompt":"x","output_len":1e400}\n',
        "prompts",
        "output_len must be a whole number",
    ),
    ("output-len-nan", "a.jsonl", b'{"prompt":"x","output_len":NaN}\n', "prompts", "got NaN"),
    ("output-len-bool", "a.jsonl", b'{"prompt":"x","output_len":true}\n', "prompts", "got true"),
    ("output-len-negative", "a.jsonl", b'{"prompt":"x","output_len":-3}\n', "prompts", "got -3"),
    ("output-len-string", "a.jsonl", b'{"prompt":"x","output_len":"9"}\n', "prompts", "output_len must be a whole"),
    (
        "truncated-line",
        "a.jsonl",
        b'{"messages":[{"role":"user","content":"hi"}],"x":[',
        "openai-chat",
        "line 1: not a JSON",
    ),
    ("nested-100000", "a.jsonl", b"[" * 100_000 + b"\n", "openai-chat", "line 1: not a JSON object"),
    ("not-utf8", "a.jsonl", b"\xff\xfe", "openai-chat", "is not UTF-8 text"),
    ("binary", "a.jsonl", b"\x00\x01\x02", "prompts", "is a binary file"),
    ("brace-not-json", "a.txt", b"hello\n{not json\n", "prompts", "line 2: not a JSON object (prompts format)"),
    ("blank-lines-only", "a.txt", b"   \n\n", "prompts", "is empty"),
    ("conversations-a-string", "a.json", b'{"conversations":"x"}', "sharegpt", "no 'conversations' list"),
    ("array-of-numbers", "a.json", b"[1,2]", "sharegpt", "entry 0: no 'conversations' list"),
    ("sharegpt-object-not-array", "a.json", b'[{"conversations":[]}', "sharegpt", "is not valid JSON"),
    ("json-string-line", "a.jsonl", b'"just a string"\n', "openai-chat", "no 'messages' list"),
    (
        "only-assistant-turns",
        "a.jsonl",
        b'{"messages":[{"role":"assistant","content":"hi"}]}\n',
        "openai-chat",
        "no user turn with text",
    ),
    (
        "sharegpt-file-as-openai",
        "a.jsonl",
        b'{"conversations":[{"from":"human","value":"hi"}]}\n',
        "openai-chat",
        "no 'messages' list",
    ),
    ("prompts-empty-prompt", "a.jsonl", b'{"prompt":"  "}\n', "prompts", "no 'prompt' string"),
]


@pytest.mark.parametrize("name, data, fmt, fragment", [c[1:] for c in DATASET_CASES], ids=[c[0] for c in DATASET_CASES])
def test_a_bad_dataset_is_one_line(tmp_path: Path, name: str, data: bytes, fmt: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UsageError) as caught:
        read_dataset(DatasetSpec(path=str(path), format=fmt))
    one_line(caught.value, fragment)


def test_a_dataset_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "prompts.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as caught:
        read_dataset(DatasetSpec(path=str(fifo), format="prompts"))
    one_line(caught.value, "is not a regular file")


def test_a_dataset_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"messages":[{"role":"user","content":"hi"}]}\n')
    assert [p.text for p in read_dataset(DatasetSpec(path=str(path))).prompts or ()] == ["hi"]


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(TINY_SUITE)
    return path


def kitt_run(extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], suite: str) -> tuple[int, str, Path]:
    out = tmp_path / "out"
    try:
        code = cli.main(["run", "-m", "m", "-e", "sim", "-s", suite, "-o", str(out), *extra])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("kitt: error:")]
    assert len(lines) == 1 and len(err.splitlines()) == 1, err
    return code, lines[0], out


BASELINE = ["--baseline-engine-arg=--slowdown=1.1"]
# (id, flags, a fragment); every one refused before the sim starts
CLI_CASES = [
    ("duration-nan", ["--duration", "nan"], "argument --duration: expected a number > 0"),
    ("duration-inf", ["--duration", "inf"], "argument --duration: expected a number > 0"),
    ("duration-negative", ["--duration", "-1"], "argument --duration"),
    ("duration-zero", ["--duration", "0"], "argument --duration"),
    ("duration-above-a-day", ["--duration", "1e9"], "duration_s 1e+09 must be above 0 and at most 86,400"),
    ("duration-with-unit", ["--duration", "1m"], "expected a number, got '1m'"),
    ("dataset-missing", ["--dataset", "{tmp}/nope.jsonl"], "nope.jsonl does not exist"),
    ("dataset-a-folder", ["--dataset", "{tmp}"], "is a directory, not a file"),
    ("dataset-format-alone", ["--dataset-format", "prompts"], "--dataset-format needs a dataset"),
    ("dataset-format-csv", ["--dataset", "{tmp}/d.jsonl", "--dataset-format", "csv"], "invalid choice: 'csv'"),
    ("dataset-role-a-list", ["--dataset", "{tmp}/role.jsonl"], "line 1: the conversation has no user turn"),
    ("dataset-fifo", ["--dataset", "{tmp}/fifo.jsonl"], "is not a regular file"),
    ("dataset-newline-in-path", ["--dataset", "{tmp}/x\n::warning::owned"], "does not exist"),
    ("dataset-wrong-format", ["--dataset", "{tmp}/d.jsonl", "--dataset-format", "sharegpt"], "no 'conversations' list"),
    ("repeats-auto-without-baseline", ["--repeats", "auto"], "--repeats auto needs something to decide against"),
    ("repeats-auto-spaced-capitals", ["--repeats", " AUTO "], "--repeats auto needs something to decide against"),
    ("min-repeats-without-auto", ["--min-repeats", "3"], "need --repeats auto"),
    ("max-repeats-without-auto", ["--max-repeats", "3"], "need --repeats auto"),
    ("min-repeats-one", ["--repeats", "auto", "--min-repeats", "1", *BASELINE], "--min-repeats must be at least 2"),
    (
        "max-below-min",
        ["--repeats", "auto", "--min-repeats", "5", "--max-repeats", "3", *BASELINE],
        "--max-repeats (3)",
    ),
    ("max-repeats-zero", ["--repeats", "auto", "--max-repeats", "0", *BASELINE], "argument --max-repeats"),
    (
        "auto-with-blocks",
        ["--repeats", "auto", "--ab-schedule", "blocks", *BASELINE],
        "needs --ab-schedule interleaved",
    ),
    ("auto-max-huge", ["--repeats", "auto", "--max-repeats", "100000", *BASELINE], "above the limit of 1,000"),
    ("repeats-words", ["--repeats", "many"], "argument --repeats: expected a whole number"),
    ("repeats-zero", ["--repeats", "0"], "argument --repeats: expected a number >= 1"),
    ("request-rate-nan", ["--request-rate", "nan"], "argument --request-rate"),
    ("request-rate-tiny", ["--request-rate", "1e-9"], "request_rate 1e-09 must be between 0.001"),
    ("engine-cache-a-file", ["--engine-cache", "{tmp}/afile"], "is a file, not a folder"),
    ("engine-cache-colon", ["--engine-cache", "{tmp}/a:b"], "without ':' or ','"),
    ("engine-cache-comma", ["--engine-cache", "{tmp}/a,ro"], "without ':' or ','"),
    ("engine-cache-empty", ["--engine-cache", ""], "argument --engine-cache"),
]


@pytest.mark.parametrize("flags, fragment", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_a_bad_workload_flag_is_exit_2_before_the_engine(
    tmp_path: Path, suite_file: Path, capsys: pytest.CaptureFixture[str], flags: list[str], fragment: str
) -> None:
    (tmp_path / "d.jsonl").write_text('{"messages":[{"role":"user","content":"hi"}]}\n')
    (tmp_path / "role.jsonl").write_text('{"messages":[{"role":["user"],"content":"hi"}]}\n')
    (tmp_path / "afile").write_text("x")
    os.mkfifo(tmp_path / "fifo.jsonl")
    code, line, out = kitt_run([f.replace("{tmp}", str(tmp_path)) for f in flags], tmp_path, capsys, str(suite_file))
    assert code == 2 and fragment in line, line
    assert not out.exists()
    assert "\n::" not in line and not line.startswith("::")


# (id, suite, flags, a fragment): the built-in capacity suite
CAPACITY_CLI_CASES = [
    ("capacity-repeats-auto", ["--repeats", "auto", *BASELINE], "repeats auto does not apply to capacity tests"),
    ("capacity-with-concurrency", ["--concurrency", "4"], "--concurrency does not apply to capacity"),
    ("capacity-with-request-rate", ["--request-rate", "4"], "--request-rate does not apply to capacity"),
    ("capacity-min-repeats-fixed", ["--min-repeats", "3"], "need --repeats auto"),
]


@pytest.mark.parametrize("flags, fragment", [c[1:] for c in CAPACITY_CLI_CASES], ids=[c[0] for c in CAPACITY_CLI_CASES])
def test_the_capacity_suite_refuses_flags_it_cannot_honour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], fragment: str
) -> None:
    code, line, out = kitt_run(flags, tmp_path, capsys, "capacity")
    assert code == 2 and fragment in line, line
    assert not out.exists()


def test_a_mixed_suite_still_takes_concurrency_for_its_fixed_tests() -> None:
    suite = config.parse_suite(
        {
            "name": "s",
            "tests": [
                dict(BASE_RATE),
                {**BASE_CAP, "name": "c", "capacity": {"over": "concurrency", "min": 1, "max": 4, "slo": SLO}},
            ],
        },
        "s.yaml",
    )
    resolved = config.apply_overrides(suite, config.Overrides(concurrency=(2,)))
    assert resolved.tests[0].levels == (config.Level("concurrency", 2),)


# (id, action inputs beyond the model, the input named, a fragment)
ACTION_CASES = [
    ("dataset-missing", {"INPUT_DATASET": "{tmp}/nope.jsonl"}, "input 'dataset'", "does not exist"),
    (
        "dataset-format-csv",
        {"INPUT_DATASET": "{tmp}/d.jsonl", "INPUT_DATASET-FORMAT": "csv"},
        "dataset-format",
        "one of",
    ),
    ("dataset-bad-line", {"INPUT_DATASET": "{tmp}/role.jsonl"}, "input 'dataset'", "no user turn"),
    (
        "repeats-auto-no-baseline",
        {"INPUT_REPEATS": "auto"},
        "input 'repeats'",
        "auto needs something to decide against",
    ),
    ("repeats-words", {"INPUT_REPEATS": "many"}, "input 'repeats'", "positive whole number"),
    (
        "capacity-repeats-auto",
        {"INPUT_SUITE": "capacity", "INPUT_REPEATS": "auto", "INPUT_BASELINE-ENGINE-ARGS": "--slowdown=1.1"},
        "input 'suite'",
        "capacity tests",
    ),
]


@pytest.mark.parametrize("env, name, fragment", [c[1:] for c in ACTION_CASES], ids=[c[0] for c in ACTION_CASES])
def test_a_bad_workload_action_input_names_the_input(
    tmp_path: Path, env: dict[str, str], name: str, fragment: str
) -> None:
    (tmp_path / "d.jsonl").write_text('{"messages":[{"role":"user","content":"hi"}]}\n')
    (tmp_path / "role.jsonl").write_text('{"messages":[{"role":["user"],"content":"hi"}]}\n')
    environ = {
        "INPUT_MODEL": "m",
        "INPUT_ENGINE": "sim",
        "INPUT_RESULTS-DIR": str(tmp_path / "out"),
        **{k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()},
    }
    with pytest.raises(UsageError) as caught:
        preflight(ActionInputs.from_environment(environ), ActionsContext.from_environment({}))
    line = one_line(caught.value, fragment)
    assert name in line


# (id, the sim's flags, a fragment of its one usage line)
SIM_FLAG_CASES = [
    ("ttft-nan", ["--ttft-ms", "nan"], "argument --ttft-ms: expected a finite number"),
    ("itl-inf", ["--itl-ms", "inf"], "argument --itl-ms: expected a finite number"),
    ("prefill-nan", ["--prefill-ms-per-token", "nan"], "argument --prefill-ms-per-token: expected a finite"),
    ("itl-per-seq-inf", ["--itl-ms-per-seq", "inf"], "argument --itl-ms-per-seq: expected a finite"),
    ("ttft-cv-nan", ["--ttft-cv", "nan"], "argument --ttft-cv"),
    ("ttft-cv-negative", ["--ttft-cv", "-1"], "--ttft-cv and --itl-cv must be at least 0"),
    ("itl-cv-inf", ["--itl-cv", "inf"], "argument --itl-cv"),
    ("port-too-high", ["--port", "70000"], "--port from 0 to 65535"),
    ("max-num-seqs-negative", ["--max-num-seqs", "-1"], "--max-num-seqs"),
    ("max-num-seqs-word", ["--max-num-seqs", "x"], "invalid int value"),
    ("block-size-zero", ["--block-size", "0"], "--block-size at least 1"),
    ("kv-cache-negative", ["--kv-cache-tokens", "-5"], "--kv-cache-tokens must be at least 0"),
    ("max-model-len-zero", ["--max-model-len", "0"], "--max-model-len at least 1"),
    ("slowdown-nan", ["--slowdown", "nan"], "argument --slowdown"),
    ("prefill-negative", ["--prefill-ms-per-token", "-1"], "--prefill-ms-per-token"),
    ("step-negative", ["--step-ms", "-5"], "--step-ms and --kv-cache-tokens must be at least 0"),
    ("step-inf", ["--step-ms", "inf"], "argument --step-ms: expected a finite"),
]


@pytest.mark.parametrize("flags, fragment", [c[1:] for c in SIM_FLAG_CASES], ids=[c[0] for c in SIM_FLAG_CASES])
def test_a_bad_sim_option_is_refused_at_start(
    capsys: pytest.CaptureFixture[str], flags: list[str], fragment: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        simserver.parse_args(["--port", "0", *flags])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and fragment in err.splitlines()[-1], err


def test_no_serving_model_wins_over_the_flags_before_it() -> None:
    options = simserver.parse_args(
        ["--max-num-seqs", "4", "--kv-cache-tokens", "64", "--step-ms", "10", "--no-serving-model"]
    )
    assert (options.max_num_seqs, options.kv_cache_tokens, options.prefill_ms_per_token, options.step_ms) == (
        0,
        0,
        0.0,
        0.0,
    )


@pytest.fixture(scope="module")
def sim_port() -> Iterator[int]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kitt.engines.simserver",
            "--port",
            "0",
            "--ttft-ms",
            "1",
            "--itl-ms",
            "1",
            "--ttft-cv",
            "0",
            "--itl-cv",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening "), line
        yield int(line.split()[1])
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# (id, path, body): each answered 400 with a JSON error, the server still serving
SIM_BODY_CASES = [
    ("tokenize-empty", "/tokenize", b""),
    ("tokenize-truncated", "/tokenize", b"{"),
    ("tokenize-null", "/tokenize", b"null"),
    ("tokenize-array", "/tokenize", b"[]"),
    ("tokenize-string", "/tokenize", b'"x"'),
    ("tokenize-prompt-number", "/tokenize", b'{"prompt": 5}'),
    ("tokenize-prompt-null", "/tokenize", b'{"prompt": null}'),
    ("tokenize-messages-number", "/tokenize", b'{"messages": 5}'),
    ("tokenize-messages-of-numbers", "/tokenize", b'{"messages": [5]}'),
    ("tokenize-messages-string", "/tokenize", b'{"messages": "hi"}'),
    ("tokenize-nested-100000", "/tokenize", b"[" * 100_000),
    ("tokenize-not-utf8", "/tokenize", b"\xff\xfe"),
    ("detokenize-empty", "/detokenize", b""),
    ("detokenize-no-tokens", "/detokenize", b"{}"),
    ("detokenize-tokens-number", "/detokenize", b'{"tokens": 5}'),
    ("detokenize-inf", "/detokenize", b'{"tokens": [1e400]}'),
    ("detokenize-negative", "/detokenize", b'{"tokens": [-1]}'),
    ("detokenize-bool", "/detokenize", b'{"tokens": [true]}'),
    ("detokenize-string-id", "/detokenize", b'{"tokens": ["a"]}'),
    ("detokenize-float-id", "/detokenize", b'{"tokens": [1.5]}'),
    ("detokenize-huge-id", "/detokenize", b'{"tokens": [99999999999999999999999]}'),
    ("detokenize-nested", "/detokenize", b'{"tokens": [[1]]}'),
    ("detokenize-nan", "/detokenize", b'{"tokens": [NaN]}'),
    ("detokenize-nested-100000", "/detokenize", b'{"tokens": ' + b"[" * 100_000),
    ("completions-nested-100000", "/v1/completions", b"[" * 100_000),
]


@pytest.mark.parametrize("path, body", [c[1:] for c in SIM_BODY_CASES], ids=[c[0] for c in SIM_BODY_CASES])
def test_the_sim_answers_a_bad_body_with_400_and_keeps_serving(sim_port: int, path: str, body: bytes) -> None:
    status, answer = post(sim_port, path, body)
    assert status == 400, answer
    assert "error" in json.loads(answer)
    status, answer = post(sim_port, "/tokenize", b'{"prompt": "still here"}')
    assert status == 200 and json.loads(answer)["count"] == 2
