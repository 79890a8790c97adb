"""Metric directions and regression thresholds: which metrics gate, and at what change.

Every known metric has a direction (higher or lower is better). Latencies (``*_ttft_ms`` and
friends) are lower-is-better by their name's shape; the rest are listed. Informational metrics
are shown in reports but never gate; unknown metrics (say, a custom one in an upstream file)
are shown too and never gate. By default ten key metrics gate (the tenth, ``capacity``, only in
capacity tests); a thresholds file can add any
directed metric or switch one off.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from kitt.errors import UsageError

HIGHER = "higher"
LOWER = "lower"
DEFAULT_THRESHOLD_PCT = 5.0

DEFAULT_GATED = (
    "median_ttft_ms",
    "p99_ttft_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "median_itl_ms",
    "p99_itl_ms",
    "median_e2el_ms",
    "p99_e2el_ms",
    "output_throughput",
    "capacity",
)
_LATENCY = re.compile(r"^(mean|median|std|p\d+(?:\.\d+)?)_(ttft|tpot|itl|e2el|schedule_lag)_ms$")
_DIRECTIONS = {
    **dict.fromkeys(
        [
            "request_throughput",
            "output_throughput",
            "total_token_throughput",
            "request_goodput",
            "completed",
            "total_input_tokens",
            "total_output_tokens",
            "capacity",
            "prefix_cache_hit_rate",
            "cached_prompt_tokens",
        ],
        HIGHER,
    ),
    **dict.fromkeys(
        [
            "failed",
            "duration",
            "token_count_mismatch",
            "gpu_peak_memory_mib",
            "gpu_mean_power_w",
            "gpu_energy_per_output_token_j",
            "gpu_energy_j",
            "output_len_mismatch",
        ],
        LOWER,
    ),
}
# Known, shown, but with no better direction: they can never gate.
INFORMATIONAL = frozenset(
    {
        "server_generation_tokens",
        "server_prompt_tokens",
        "gpu_mean_utilization_pct",
        "client_cpu_seconds",
        "client_cpu_util_pct",
        "usage_count_rejected",
        "completed_without_text",
        "capacity_bound",
        "capacity_lower",
        "capacity_upper",
        "capacity_probes",
        "median_ttft_ms_turn1",
        "median_ttft_ms_later",
        "sessions_cut_by_length",
        "turns_not_sent",
    }
)
# Run parameters that upstream and we store among the metrics; they identify a test, not measure it.
LOAD_PARAMETERS = frozenset({"concurrency", "request_rate", "max_concurrency", "num_prompts", "burstiness"})
# The key metrics drawn across a sweep of load levels (and across a history of jobs).
CHART_METRICS = ("output_throughput", "median_e2el_ms")


def metric_direction(name: str) -> str | None:
    """``"higher"`` or ``"lower"`` (is better) for a known metric; None for informational or unknown."""
    if _LATENCY.match(name):
        return LOWER
    return _DIRECTIONS.get(name)


def is_known_metric(name: str) -> bool:
    return metric_direction(name) is not None or name in INFORMATIONAL


def metric_sort_key(name: str) -> tuple[int, int, str]:
    """The order metrics are listed in: default-gated ones first, in their listed order, then known ones, then the rest."""
    if name in DEFAULT_GATED:
        return (0, DEFAULT_GATED.index(name), name)
    return (1 if is_known_metric(name) else 2, 0, name)


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Thresholds:
    """Which metrics gate, and at what percent change. ``None`` in ``per_metric`` switches one off."""

    default_pct: float = DEFAULT_THRESHOLD_PCT
    per_metric: dict[str, float | None] = field(default_factory=dict)

    def for_metric(self, name: str) -> float | None:
        """The gating threshold in percent, or None when the metric does not gate."""
        if metric_direction(name) is None:
            return None
        if name in self.per_metric:
            return self.per_metric[name]
        return self.default_pct if name in DEFAULT_GATED else None


def load_thresholds(path: Path | None, default_pct: float = DEFAULT_THRESHOLD_PCT) -> Thresholds:
    """Read a thresholds file: a flat YAML mapping of metric name to percent, or ``off``."""
    if not (isinstance(default_pct, (int, float)) and math.isfinite(default_pct) and default_pct >= 0):
        raise UsageError(f"--threshold must be a percentage of 0 or more, got {default_pct!r}")
    if path is None:
        return Thresholds(float(default_pct))
    from kitt.safeload import YAML_MAX_BYTES, parse_yaml, read_text

    text = read_text(Path(path), "thresholds file", UsageError, YAML_MAX_BYTES)
    data = parse_yaml(text, f"thresholds file {path}", UsageError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(
            f"thresholds file {path} must be a mapping of metric name to percent",
            hint="For example `p99_ttft_ms: 10` or `p99_itl_ms: off`.",
        )
    per_metric: dict[str, float | None] = {}
    for key, value in data.items():
        name = str(key)
        where = f"thresholds file {path}: {name}"
        if metric_direction(name) is None:
            close = difflib.get_close_matches(name, [*DEFAULT_GATED, *_DIRECTIONS], n=1)
            why = (
                "is informational (no better direction), so it cannot gate"
                if name in INFORMATIONAL
                else "is not a known metric"
            )
            raise UsageError(f"{where} {why}", hint=f"Did you mean {close[0]}?" if close else None)
        if value is False or value is None:
            per_metric[name] = None
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1e300:
            raise UsageError(f"{where}: threshold must be a percentage of 0 or more, or off; got {value!r}")
        else:
            per_metric[name] = float(value)
    return Thresholds(float(default_pct), per_metric)
