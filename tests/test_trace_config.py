"""A suite's ``trace:`` (issue 25, trace replay): bad values and bad files stop ``kitt run`` with
one line naming the field, or the file and line, and exit 2 before any engine starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kitt.config import Overrides, apply_overrides, load_suite
from kitt.errors import UsageError
from kitt.workload.traces import TRACE_MAX_BYTES
from support import run_kitt, unique_model

GOOD = {"timestamp": 0, "input_length": 8, "output_length": 2, "hash_ids": [1]}


def suite_file(tmp_path: Path, test: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text("tests:\n  - {name: replay, %s}\n" % test)
    return str(path)


def trace_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), *lines]) + "\n")
    return path


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (
            "trace: {path: t.jsonl, speedup: 0}",
            "suite.tests[0].trace.speedup: must be a finite number greater than 0, got 0",
        ),
        ("trace: {path: t.jsonl, speedup: -2}", "suite.tests[0].trace.speedup: must be a finite number greater than 0"),
        (
            "trace: {path: t.jsonl, block_size: 0}",
            "suite.tests[0].trace.block_size: must be a whole number >= 1, got 0",
        ),
        (
            "trace: {path: t.jsonl, format: csv}",
            "suite.tests[0].trace.format: must be one of mooncake, timed, got 'csv'",
        ),
        ("trace: {path: t.jsonl, rate: 2}", "suite.tests[0].trace.rate: unknown key"),
        ("trace: {format: timed}", "suite.tests[0].trace.path: must be a non-empty string"),
        ("trace: t.jsonl, concurrency: 4", "suite.tests[0].concurrency: does not combine with 'trace'"),
        ("trace: t.jsonl, request_rate: 2", "suite.tests[0].request_rate: does not combine with 'trace'"),
        ("trace: t.jsonl, dataset: d.jsonl", "suite.tests[0].dataset: does not combine with 'trace'"),
        ("trace: t.jsonl, prefix: {groups: 1, len: 8}", "suite.tests[0].prefix: does not combine with 'trace'"),
        ("trace: t.jsonl, turns: {count: 2}", "suite.tests[0].turns: does not combine with 'trace'"),
        ("trace: t.jsonl, input_len: 8", "suite.tests[0].input_len: does not combine with 'trace'"),
    ],
)
def test_bad_trace_settings_name_the_field(tmp_path: Path, fields: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        load_suite(suite_file(tmp_path, fields))
    assert fragment in str(info.value)


def test_a_bad_trace_file_is_refused_when_the_overrides_are_applied(tmp_path: Path) -> None:
    path = trace_file(tmp_path, json.dumps({**GOOD, "input_length": 0}))
    suite = load_suite(suite_file(tmp_path, f"trace: {path}"))  # the file is read with the overrides, as datasets are
    with pytest.raises(UsageError, match=r"line 2: input_length must be a whole number of tokens >= 1, got 0"):
        apply_overrides(suite, Overrides())


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (
            json.dumps({**GOOD, "timestamp": -5}),
            "trace {path}, line 2: timestamp must be a number of milliseconds >= 0",
        ),
        ('{"timestamp": 1, "input_length": 8', "trace {path}, line 2: not a JSON object (mooncake format)"),
        (
            json.dumps({**GOOD, "hash_ids": "1,2"}),
            'trace {path}, line 2: hash_ids must be a list of whole numbers, got "1,2"',
        ),
        (
            json.dumps({**GOOD, "timestamp": 10}) + "\n" + json.dumps(GOOD),
            "trace {path}, line 3: timestamp 0 ms is before the previous request's 10 ms (timestamps must not go backwards)",
        ),
        (None, "trace (mooncake) {path} does not exist"),
        ("big", "trace (mooncake) {path} is {size} bytes, more than kitt's limit"),
    ],
)
def test_bad_trace_files_exit_2_in_one_line_before_any_engine_starts(
    tmp_path: Path, line: str | None, fragment: str
) -> None:
    path = trace_file(tmp_path, line or "")
    if line is None:
        path.unlink()
    elif line == "big":
        with path.open("r+b") as handle:  # sparse: no 64 MiB written
            handle.truncate(TRACE_MAX_BYTES + 1)
    suite = suite_file(tmp_path, f"trace: {{path: {path}}}")
    done = run_kitt("run", "-m", unique_model(), "-e", "sim", "-s", suite, "-o", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2, done.stderr
    errors = [text for text in done.stderr.splitlines() if text.startswith("kitt: error:")]
    assert len(errors) == 1, done.stderr
    assert fragment.format(path=path, size=f"{TRACE_MAX_BYTES + 1:,}") in errors[0]
    assert "Starting" not in done.stdout + done.stderr and not (tmp_path / "out").exists()


def test_a_bad_speedup_exits_2_in_one_line(tmp_path: Path) -> None:
    path = trace_file(tmp_path)
    suite = suite_file(tmp_path, f"trace: {{path: {path}, speedup: 0}}")
    done = run_kitt("run", "-m", unique_model(), "-e", "sim", "-s", suite, "-o", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2
    errors = [text for text in done.stderr.splitlines() if text.startswith("kitt: error:")]
    assert len(errors) == 1 and "trace.speedup: must be a finite number greater than 0, got 0" in errors[0]
