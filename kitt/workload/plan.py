"""A level's requests, ready to send: synthetic prompts of drawn lengths, or prompts from a dataset,
each after a shared prefix when the test has one.

``kitt.arm`` calls :func:`build_level` before a level's clock starts; the same seed and salt
give the same requests on every machine and for both arms of an A/B run.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Callable

from kitt.workload import datasets, prefixes, sessions, synthetic
from kitt.workload.datasets import DatasetSpec
from kitt.workload.lengths import Length, MixEntry
from kitt.workload.prefixes import PrefixSpec
from kitt.workload.sessions import TurnsSpec
from kitt.workload.spec import RequestSpec


def build_level(
    count: int,
    *,
    input_len: Length,
    output_len: Length,
    mix: tuple[MixEntry, ...] = (),
    dataset: DatasetSpec | None = None,
    seed: int,
    salt: str,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
    prefix: PrefixSpec | None = None,
    prefix_texts: list[str] | None = None,
    turn_counts: list[int] | None = None,
) -> list[RequestSpec]:
    """``count`` requests; ``count_tokens`` measures a dataset's answers (their output lengths).
    With ``prefix``, each starts with one of ``prefix_texts`` (built once per test, see
    ``kitt.workload.prefixes.build_prefixes``), drawn from the level's own seeded generator.
    With ``turn_counts`` (sessions, ``kitt.workload.sessions``), the requests are the sessions'
    turns one session after another (``count`` is their sum) and a prefix opens only each
    session's first turn."""
    if dataset is not None:
        requests = datasets.build_requests(count, dataset, output_len, seed, salt, count_tokens)
    else:
        requests = synthetic.build_requests(count, input_len, output_len, seed, salt, mix)
    if prefix is None or not prefix_texts:
        return requests
    if turn_counts is None:
        groups = prefixes.choose_groups(prefix, len(requests), seed, salt)
        return prefixes.attach(requests, prefix_texts, groups, prefix.length)
    firsts = list(accumulate([0, *turn_counts[:-1]])) if turn_counts else []
    groups = prefixes.choose_groups(prefix, len(firsts), seed, salt)
    opened = prefixes.attach([requests[i] for i in firsts], prefix_texts, groups, prefix.length)
    for i, spec in zip(firsts, opened):
        requests[i] = spec
    return requests


def build_sessions(
    count: int,
    turns: TurnsSpec,
    *,
    input_len: Length,
    output_len: Length,
    mix: tuple[MixEntry, ...] = (),
    dataset: DatasetSpec | None = None,
    seed: int,
    salt: str,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
    prefix: PrefixSpec | None = None,
    prefix_texts: list[str] | None = None,
) -> tuple[list[RequestSpec], list[int]]:
    """``count`` sessions' turns, session after session, and each session's number of turns:
    drawn from ``turns.count`` (kitt.workload.sessions), and from a dataset at most as many as its
    conversation has user turns; a shared prefix opens each session's first turn."""
    drawn = sessions.turn_counts(turns, count, seed, salt)
    if dataset is None:
        return build_level(
            sum(drawn),
            input_len=input_len,
            output_len=output_len,
            mix=mix,
            seed=seed,
            salt=salt,
            prefix=prefix,
            prefix_texts=prefix_texts,
            turn_counts=drawn,
        ), drawn
    requests, counts = datasets.build_conversations(drawn, dataset, output_len, seed, salt, count_tokens)
    if prefix is not None and prefix_texts:
        firsts = list(accumulate([0, *counts[:-1]])) if counts else []
        groups = prefixes.choose_groups(prefix, len(firsts), seed, salt)
        for i, spec in zip(firsts, prefixes.attach([requests[i] for i in firsts], prefix_texts, groups, prefix.length)):
            requests[i] = spec
    return requests, counts
