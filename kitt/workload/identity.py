"""What a run sent, as data for config.json: a fingerprint of the workload and the lengths sent.

Two runs with the same fingerprint sent the same requests (the same lengths, prompts or dataset
file, arrivals and time boxes, from the same seed); ``kitt.compare`` treats another fingerprint
like another suite. The words for the report are made in ``kitt/report/``.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from typing import Any, Sequence


def fingerprint(workload: Any) -> str:
    """A short stable hash of ``workload`` (plain JSON data)."""
    text = json.dumps(workload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def length_stats(values: Sequence[int]) -> dict[str, float] | None:
    """{min, median, max} of lengths sent (None when there are none)."""
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}
