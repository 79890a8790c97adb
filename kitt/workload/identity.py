"""What a run sent, as data for config.json: a fingerprint of the workload and the lengths sent.

Two runs with the same fingerprint sent the same requests (the same lengths, prompts or dataset
file, shared prefixes, sessions, trace file and speed, arrivals and time boxes, from the same seed);
``kitt.compare`` treats another fingerprint like another suite. The words for the report are made in ``kitt/report/``.
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


def workload_record(suite: dict[str, Any], *, api: str, method: str, sent: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """config.json's ``workload``: the fingerprint, the length method, whether the workload is
    the plain fixed-length synthetic one, and per test what its measured requests asked for.

    ``suite`` is the resolved suite as config.json writes it; ``sent`` holds per test the input
    and output lengths of the measured requests and the prompts skipped or left inexact.
    """
    tests_data = [{k: v for k, v in t.items() if k != "levels"} for t in suite["tests"]]
    for test in tests_data:  # the file's content identifies a dataset, not where it lies
        if "dataset" in test:
            test["dataset"] = {k: test["dataset"].get(k) for k in ("format", "sample", "sha256")}
        if "trace" in test:
            test["trace"] = {k: test["trace"].get(k) for k in ("format", "sha256", "speedup", "block_size")}
    what = {"api": api, "seed": suite.get("seed"), "lengths": method.split(",")[0], "tests": tests_data}
    tests = {}
    plain = True
    for test in suite["tests"]:
        lengths = sent.get(test["name"]) or {"inputs": [], "outputs": [], "skipped": 0, "inexact": 0}
        rates = [level["value"] for level in test["levels"] if level["kind"] == "rate"]
        entry: dict[str, Any] = {
            "source": "dataset" if "dataset" in test else "trace" if "trace" in test else "synthetic",
            "requests": len(lengths["outputs"]),
            "input_tokens": length_stats(lengths["inputs"]),
            "output_tokens": length_stats(lengths["outputs"]),
            "skipped": lengths["skipped"],
            "inexact": lengths["inexact"],
            "rates": rates,
            "arrival": (test.get("arrival") or {"kind": "poisson", "burstiness": 1.0, "ramp_up_s": 0.0})
            if rates
            else None,
            "duration_s": test.get("duration_s"),
        }
        if "dataset" in test:
            entry["dataset"] = test["dataset"]
        if "prefix" in test:
            entry["prefix"] = test["prefix"]
        if "trace" in test:
            entry["trace"] = test["trace"]
        if "turns" in test:
            entry["turns"] = test["turns"]
        tests[test["name"]] = entry
        # suite_to_dict writes mix, dataset, arrival, duration_s, prefix, trace and turns only when a test sets them.
        plain = (
            plain
            and not ({"mix", "dataset", "arrival", "duration_s", "prefix", "trace", "turns"} & set(test))
            and all(isinstance(test[k], int) for k in ("input_len", "output_len"))
        )
    return {"fingerprint": fingerprint(what), "length_method": method, "plain": plain, "tests": tests}
