"""Multi-turn sessions: a test's ``turns: {count: N, think_ms: T}``.

A session is a conversation of N turns (a number or a length distribution, drawn per session);
turn k's request carries every earlier user message and the answer the engine actually returned
for it, then its own new user message of the test's input length (chat: the messages;
completions: the concatenated text, see ``kitt.workload.spec``). Between an answer's end and the
next turn's send the session thinks for T ms (a number, or a distribution drawn per turn). The
load generator fills in each turn's history as answers arrive; this module only decides, seeded,
how many turns each session has, which prompts they send and how long each pause is, so both
arms of an A/B run send the same sessions turn by turn (only the answers' text may differ).
``num_requests`` counts sessions; a shared prefix opens a session's first turn.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Union

from kitt.workload import lengths
from kitt.workload.lengths import Length, Normal, Uniform
from kitt.workload.spec import RequestSpec, Session

Think = Union[float, Normal, Uniform]  # milliseconds


@dataclass(frozen=True)
class TurnsSpec:
    count: Length  # turns per session
    think_ms: Think = 0.0  # pause before each later turn

    def to_data(self) -> dict[str, Any]:
        """As written in a suite (and in config.json)."""
        think = self.think_ms if isinstance(self.think_ms, (int, float)) else lengths.to_data(self.think_ms)
        return {"count": lengths.to_data(self.count), "think_ms": think}


def turn_counts(spec: TurnsSpec, sessions: int, seed: int, salt: str) -> list[int]:
    """How many turns each of ``sessions`` sessions has, seeded by the level's ``salt``."""
    rng = random.Random(f"{seed}:{salt}:turns")
    return [lengths.draw(spec.count, rng) for _ in range(sessions)]


def group(
    built: list[RequestSpec], fitted: list[RequestSpec], counts: list[int], spec: TurnsSpec, seed: int, salt: str
) -> list[Session]:
    """The turns as sessions of ``counts`` turns (``built``: every turn's own message, session
    after session; ``fitted``: the same after ``kitt.workload.tokens.fit``), each later turn with
    its think time drawn seeded. Fitting a dataset's prompts leaves out those past the context
    (the others in order, their text unchanged): a turn left out ends its session there, and a
    session whose first turn was left out is not sent."""
    if len(fitted) == len(built):
        kept: list[RequestSpec | None] = list(fitted)
    else:
        kept, at = [], 0
        for turn_spec in built:
            if at < len(fitted) and fitted[at].prompt == turn_spec.prompt and fitted[at].prefix == turn_spec.prefix:
                kept.append(fitted[at])
                at += 1
            else:
                kept.append(None)
    rng = random.Random(f"{seed}:{salt}:think")
    sessions, at = [], 0
    for index, count in enumerate(counts):
        mine: list[RequestSpec] = []
        for turn in kept[at : at + count]:
            if turn is None:
                break
            mine.append(turn)
        at += count
        turns = tuple(mine)
        if not turns:
            continue
        think = tuple(_think(spec.think_ms, rng) / 1e3 for _ in range(len(turns) - 1))
        sessions.append(Session(index=index, turns=turns, think_s=think))
    return sessions


def _think(think: Think, rng: random.Random) -> float:
    if isinstance(think, (int, float)):
        return float(think)
    return float(lengths.draw(think, rng))
