"""kitt.thresholds: metric directions, the order metrics are listed in, and thresholds files."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import BAD_YAML_KINDS, bad_yaml

from kitt.errors import UsageError
from kitt.thresholds import (
    CHART_METRICS,
    DEFAULT_GATED,
    DEFAULT_THRESHOLD_PCT,
    HIGHER,
    LOWER,
    Thresholds,
    is_known_metric,
    load_thresholds,
    metric_direction,
    metric_sort_key,
)


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("median_ttft_ms", LOWER),
        ("p99_itl_ms", LOWER),
        ("p99.9_e2el_ms", LOWER),
        ("mean_schedule_lag_ms", LOWER),
        ("output_throughput", HIGHER),
        ("completed", HIGHER),
        ("failed", LOWER),
        ("server_generation_tokens", None),
        ("my_custom_metric", None),
        ("median_ttft_s", None),
    ],
)
def test_every_known_metric_has_a_direction_and_informational_or_unknown_ones_none(
    name: str, direction: str | None
) -> None:
    assert metric_direction(name) == direction


def test_informational_metrics_are_known_and_unknown_ones_are_not() -> None:
    assert is_known_metric("client_cpu_seconds") and metric_direction("client_cpu_seconds") is None
    assert is_known_metric("median_tpot_ms") and not is_known_metric("my_custom_metric")


def test_metrics_are_listed_default_gated_first_in_their_order_then_known_then_the_rest() -> None:
    names = ["zzz_custom", "completed", *reversed(DEFAULT_GATED), "client_cpu_seconds", "aaa_custom"]
    ordered = sorted(names, key=metric_sort_key)
    assert ordered[: len(DEFAULT_GATED)] == list(DEFAULT_GATED)
    assert ordered[len(DEFAULT_GATED) :] == ["client_cpu_seconds", "completed", "aaa_custom", "zzz_custom"]


def test_the_chart_metrics_are_directed_key_metrics() -> None:
    assert all(metric_direction(m) is not None for m in CHART_METRICS)


def test_by_default_only_the_key_metrics_gate_at_the_default_threshold() -> None:
    thresholds = Thresholds()
    assert [thresholds.for_metric(m) for m in DEFAULT_GATED] == [DEFAULT_THRESHOLD_PCT] * len(DEFAULT_GATED)
    assert thresholds.for_metric("request_throughput") is None  # directed, but not gated by default
    assert thresholds.for_metric("client_cpu_seconds") is None


def test_a_file_adds_a_metric_changes_one_and_switches_one_off(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yml"
    path.write_text("request_throughput: 3\np99_ttft_ms: 12.5\nmedian_itl_ms: off\n")
    thresholds = load_thresholds(path, default_pct=7)
    assert thresholds.for_metric("request_throughput") == 3.0
    assert thresholds.for_metric("p99_ttft_ms") == 12.5
    assert thresholds.for_metric("median_itl_ms") is None
    assert thresholds.for_metric("median_ttft_ms") == 7.0
    assert load_thresholds(None) == Thresholds(DEFAULT_THRESHOLD_PCT)
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert load_thresholds(empty) == Thresholds(DEFAULT_THRESHOLD_PCT)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("p99_ttf_ms: 10\n", "p99_ttf_ms is not a known metric"),
        ("client_cpu_seconds: 10\n", "is informational"),
        ("- p99_ttft_ms\n", "must be a mapping"),
        ("p99_ttft_ms: -1\n", "threshold must be a percentage"),
        ("p99_ttft_ms: yes\n", "threshold must be a percentage"),
        ("p99_ttft_ms: ten\n", "threshold must be a percentage"),
    ],
)
def test_a_bad_thresholds_file_is_one_usage_error_naming_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "thresholds.yml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_thresholds(path)
    assert fragment in str(caught.value) and str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_misspelt_metric_gets_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yml"
    path.write_text("p99_ttf_ms: 10\n")
    with pytest.raises(UsageError, match="Did you mean p99_ttft_ms"):
        load_thresholds(path)


@pytest.mark.parametrize("default", [-1.0, float("nan"), float("inf")])
def test_a_bad_default_threshold_is_a_usage_error(default: float) -> None:
    with pytest.raises(UsageError, match="--threshold must be a percentage"):
        load_thresholds(None, default_pct=default)


def test_prefix_cache_metrics_are_higher_shown_and_gated_only_when_asked(tmp_path):
    """Issue 25: a drop in the cache hit rate is a regression, but only a thresholds file makes it gate."""
    for name in ("prefix_cache_hit_rate", "cached_prompt_tokens"):
        assert metric_direction(name) == HIGHER and name not in DEFAULT_GATED
        assert Thresholds().for_metric(name) is None
    path = tmp_path / "thresholds.yaml"
    path.write_text("prefix_cache_hit_rate: 10\n")
    thresholds = load_thresholds(path)
    assert (
        thresholds.for_metric("prefix_cache_hit_rate") == 10 and thresholds.for_metric("cached_prompt_tokens") is None
    )


@pytest.mark.parametrize("kind", BAD_YAML_KINDS)
def test_untrusted_thresholds_files(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "thresholds.yml"
    path.write_bytes(bad_yaml(kind))
    with pytest.raises(UsageError, match="thresholds file") as caught:
        load_thresholds(path)
    assert "\n" not in str(caught.value)
