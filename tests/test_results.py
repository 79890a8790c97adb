"""kitt.results: writing a result set, and reading this project's and upstream KITT's files back."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from kitt.errors import ResultsError, UsageError
from kitt.results import (
    HISTORY_JOB_FOLDER,
    SCHEMA_VERSION,
    SamplesWriter,
    find_latest_metrics,
    history_job_folder,
    load_metrics_file,
    load_result_set,
    metrics_document,
    prepare_output_dir,
    utc_timestamp,
    write_json,
)
from kitt.results import TestResult as Result  # as "Result", so pytest does not take it for a test class


def document(timestamp: str = "2026-05-01T10:00:00.000Z", **metrics: float | None) -> dict[str, Any]:
    results = [Result("latency-c1", 1, True, {"median_ttft_ms": 40.0, "output_throughput": 900.0, **metrics})]
    return metrics_document(
        suite_name="quick",
        engine="sim",
        model="m",
        kitt_version="0.1.0",
        timestamp=timestamp,
        total_time_seconds=12.34567,
        results=results,
        passed=True,
        extra={"hardware_fingerprint": "fp"},
    )


def test_metrics_json_keeps_upstream_fields_first_and_non_finite_numbers_as_null(tmp_path: Path) -> None:
    doc = document(p99_ttft_ms=float("nan"), duration=float("inf"))
    assert list(doc)[:9] == [
        "schema_version",
        "kitt_version",
        "suite_name",
        "timestamp",
        "engine",
        "model",
        "passed",
        "total_time_seconds",
        "results",
    ]
    assert doc["schema_version"] == SCHEMA_VERSION and doc["total_time_seconds"] == 12.346
    metrics = doc["results"][0]["metrics"]
    assert metrics["p99_ttft_ms"] is None and metrics["duration"] is None
    write_json(tmp_path / "out" / "metrics.json", doc)  # strict JSON: would raise on NaN
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == doc
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["metrics.json"]  # no temporary file left


def test_a_result_set_reads_back_with_its_hardware_and_config(tmp_path: Path) -> None:
    write_json(tmp_path / "metrics.json", document())
    write_json(tmp_path / "hardware.json", {"fingerprint": "gpu-abc"})
    write_json(tmp_path / "config.json", {"seed": 7})
    result_set = load_result_set(tmp_path)
    assert (result_set.model, result_set.engine, result_set.suite_name) == ("m", "sim", "quick")
    assert result_set.timestamp == datetime(2026, 5, 1, 10, tzinfo=timezone.utc)
    assert result_set.fingerprint == "gpu-abc" and result_set.config == {"seed": 7}
    assert result_set.results == [Result("latency-c1", 1, True, {"median_ttft_ms": 40.0, "output_throughput": 900.0})]


def test_an_upstream_kitt_file_without_schema_or_hardware_reads(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(
        json.dumps(
            {
                "suite": "standard",
                "timestamp": "2025-01-02T03:04:05",
                "engine": "vllm",
                "model": "m",
                "results": [{"test_name": "t", "metrics": {"median_ttft_ms": 5, "note": "text", "nested": {"a": 1}}}],
            }
        )
    )
    result_set = load_metrics_file(tmp_path / "metrics.json")
    assert result_set.schema_version is None and result_set.suite_name == "standard" and result_set.passed
    assert result_set.timestamp.tzinfo is not None  # a naive time is read as UTC
    assert result_set.results[0].metrics == {"median_ttft_ms": 5.0}  # strings and objects are not numbers
    assert result_set.results[0].run_number == 1 and result_set.fingerprint is None


def test_the_newest_result_set_is_chosen_by_its_timestamp_not_its_path(tmp_path: Path) -> None:
    write_json(tmp_path / "a-new" / "metrics.json", document("2026-06-01T00:00:00Z"))
    write_json(tmp_path / "z-old" / "metrics.json", document("2026-01-01T00:00:00Z"))
    assert find_latest_metrics(tmp_path) == tmp_path / "a-new" / "metrics.json"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"schema_version": SCHEMA_VERSION + 1}, "newer than this kitt understands"),
        ({"schema_version": 0}, "schema_version must be a positive integer"),
        ({"results": {"t": 1}}, "'results' must be a list"),
        ({"results": [{"test_name": ""}]}, "test_name must be a non-empty string"),
        ({"results": [{"test_name": "t", "run_number": 0}]}, "run_number must be a positive integer"),
        ({"results": [{"test_name": "t", "metrics": {"median_ttft_ms": -1}}]}, "median_ttft_ms is negative"),
        ({"timestamp": "yesterday"}, "no usable 'timestamp'"),
    ],
)
def test_an_unusable_metrics_file_is_one_results_error(tmp_path: Path, change: dict[str, Any], fragment: str) -> None:
    write_json(tmp_path / "metrics.json", {**document(), **change})
    with pytest.raises(ResultsError) as caught:
        load_metrics_file(tmp_path / "metrics.json")
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_all_zero_metrics_mark_the_repeat_failed(tmp_path: Path) -> None:
    write_json(tmp_path / "metrics.json", document(median_ttft_ms=0.0, output_throughput=0.0, failed=0.0))
    (result,) = load_metrics_file(tmp_path / "metrics.json").results
    assert not result.passed and result.errors[0] == "every metric is zero: nothing was measured"


def test_a_missing_folder_or_no_metrics_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="does not exist"):
        load_result_set(tmp_path / "nowhere")
    with pytest.raises(ResultsError, match="no metrics.json found under"):
        load_result_set(tmp_path)


def test_the_output_folder_is_created_and_proven_writable(tmp_path: Path) -> None:
    assert prepare_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the write probe is gone
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="exists and is not a directory"):
        prepare_output_dir(tmp_path / "file")


def test_samples_are_one_json_line_per_request(tmp_path: Path) -> None:
    with SamplesWriter(tmp_path / "samples.jsonl") as writer:
        writer.write_many([{"i": 0}, {"i": 1}])
        writer.write_many([{"i": 2}])
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_timestamps_and_history_folder_names() -> None:
    assert utc_timestamp(datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.678Z"
    assert history_job_folder(3, 1234) == "03-run1234" and HISTORY_JOB_FOLDER.fullmatch(history_job_folder(12, 9))
