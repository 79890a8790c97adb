"""Every reader of untrusted input, fed seeded random bytes and random JSON: a KittError or a
valid result, never another exception (issue 19).

A seeded generator rather than hypothesis: no new test dependency, and a failure names the seed
and the case, so it replays exactly. Three kinds of input per reader: random bytes, random JSON
built from the keys the reader looks for, and a valid document with one leaf replaced by a
nasty value (NaN, 1e308, 10**400, "²", a list where a number belongs...), which reaches deepest.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any, Callable

import pytest

from kitt.errors import KittError

CASES = 90  # mutated cases per reader (a third as many of each other kind)
KEYS = [
    "schema_version",
    "suite_name",
    "timestamp",
    "engine",
    "model",
    "passed",
    "results",
    "test_name",
    "run_number",
    "metrics",
    "errors",
    "fingerprint",
    "hardware_fingerprint",
    "suite",
    "repeats",
    "engine_image_digest",
    "name",
    "tests",
    "concurrency",
    "request_rate",
    "num_requests",
    "input_len",
    "output_len",
    "warmup",
    "seed",
    "api",
    "max_error_rate",
    "slo",
    "ttft_ms",
    "median_ttft_ms",
    "p99_itl_ms",
    "output_throughput",
    "failed",
    "completed",
    "pull_request",
    "head",
    "sha",
    "number",
    "workflow_run",
    "id",
    "conclusion",
    "head_sha",
]
NASTY: list[Any] = [
    0,
    -1,
    1,
    2,
    7,
    -0.0,
    0.5,
    1e308,
    -1e308,
    1e-320,
    10**400,
    -(10**30),
    1e20,
    float("nan"),
    float("inf"),
    True,
    False,
    None,
    "",
    " ",
    "x",
    "²",
    "٣",
    "1e400",
    "2025-05-01T10:00:00Z",
    "9999-12-31T23:59:59+14:00",
    "-->",
    "a\nb",
    [],
    {},
    [0],
    {"x": 1},
    "quick",
    "chat",
    "t-c1",
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.45:
        return rng.choice(NASTY)
    if roll < 0.7:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): random_json(rng, depth + 1) for _ in range(rng.randrange(6))}


def mutate(document: Any, rng: random.Random) -> Any:
    """``document`` with one randomly chosen leaf (or subtree) replaced by a nasty value."""
    mutated = copy.deepcopy(document)
    parent, key, node = None, None, mutated
    for _ in range(rng.randrange(1, 7)):
        children = (
            list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        )
        if not children:
            break
        parent, (key, node) = node, rng.choice(children)
    if parent is None:
        return rng.choice(NASTY)
    parent[key] = rng.choice(NASTY) if rng.random() < 0.8 else random_json(rng)
    return mutated


def dump(value: Any, rng: random.Random) -> bytes:
    text = json.dumps(value)  # NaN and Infinity as Python writes them
    return text.encode() if rng.random() < 0.9 else text.encode()[: rng.randrange(len(text) + 1)]


def inputs(valid: Any, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    cases = [(f"bytes#{i}", rng.randbytes(rng.randrange(200))) for i in range(CASES // 3)]
    cases += [(f"json#{i}", dump(random_json(rng), rng)) for i in range(CASES // 3)]
    cases += [(f"mutated#{i}", dump(mutate(valid, rng), rng)) for i in range(CASES)]
    return cases


def check_all(reader: Callable[[bytes], Any], valid: Any, seed: int) -> int:
    """Run ``reader`` on every case; return how many were accepted (the rest raised KittError)."""
    accepted = 0
    for name, data in inputs(valid, seed):
        try:
            reader(data)
        except KittError as error:
            text = str(error)
            assert text and "\n" not in text, f"seed {seed} case {name}: a KittError that is not one line: {text!r}"
        except Exception as error:  # noqa: BLE001 - the point of the test
            raise AssertionError(
                f"seed {seed} case {name} ({data[:120]!r}): {type(error).__name__}: {error}"
            ) from error
        else:
            accepted += 1
    return accepted


VALID_SUITE = {
    "name": "fuzz",
    "api": "chat",
    "warmup": 1,
    "repeats": 2,
    "seed": 3,
    "max_error_rate": 0.1,
    "slo": {"ttft_ms": 500, "tpot_ms": 50},
    "tests": [
        {"name": "a", "concurrency": [1, 2], "num_requests": 8, "input_len": 16, "output_len": 8},
        {"name": "b", "request_rate": [2.0], "num_requests": 8},
    ],
}
METRICS = {
    "median_ttft_ms": 40.0,
    "p99_ttft_ms": 55.0,
    "median_tpot_ms": 9.0,
    "p99_tpot_ms": 12.0,
    "median_itl_ms": 9.0,
    "p99_itl_ms": 14.0,
    "median_e2el_ms": 700.0,
    "p99_e2el_ms": 900.0,
    "output_throughput": 1500.0,
    "failed": 0.0,
    "completed": 32.0,
    "gpu_peak_memory_mib": None,
}
VALID_METRICS = {
    "schema_version": 1,
    "kitt_version": "0.1.0",
    "suite_name": "standard",
    "timestamp": "2025-05-01T10:00:00.000Z",
    "engine": "vllm",
    "model": "m",
    "passed": True,
    "total_time_seconds": 10.0,
    "hardware_fingerprint": "h",
    "results": [
        {
            "test_name": f"t-c{c}",
            "run_number": r,
            "passed": True,
            "metrics": {"concurrency": c, **METRICS},
            "errors": [],
        }
        for c in (1, 4)
        for r in (1, 2, 3)
    ],
}
VALID_CONFIG = {"suite": {"repeats": 3}, "engine_image_digest": "sha256:1", "model": "m"}
VALID_HARDWARE = {"fingerprint": "h", "gpu_count": 1, "gpus": [{"name": "NVIDIA H100"}]}


def test_suite_loader(tmp_path: Path) -> None:
    from kitt.config import Overrides, apply_overrides, load_suite

    path = tmp_path / "suite.yaml"

    def read(data: bytes) -> None:
        path.write_bytes(data)
        suite = load_suite(str(path))
        apply_overrides(suite, Overrides(repeats=2, input_len=10))

    assert check_all(read, VALID_SUITE, seed=1) > 0


def test_thresholds_loader(tmp_path: Path) -> None:
    from kitt.thresholds import load_thresholds

    path = tmp_path / "thresholds.yaml"

    def read(data: bytes) -> None:
        path.write_bytes(data)
        thresholds = load_thresholds(path, 5.0)
        assert all(v is None or v >= 0 for v in thresholds.per_metric.values())

    assert check_all(read, {"p99_ttft_ms": 10, "median_itl_ms": "off", "output_throughput": 2.5}, seed=2) > 0


@pytest.mark.parametrize("target", ["metrics.json", "hardware.json", "config.json"])
def test_result_set_readers_and_everything_downstream(tmp_path: Path, target: str) -> None:
    """A result set that loads must also compare, gate and render without an exception."""
    from kitt.ci import ReportOptions, build_report
    from kitt.compare import compare_result_sets
    from kitt.report import render_summary
    from kitt.results import load_result_set

    baseline = tmp_path / "baseline"
    baseline.mkdir()
    for name, document in (
        ("metrics.json", VALID_METRICS),
        ("hardware.json", VALID_HARDWARE),
        ("config.json", VALID_CONFIG),
    ):
        (baseline / name).write_text(json.dumps(document))
    current = tmp_path / "current"
    current.mkdir()
    valid = {"metrics.json": VALID_METRICS, "hardware.json": VALID_HARDWARE, "config.json": VALID_CONFIG}

    def read(data: bytes) -> None:
        for name, document in valid.items():
            (current / name).write_text(json.dumps(document))
        (current / target).write_bytes(data)
        result_set = load_result_set(current)
        render_summary(compare_result_sets(result_set, None))
        report = build_report(ReportOptions(results_dir=current, baseline_dir=baseline, fail_on_regression=True))
        assert report.markdown and report.exit_code in (0, 1)
        json.dumps(report.key_metrics, allow_nan=False)  # the action's `metrics` output

    assert check_all(read, valid[target], seed=3) > 0


def test_result_set_as_the_baseline(tmp_path: Path) -> None:
    from kitt.ci import ReportOptions, build_report

    current = tmp_path / "current"
    current.mkdir()
    (current / "metrics.json").write_text(json.dumps(VALID_METRICS))
    baseline = tmp_path / "baseline"
    baseline.mkdir()

    def read(data: bytes) -> None:
        (baseline / "metrics.json").write_bytes(data)
        report = build_report(ReportOptions(results_dir=current, baseline_dir=baseline, fail_on_regression=True))
        assert report.markdown

    assert check_all(read, VALID_METRICS, seed=4) > 0


def test_event_payload_reader(tmp_path: Path) -> None:
    """The runner's event payload and the pull_request.json an artifact carries: absent when unusable."""
    from kitt.action import ActionRun
    from kitt.github.pulls import PULL_REQUEST_FILE, read_pull_record
    from kitt.action_inputs import ActionInputs
    from kitt.github.actions_io import ActionsContext

    event = tmp_path / "event.json"
    results = tmp_path / "results"
    valid = {
        "pull_request": {"number": 7, "head": {"sha": "a" * 40}},
        "workflow_run": {"id": 42, "conclusion": "success"},
    }

    def read(data: bytes) -> None:
        event.write_bytes(data)
        context = ActionsContext.from_environment({"GITHUB_EVENT_PATH": str(event)})
        assert isinstance(context.event(), dict)
        for keys in (("pull_request",), ("pull_request", "head"), ("workflow_run",)):
            assert isinstance(context.event_object(*keys), dict)
        inputs = ActionInputs.from_environment({"INPUT_ENGINE": "none", "INPUT_RESULTS-DIR": str(results)})
        run = ActionRun(inputs, context)
        assert run._benchmark()  # engine none: only the pull request record is written
        record = results / PULL_REQUEST_FILE
        if record.exists():
            written = json.loads(record.read_text())
            assert isinstance(written["number"], int) and written["number"] > 0
            assert written["head_sha"] is None or isinstance(written["head_sha"], str)
        number = read_pull_record(event)
        assert number is None or (isinstance(number, int) and number > 0)

    assert check_all(read, valid, seed=5) > 0
