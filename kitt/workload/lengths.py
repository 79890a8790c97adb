"""Token-length distributions for a test's prompts and outputs, drawn from a seeded generator.

A length is a whole number (fixed, as in every suite before distributions), a :class:`Normal`
truncated to ``[min, max]``, or a :class:`Uniform` over ``[lo, hi]``; a test may instead give a
weighted mixture of (input, output) pairs (:class:`MixEntry`, AIPerf's sequence distribution).
The same seed and salt give the same lengths on every machine (``random.Random`` seeded with a
string is defined the same on every platform and Python 3 version).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Normal:
    """A normal distribution truncated to [minimum, maximum] (redrawn until inside; never clipped)."""

    mean: float
    stdev: float
    minimum: int
    maximum: int


@dataclass(frozen=True)
class Uniform:
    """Every whole number in [lo, hi] equally likely."""

    lo: int
    hi: int


Length = Union[int, Normal, Uniform]


@dataclass(frozen=True)
class MixEntry:
    """One component of a weighted mixture: its share and its own input and output lengths."""

    weight: float
    input_len: Length
    output_len: Length


# Past this many redraws a truncated normal whose window lies far in a tail takes the nearest bound.
_MAX_REDRAWS = 1000


def draw(length: Length, rng: random.Random) -> int:
    """One length from ``length``."""
    if isinstance(length, int):
        return length
    if isinstance(length, Uniform):
        return rng.randint(length.lo, length.hi)
    if length.stdev == 0:
        return min(max(round(length.mean), length.minimum), length.maximum)
    for _ in range(_MAX_REDRAWS):
        value = round(rng.gauss(length.mean, length.stdev))
        if length.minimum <= value <= length.maximum:
            return value
    return length.minimum if length.mean < length.minimum else length.maximum


def draw_pairs(
    count: int, input_len: Length, output_len: Length, mix: tuple[MixEntry, ...], rng: random.Random
) -> list[tuple[int, int]]:
    """``count`` (input, output) lengths: from the mixture when there is one, else from the two lengths."""
    pairs = []
    weights = [entry.weight for entry in mix]
    for _ in range(count):
        if mix:
            entry = rng.choices(mix, weights=weights)[0]
            pairs.append((draw(entry.input_len, rng), draw(entry.output_len, rng)))
        else:
            pairs.append((draw(input_len, rng), draw(output_len, rng)))
    return pairs


def upper(length: Length) -> int:
    """The longest length ``length`` can give."""
    if isinstance(length, int):
        return length
    if isinstance(length, Uniform):
        return length.hi
    return length.maximum


def lower(length: Length) -> int:
    if isinstance(length, int):
        return length
    if isinstance(length, Uniform):
        return length.lo
    return length.minimum


def is_fixed(length: Length) -> bool:
    return isinstance(length, int)


def to_data(length: Length) -> int | dict[str, object]:
    """As written in a suite (and in config.json): a number, {mean, stdev, min, max} or {uniform: [lo, hi]}."""
    if isinstance(length, int):
        return length
    if isinstance(length, Uniform):
        return {"uniform": [length.lo, length.hi]}
    return {"mean": length.mean, "stdev": length.stdev, "min": length.minimum, "max": length.maximum}


def describe(length: Length) -> str:
    """A few words for the report: ``128``, ``16–1,024 (normal, mean 256)``, ``32–256 (uniform)``."""
    if isinstance(length, int):
        return f"{length:,}"
    if isinstance(length, Uniform):
        return f"{length.lo:,}–{length.hi:,} (uniform)"
    return f"{length.minimum:,}–{length.maximum:,} (normal, mean {length.mean:g})"
