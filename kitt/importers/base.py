"""What every reader of another tool's files shares: the types it returns and the helpers it maps with.

Apart from the registry (``kitt.importers``) so that each reader imports only this, never the
package that imports every reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable


@dataclass
class Level:
    """One load level of one file: a test name carrying its level (``concurrency-c8``), and metrics."""

    test_name: str
    metrics: dict[str, float | None]
    passed: bool = True
    errors: list[str] = field(default_factory=list)


@dataclass
class ToolFile:
    """What a reader made of one file."""

    tool: str  # the tool's display name, used as the result set's suite
    levels: list[Level]
    timestamp: datetime | None = None
    model: str = "unknown"
    engine: str = "unknown"
    definitions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reader:
    name: str
    recognise: Callable[[dict[str, Any]], bool]
    read: Callable[[dict[str, Any], Path], ToolFile]


# --------------------------------------------------------------------------- helpers for readers


def number(value: Any) -> float | None:
    """A finite number, or None for anything else (strings, booleans, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def stats(block: Any, metric: str, names: dict[str, str], scale: float = 1.0) -> dict[str, float | None]:
    """``{stat}_{metric}_ms`` from a block of the tool's statistics: ``names`` maps kitt's stat
    (mean, median, std, p90, p95, p99) to the tool's key; ``scale`` turns its unit into ms."""
    if not isinstance(block, dict):
        return {}
    out: dict[str, float | None] = {}
    for ours, theirs in names.items():
        value = number(block.get(theirs))
        if value is not None:
            out[f"{ours}_{metric}_ms"] = value * scale
    return out


def level_name(
    concurrency: float | None, rate: float | None, unbounded: str = "throughput"
) -> tuple[str, dict[str, float | None]]:
    """A test name that carries the load level the way kitt's do, and the level as a metric.

    Every tool names a level alike (``concurrency-c8``, ``rate-r4``), so that two tools' runs
    line up test by test when shown side by side; the tool itself is the result set's suite."""
    if rate is not None and rate != float("inf") and rate > 0:
        return f"rate-r{rate:g}", {"request_rate": rate}
    if concurrency is not None and concurrency > 0:
        return f"concurrency-c{concurrency:g}", {"concurrency": concurrency}
    return unbounded, {}


def request_errors(completed: float | None, failed: float | None) -> list[str]:
    """kitt's own rule (``max_error_rate: 0``): a level with a failed request, or none completed, failed."""
    done, lost = int(completed or 0), int(failed or 0)
    errors = [f"{lost} of {done + lost} requests failed"] if lost else []
    return errors + ([] if done else ["no request completed"])


def parse_time(value: Any, formats: tuple[str, ...] = ()) -> datetime | None:
    """A tool's timestamp: epoch seconds (or ms/ns), ISO 8601, or one of ``formats``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        seconds = float(value)
        while seconds > 1e11:  # milliseconds, microseconds or nanoseconds since the epoch
            seconds /= 1000.0
        return datetime.fromtimestamp(seconds, timezone.utc)
    if isinstance(value, str) and value:
        for fmt in formats:
            try:
                return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
            except ValueError:
                pass
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None
