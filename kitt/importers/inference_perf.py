"""inference-perf's lifecycle reports (kubernetes-sigs/inference-perf), in seconds.

Checked against the source that writes them, ``summarize_requests`` in
``inference_perf/reportgen/base.py`` (kubernetes-sigs/inference-perf@7de5ef2, and the same
function in the inference-perf 0.7.0 wheel), and against files inference-perf 0.7.0 wrote here.
A run writes ``stage_<N>_lifecycle_metrics.json`` per load stage (its ``load_summary`` holds
``requested_rate``, and ``concurrency`` for ``load.type: concurrent``, whose "rate" is only the
stage's request count sent at once) and ``summary_lifecycle_metrics.json`` over all stages
together (no rate: not one load level). Each stage file is one level of one repeat; a whole-run
summary is read only where no stage file of the run lies beside it (as ``all-stages``).
Statistics are ``mean``/``min``/``max``/``median``/``p<N>`` (no std); every time is in seconds.

Its definitions, from that source: TTFT is the first token's time; ``request_latency`` is E2EL;
``time_per_output_token`` is (last token - first token) / (tokens - 1), kitt's TPOT when the
token count is the server's (``report.request_lifecycle.use_server_output_tokens: true``) or
its tokenizer's count agrees with the server's; otherwise inference-perf divided by its own
re-tokenized count, shown as ``*_tpot_own_tokens_ms`` (and its token rates as
``*_own_tokens``), not gated. ``inter_token_latency`` holds the gaps between its tokenizer's
tokens, each token stamped with its chunk's arrival, so a chunk of several tokens adds gaps of
0: kitt's per-gap ITL only where the counts agree, else ``*_itl_own_tokens_ms``.
``normalized_time_per_output_token`` (latency over tokens, first token included) is
``*_e2el_per_token_ms``. Reports without ``token_count_mismatches`` come from older releases
(that of @7ff8150, 2025-11, stamped every streamed line, blank ones included, as a token): their
TPOT and ITL are kept under the ``own_tokens`` names too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kitt.importers.base import Level, Reader, ToolFile, level_name, number, request_errors, stats

TOOL = "inference-perf"
_STATS = {"mean": "mean", "median": "median", "p90": "p90", "p95": "p95", "p99": "p99"}
_THROUGHPUT = {
    "requests_per_sec": "request_throughput",
    "output_tokens_per_sec": "output_throughput",
    "total_tokens_per_sec": "total_token_throughput",
}
NTPOT_LINE = (
    "inference-perf's normalized time per output token (latency over tokens, first token included) "
    "is shown as e2el_per_token, not gated."
)
_STAGE_FILE_BYTES = 16 * 1024 * 1024  # a stage report is kilobytes; a per-request report beside it can be huge
SUMMARY_LINE = (
    "inference-perf's summary_lifecycle_metrics.json spans every stage of a run together: read as "
    "all-stages only where the run's per-stage files are absent."
)


def recognise(data: dict[str, Any]) -> bool:
    successes = data.get("successes")
    return "load_summary" in data and isinstance(successes, dict) and isinstance(successes.get("latency"), dict)


def _is_stage(data: dict[str, Any]) -> bool:
    return "requested_rate" in (data.get("load_summary") or {})


def _run_has_stage_files(path: Path) -> bool:
    """True when a per-stage report of inference-perf lies in ``path``'s folder (by content)."""
    for sibling in path.parent.glob("*.json"):
        if sibling == path or not sibling.is_file() or sibling.stat().st_size > _STAGE_FILE_BYTES:
            continue
        try:
            data = json.loads(sibling.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and recognise(data) and _is_stage(data):
            return True
    return False


def _counts(successes: dict[str, Any], seconds: float | None) -> tuple[bool, bool, str]:
    """(TPOT and token rates use the server's count, ITL's tokens are the server's, a note)."""
    mismatches = number(successes.get("token_count_mismatches"))
    if mismatches is None:
        return (
            False,
            False,
            (
                "this inference-perf report predates token_count_mismatches, so what its TPOT and ITL "
                "divide is unknown (late-2025 releases timed every streamed line): shown as "
                "tpot_own_tokens and itl_own_tokens, not gated."
            ),
        )
    if mismatches == 0:
        return True, True, ""
    server = number((successes.get("output_tokens") or {}).get("total"))
    rate = number((successes.get("throughput") or {}).get("output_tokens_per_sec"))
    divided = rate * seconds if rate is not None and seconds else None
    server_count = server is not None and divided is not None and abs(divided - server) <= max(0.5, 1e-6 * server)
    note = (
        "inference-perf's tokenizer counted other tokens than the server's usage (output_len vs output_tokens): "
        "its ITL (gaps between its tokens, 0 inside a chunk) is shown as itl_own_tokens, not gated"
    )
    if server_count:
        return True, False, note + "; its TPOT used the server's count (use_server_output_tokens), kitt's TPOT."
    return (
        False,
        False,
        (
            note + ", and so are its TPOT and token rates (tpot_own_tokens, *_own_tokens), divided by "
            "its own count; set report.request_lifecycle.use_server_output_tokens: true."
        ),
    )


def read(data: dict[str, Any], path: Path) -> ToolFile:
    if not _is_stage(data) and _run_has_stage_files(path):
        return ToolFile(tool=TOOL, levels=[], definitions=[SUMMARY_LINE])
    successes, failures, load = data["successes"], data.get("failures") or {}, data.get("load_summary") or {}
    latency = successes["latency"]
    server_tpot, server_itl, note = _counts(successes, number(data.get("benchmark_time_seconds")))
    metrics: dict[str, float | None] = {}
    names = {
        "time_to_first_token": "ttft",
        "request_latency": "e2el",
        "normalized_time_per_output_token": "e2el_per_token",
        "time_per_output_token": "tpot" if server_tpot else "tpot_own_tokens",
        "inter_token_latency": "itl" if server_itl else "itl_own_tokens",
    }
    for theirs, ours in names.items():
        metrics |= stats(latency.get(theirs), ours, _STATS, scale=1000.0)
    for theirs, ours in _THROUGHPUT.items():
        if (value := number((successes.get("throughput") or {}).get(theirs))) is not None:
            metrics[ours if server_tpot or ours == "request_throughput" else f"{ours}_own_tokens"] = value
    completed, failed = number(successes.get("count")), number(failures.get("count"))
    metrics |= {k: v for k, v in (("completed", completed), ("failed", failed)) if v is not None}
    if _is_stage(data):
        name, level = level_name(
            number(load.get("concurrency")), None if "concurrency" in load else number(load.get("requested_rate"))
        )
    else:
        name, level = "all-stages", {}
    errors = request_errors(completed, failed)
    definitions = [NTPOT_LINE, *([note] if note else []), *([] if _is_stage(data) else [SUMMARY_LINE])]
    return ToolFile(
        tool=TOOL, levels=[Level(name, {**metrics, **level}, passed=not errors, errors=errors)], definitions=definitions
    )


READER = Reader("inference_perf", recognise, read)
