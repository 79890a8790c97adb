"""Trace replay: a test's ``trace: {path, format, speedup, block_size}``.

Formats (JSONL, one request a line, in the order they arrived):

- ``mooncake``: ``{"timestamp" (ms), "input_length", "output_length", "hash_ids": [int, ...]}``,
  Mooncake's traces: one hash id per ``block_size`` tokens of the prompt (512 in theirs), and
  requests whose ``hash_ids`` open alike share those leading blocks;
- ``timed``: a team's own trace, ``{"timestamp_ms", "input_len", "output_len"}`` (a synthetic
  prompt of that length) or ``{"timestamp_ms", "prompt" | "messages", "output_len"}`` (that
  text; ``messages`` are sent as one user message of their contents, joined by blank lines).

Request i is due at ``(timestamp_i - timestamp_0) / speedup`` after the level starts: the first
line's timestamp is the level's start (Mooncake's traces start at 0, so this is ``timestamp /
speedup``; a trace of epoch milliseconds replays too). Timestamps that go backwards are refused,
naming the line, rather than sorted: ``num_requests`` takes the first lines of the file, and a
file out of order is most often two traces concatenated or the wrong column, which a silent
sort would replay as something the file does not say.

Prompts: each distinct chain of leading hash ids (a node of their prefix tree, so a hash id
means the same block only after the same ones) gets its own block of words, fitted with the
engine's counter to exactly ``block_size`` tokens (counted alone, less the tokens the engine adds
to any prompt: a BOS, a chat template; all blocks in one batch, so the cost grows with the
prompts, not with their square); a request's prompt is its whole shared blocks followed by its
own words, fitted so that the whole prompt is exactly ``input_length`` tokens as the engine
counts it (a partial last block and anything past its hash ids are its own). Requests sharing leading hash ids therefore share
exactly those leading ``block_size``-token blocks. The words depend on the seed and the level's
salt (test, level and repeat), as synthetic prompts do: both arms of an A/B run get the same
prompts, and each repeat replays the trace against a cache that has not seen its blocks. Without
a counter a block is ``block_size`` words (approximate, and the lengths say so).

A trace file is untrusted input: read through ``kitt.safeload`` (at most ``TRACE_MAX_BYTES``,
UTF-8, JSON nesting bounded), at most ``MAX_RECORDS`` lines kept, every problem naming the file
and line.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kitt.errors import UsageError
from kitt.safeload import parse_json, read_text
from kitt.workload import tokens
from kitt.workload.spec import RequestSpec
from kitt.workload.synthetic import prompt_words

FORMATS = ("mooncake", "timed")
DEFAULT_BLOCK_SIZE = 512  # Mooncake's
TRACE_MAX_BYTES = 64 * 1024 * 1024
MAX_RECORDS = 1_000_000

_HINTS = {
    "mooncake": 'Each line must be {"timestamp": ms, "input_length": N, "output_length": N, "hash_ids": [int, ...]}.',
    "timed": 'Each line must be {"timestamp_ms": ms, "input_len": N, "output_len": N} or '
    '{"timestamp_ms": ms, "prompt": "...", "output_len": N} (or "messages" for "prompt").',
}


@dataclass(frozen=True)
class TraceRecord:
    timestamp_ms: float
    input_len: int  # tokens; 0 when the line gives its prompt's text
    output_len: int
    hash_ids: tuple[int, ...] = ()
    prompt: str | None = None


@dataclass(frozen=True)
class TraceSpec:
    """A test's trace: where, in which format, how fast; once read, its records and sha256."""

    path: str
    format: str = "mooncake"
    speedup: float = 1.0
    block_size: int = DEFAULT_BLOCK_SIZE
    sha256: str | None = None
    records: tuple[TraceRecord, ...] | None = field(default=None, repr=False, compare=False)

    def to_data(self) -> dict[str, Any]:
        """As config.json writes it."""
        return {
            "path": self.path,
            "format": self.format,
            "speedup": self.speedup,
            "block_size": self.block_size,
            "sha256": self.sha256,
            "records": len(self.records) if self.records is not None else None,
        }

    def offsets(self, count: int, duration_s: float | None = None) -> list[float]:
        """The due times (seconds from the level's start) of the first ``count`` records, those
        before ``duration_s`` only."""
        records = (self.records or ())[:count]
        if not records:
            return []
        first = records[0].timestamp_ms
        due = [(r.timestamp_ms - first) / self.speedup / 1e3 for r in records]
        return [d for d in due if duration_s is None or d < duration_s]


def read_trace(spec: TraceSpec) -> TraceSpec:
    """``spec`` with its records read and checked; a UsageError naming the file and line if not usable."""
    text = read_text(Path(spec.path), f"trace ({spec.format})", UsageError, TRACE_MAX_BYTES)
    where = f"trace {spec.path}"
    records: list[TraceRecord] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(records) == MAX_RECORDS:
            break
        record = _parse_line(spec.format, line, f"{where}, line {number}")
        if records and record.timestamp_ms < records[-1].timestamp_ms:
            raise UsageError(
                f"{where}, line {number}: timestamp {record.timestamp_ms:g} ms is before the previous "
                f"request's {records[-1].timestamp_ms:g} ms (timestamps must not go backwards)",
                hint="Sort the file by timestamp: kitt replays it in file order and does not sort it.",
            )
        records.append(record)
    if not records:
        raise UsageError(f"{where} holds no request", hint=_HINTS[spec.format])
    return replace(spec, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), records=tuple(records))


def _parse_line(fmt: str, line: str, where: str) -> TraceRecord:
    try:
        item = parse_json(line, where, UsageError)
    except UsageError:
        raise UsageError(f"{where}: not a JSON object ({fmt} format)", hint=_HINTS[fmt]) from None
    if not isinstance(item, dict):
        raise UsageError(f"{where}: not a JSON object ({fmt} format)", hint=_HINTS[fmt])
    if fmt == "mooncake":
        hash_ids = item.get("hash_ids")
        if not isinstance(hash_ids, list) or any(isinstance(h, bool) or not isinstance(h, int) for h in hash_ids):
            raise UsageError(
                f"{where}: hash_ids must be a list of whole numbers, got {_show(hash_ids)}", hint=_HINTS[fmt]
            )
        return TraceRecord(
            _timestamp(item, "timestamp", where, fmt),
            _length(item, "input_length", where, fmt),
            _length(item, "output_length", where, fmt),
            tuple(hash_ids),
        )
    timestamp = _timestamp(item, "timestamp_ms", where, fmt)
    output_len = _length(item, "output_len", where, fmt)
    if "prompt" in item or "messages" in item:
        return TraceRecord(timestamp, 0, output_len, prompt=_text(item, where))
    return TraceRecord(timestamp, _length(item, "input_len", where, fmt), output_len)


def _timestamp(item: dict[str, Any], key: str, where: str, fmt: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{where}: {key} must be a number of milliseconds >= 0, got {_show(value)}", hint=_HINTS[fmt])
    return float(value)


def _length(item: dict[str, Any], key: str, where: str, fmt: str) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{where}: {key} must be a whole number of tokens >= 1, got {_show(value)}", hint=_HINTS[fmt])
    return value


def _text(item: dict[str, Any], where: str) -> str:
    if "prompt" in item:
        prompt = item["prompt"]
    else:
        messages = item["messages"]
        prompt = None
        if isinstance(messages, list) and all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
        ):
            prompt = "\n\n".join(m["content"] for m in messages)
    if not isinstance(prompt, str) or not prompt.strip():
        raise UsageError(
            f"{where}: prompt must be non-empty text (or messages a list of {{role, content}})", hint=_HINTS["timed"]
        )
    return prompt


def _show(value: Any) -> str:
    return "nothing" if value is None else json.dumps(value)[:40]


def build_requests(spec: TraceSpec, count: int, seed: int, salt: str, counter: tokens.Counter | None) -> tokens.Fitted:
    """The first ``count`` records as requests, in order (request i is due at ``offsets()[i]``),
    with exact lengths when ``counter`` is given (see the module's docstring)."""
    records = (spec.records or ())[:count]
    rng = random.Random(f"{seed}:{salt}:trace")
    overhead = _overhead(counter)
    chains = [_shared_chain(record, spec.block_size, overhead) for record in records]
    blocks, inexact = _build_blocks(chains, spec.block_size, overhead, rng, counter, seed, salt)
    requests: list[RequestSpec] = []
    own: list[int] = []  # the requests whose own words are fitted
    for index, (record, chain) in enumerate(zip(records, chains)):
        if record.prompt is not None:
            requests.append(RequestSpec(index=index, prompt=record.prompt, max_tokens=record.output_len))
            continue
        shared = " ".join(blocks[chain[:j]] for j in range(1, len(chain) + 1))
        rest = record.input_len - len(chain) * spec.block_size - overhead
        if chain and rest == 0:  # the prompt is its shared blocks, already fitted
            requests.append(
                RequestSpec(index=index, prompt=shared, max_tokens=record.output_len, input_len=record.input_len)
            )
            continue
        requests.append(
            RequestSpec(
                index=index,
                prompt=prompt_words(rng, max(rest, 1)),
                max_tokens=record.output_len,
                input_len=record.input_len,
                prefix=shared,
            )
        )
        own.append(index)
    if counter is None:
        return tokens.Fitted(requests)
    fitted = tokens.fit([requests[i] for i in own], counter, seed, f"{salt}:trace", synthetic=True)
    for i, spec_fitted in zip(own, fitted.requests):
        requests[i] = spec_fitted
    given = [i for i, r in enumerate(records) if r.prompt is not None]
    for i, measured in zip(given, counter.count([requests[i].text for i in given]) if given else []):
        requests[i] = replace(requests[i], input_len=measured)
    return tokens.Fitted(requests, inexact=fitted.inexact + inexact)


def _overhead(counter: tokens.Counter | None) -> int:
    """The tokens the engine adds to any prompt (a BOS, a chat template): one word counted alone
    and twice over, ``2 * count(w) - count(w w)``; 0 without a counter."""
    if counter is None:
        return 0
    once, twice = counter.count(["a", "a a"])
    return max(2 * once - twice, 0)


def _shared_chain(record: TraceRecord, block_size: int, overhead: int) -> tuple[int, ...]:
    """The leading hash ids whose whole blocks the record's prompt holds (a partial last block is its own)."""
    room = record.input_len - overhead
    return record.hash_ids[: min(len(record.hash_ids), room // block_size)] if room > 0 else ()


def _build_blocks(
    chains: list[tuple[int, ...]],
    block_size: int,
    overhead: int,
    rng: random.Random,
    counter: tokens.Counter | None,
    seed: int,
    salt: str,
) -> tuple[dict[tuple[int, ...], str], int]:
    """The words of each block, keyed by its chain of hash ids (the node of their prefix tree),
    each fitted alone, in one batch, to ``block_size`` tokens plus the engine's ``overhead``:
    words join at spaces, so the prompt through block j is ``j * block_size`` tokens after the
    overhead, and a prompt's tokens are counted whole when its own words are fitted. Returns the
    blocks and how many could not be fitted exactly."""
    nodes = list(dict.fromkeys(chain[:depth] for chain in chains for depth in range(1, len(chain) + 1)))
    specs = [
        RequestSpec(index=n, prompt=prompt_words(rng, block_size), max_tokens=1, input_len=block_size + overhead)
        for n in range(len(nodes))
    ]
    inexact = 0
    if counter is not None and specs:
        fitted = tokens.fit(specs, counter, seed, f"{salt}:blocks", synthetic=True)
        specs, inexact = fitted.requests, fitted.inexact
    return {node: spec.prompt for node, spec in zip(nodes, specs)}, inexact
