"""Shared prefixes: a test's ``prefix: {groups: G, len: P, skew: S}``.

G distinct prefixes (system prompts), each of exactly P tokens where a tokenizer can be asked
(``kitt.workload.tokens`` fits them as it fits prompts; else about P words, approximate). Every
request starts with one of them, drawn seeded: uniformly, or with ``skew`` > 0 Zipf-like (group k
of 1..G drawn with weight 1/k^skew, so group 1 is the most popular). Its own prompt of the test's
input length follows, so a request's prompt is P + its input length, counted as one prompt (for
chat: one user message that opens with the prefix, the template counted once). The prefix
texts depend on the seed and the test's name only, so the warm-up, every repeat and both arms of
an A/B run share them; which request gets which prefix depends on the level's salt as the
prompts do. A synthetic prompt's own part still opens with its unique number, after the prefix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from kitt.workload.spec import RequestSpec
from kitt.workload.synthetic import prompt_words


@dataclass(frozen=True)
class PrefixSpec:
    groups: int  # distinct prefixes
    length: int  # tokens in each (the suite's ``len``)
    skew: float = 0.0  # 0: uniform; above 0: Zipf-like popularity

    def to_data(self) -> dict[str, Any]:
        """As written in a suite (and in config.json)."""
        return {"groups": self.groups, "len": self.length, "skew": self.skew}

    def weights(self) -> list[float]:
        return [1.0 / (k**self.skew) for k in range(1, self.groups + 1)]


def build_prefixes(spec: PrefixSpec, seed: int, test_name: str) -> list[RequestSpec]:
    """The G prefixes as specs to fit (``input_len`` P); each opens with its own number, so they differ."""
    rng = random.Random(f"{seed}:{test_name}:prefixes")
    return [
        RequestSpec(index=g, prompt=prompt_words(rng, spec.length), max_tokens=1, input_len=spec.length)
        for g in range(spec.groups)
    ]


def choose_groups(spec: PrefixSpec, count: int, seed: int, salt: str) -> list[int]:
    """Which prefix each of ``count`` requests starts with (0-based), seeded by ``salt``."""
    rng = random.Random(f"{seed}:{salt}:prefix")
    if spec.skew == 0:
        return [rng.randrange(spec.groups) for _ in range(count)]
    population = range(spec.groups)
    weights = spec.weights()
    return rng.choices(population, weights=weights, k=count)


def attach(requests: list[RequestSpec], texts: list[str], groups: list[int], length: int) -> list[RequestSpec]:
    """Each request with its prefix in front; a length asked for grows by the prefix's ``length``
    (a dataset prompt's, unknown until measured, stays 0)."""
    return [
        replace(spec, prefix=texts[g], input_len=spec.input_len + length if spec.input_len else 0)
        for spec, g in zip(requests, groups)
    ]
