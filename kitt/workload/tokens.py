"""Exact prompt lengths: measure a level's prompts with a tokenizer and fit them to their lengths.

A :class:`Counter` counts tokens as the engine will: its own ``/tokenize`` (``kitt.engines.tokenize``
speaks each engine's dialect), or the model's ``tokenizer.json`` through the optional
``tokenizers`` package (:class:`LocalTokenizer`). :func:`fit` then builds every synthetic prompt to
its exact token count, before the level's clock starts and in batches: measure all prompts, add
or drop words by the difference, measure again, and after a few rounds step one word at a time
(a word of several tokens can overshoot). A dataset prompt keeps its text; it is measured, and
skipped (and counted) when it does not fit the engine's context with its output.

Without a counter the lengths are approximate (one token a word): :func:`approximation` tells
by how much, from what the server counted.
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, Sequence

from kitt.workload.spec import RequestSpec
from kitt.workload.synthetic import FINE_WORDS, filler_words

ENGINE_METHOD = "exact, engine /tokenize"
LOCAL_METHOD = "exact, tokenizer.json"
APPROXIMATE = "approximate"

# Rounds of adjusting by the whole difference, then of trying a few one-word variants.
_COARSE_ROUNDS = 4
_FINE_ROUNDS = 8
_VARIANTS = 8


class Counter(Protocol):
    """Counts prompt tokens as the engine will for the API in use (chat: with its template)."""

    method: str  # ENGINE_METHOD or LOCAL_METHOD
    max_model_len: int | None  # the engine's context, when known

    def count(self, prompts: Sequence[str]) -> list[int]: ...


@dataclass
class Fitted:
    requests: list[RequestSpec]
    skipped: int = 0  # dataset prompts that did not fit the engine's context
    inexact: int = 0  # synthetic prompts left off their length (a tokenizer no word sequence can hit)


def fit(requests: list[RequestSpec], counter: Counter, seed: int, salt: str, *, synthetic: bool) -> Fitted:
    """``requests`` with exact lengths: synthetic prompts rebuilt to ``input_len`` tokens; dataset
    prompts measured (``input_len`` set) and those past the context skipped. A request's shared
    prefix is counted with it and never changed: only its own words are."""
    if not requests:
        return Fitted(requests)
    if not synthetic:
        return _measure_dataset(requests, counter)
    rng = random.Random(f"{seed}:{salt}:fit")
    words = [spec.prompt.split() for spec in requests]
    targets = [spec.input_len for spec in requests]
    shared = [len(spec.prefix.split()) for spec in requests]
    counts = counter.count([_text(spec, w) for spec, w in zip(requests, words)])
    for _ in range(_COARSE_ROUNDS):
        off = [i for i, (c, t) in enumerate(zip(counts, targets)) if c != t]
        if not off:
            break
        for i in off:
            # Words by the difference in tokens over this prompt's tokens per word (a small
            # vocabulary spends several tokens on a word); a shared prefix's words count too.
            difference = targets[i] - counts[i]
            per_word = counts[i] / (len(words[i]) + shared[i])
            step = round(difference / max(per_word, 1.0)) or (1 if difference > 0 else -1)
            if step > 0:
                words[i].extend(filler_words(rng, step))
            elif len(words[i]) > 1:
                del words[i][max(len(words[i]) + step, 1) :]  # keep the distinct opening word
            else:  # the opening alone is too long (digits can be a token each): shorten it
                words[i][0] = words[i][0][: max(len(words[i][0]) + step, 1)]
        for i, count in zip(off, counter.count([_text(requests[i], words[i]) for i in off])):
            counts[i] = count
    for _ in range(_FINE_ROUNDS):
        # The last tokens: a few variants of each prompt still off (a word added, dropped or
        # swapped), all measured in one batch; the nearest is kept.
        off = [i for i, (c, t) in enumerate(zip(counts, targets)) if c != t]
        if not off:
            break
        variants = [(i, v) for i in off for v in _variants(words[i], targets[i] - counts[i], rng)]
        measured = counter.count([_text(requests[i], v) for i, v in variants])
        for (i, variant), count in zip(variants, measured):
            if abs(targets[i] - count) < abs(targets[i] - counts[i]):
                words[i], counts[i] = variant, count
    fitted = [replace(spec, prompt=" ".join(w)) for spec, w in zip(requests, words)]
    return Fitted(fitted, inexact=sum(1 for c, t in zip(counts, targets) if c != t))


def _text(spec: RequestSpec, words: list[str]) -> str:
    """The whole prompt with ``words`` as its own part: a shared prefix (never changed here) stays in front."""
    own = " ".join(words)
    return f"{spec.prefix} {own}" if spec.prefix else own


def _variants(words: list[str], difference: int, rng: random.Random) -> list[list[str]]:
    """Small changes toward the length: add a word or a digit to the opening number (too short),
    or drop the last word, alone or for another, or a digit (too long)."""
    picks = rng.sample(FINE_WORDS, _VARIANTS)
    opening, rest = words[0], words[1:]
    if difference > 0:
        variants = [words + [w] for w in picks] + [[opening + str(rng.randrange(10))] + rest]
        if rest:
            variants += [words[:-1] + [a, b] for a, b in zip(picks, reversed(picks))]
        return variants
    # A digit less in the opening number (tokenizers often spend a token a digit).
    variants = [[opening[:-1]] + rest] if len(opening) > 1 else []
    if rest:
        variants += [words[:-1]] + [words[:-2] + [w] for w in picks if len(words) > 2]
    return variants


def _measure_dataset(requests: list[RequestSpec], counter: Counter) -> Fitted:
    counts = counter.count([spec.text for spec in requests])
    limit = counter.max_model_len
    kept = [
        replace(spec, input_len=count)
        for spec, count in zip(requests, counts)
        if limit is None or count + spec.max_tokens <= limit
    ]
    kept = [replace(spec, index=index) for index, spec in enumerate(kept)]
    return Fitted(kept, skipped=len(requests) - len(kept))


def approximation(requested: Sequence[int], counted: Sequence[int]) -> str:
    """``approximate, ±N%``: the median relative difference between the lengths asked for and
    those the server counted (``approximate`` alone when nothing was counted)."""
    errors = [abs(c - r) / r for r, c in zip(requested, counted) if r > 0 and c is not None]
    if not errors:
        return APPROXIMATE
    return f"{APPROXIMATE}, ±{100 * statistics.median(errors):.0f}%"


class LocalTokenizer:
    """The model's ``tokenizer.json`` through the optional ``tokenizers`` package (``kitt[tokenizers]``).

    For the completions API only: a chat template is not applied, so chat lengths would be off.
    """

    method = LOCAL_METHOD

    def __init__(self, path: Path, max_model_len: int | None = None) -> None:
        from tokenizers import Tokenizer  # an optional extra: imported only where it is used

        self.tokenizer = Tokenizer.from_file(str(path))
        self.max_model_len = max_model_len

    @classmethod
    def for_model(cls, model: str) -> LocalTokenizer | None:
        """The tokenizer of a model given as a local folder, when ``tokenizers`` is installed; else None."""
        folder = Path(model)
        path = folder / "tokenizer.json"
        if not path.is_file():
            return None
        try:
            import tokenizers  # noqa: F401
        except ImportError:
            return None
        return cls(path, _context_length(folder))

    def count(self, prompts: Sequence[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self.tokenizer.encode_batch(list(prompts))]


def _context_length(folder: Path) -> int | None:
    """max_position_embeddings from the model's config.json, when it says."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings") if isinstance(config, dict) else None
    return value if isinstance(value, int) and value > 0 else None
