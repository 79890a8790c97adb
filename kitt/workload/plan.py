"""A level's requests, ready to send: synthetic prompts of drawn lengths, or prompts from a dataset.

``kitt.arm`` calls :func:`build_level` before a level's clock starts; the same seed and salt
give the same requests on every machine and for both arms of an A/B run.
"""

from __future__ import annotations

from typing import Callable

from kitt.workload import datasets, synthetic
from kitt.workload.datasets import DatasetSpec
from kitt.workload.lengths import Length, MixEntry
from kitt.workload.spec import RequestSpec


def build_level(count: int, *, input_len: Length, output_len: Length, mix: tuple[MixEntry, ...] = (),
                dataset: DatasetSpec | None = None, seed: int, salt: str,
                count_tokens: Callable[[list[str]], list[int]] | None = None) -> list[RequestSpec]:
    """``count`` requests; ``count_tokens`` measures a dataset's answers (their output lengths)."""
    if dataset is not None:
        return datasets.build_requests(count, dataset, output_len, seed, salt, count_tokens)
    return synthetic.build_requests(count, input_len, output_len, seed, salt, mix)
