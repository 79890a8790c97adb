"""Arrival schedules for open-loop levels: when each request is due, as offsets from the level's start.

- ``poisson``: exponential gaps with mean 1/rate (the default, drawn exactly as kitt always drew them);
- ``gamma``: gamma gaps with shape ``burstiness`` and mean 1/rate, so the gaps' coefficient of
  variation is 1/sqrt(burstiness): 1 is Poisson, below 1 burstier (vLLM's and AIPerf's definition);
- ``constant``: one request every 1/rate seconds.

``ramp_up_s`` makes the rate rise linearly from zero to ``rate`` over that many seconds: the
steady schedule's time axis is warped so that the expected count by time t is the integral of
the ramped rate. The load generator (``kitt.bench.loadgen``) receives the offsets and keeps them;
it draws nothing itself.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

ARRIVALS = ("poisson", "gamma", "constant")


@dataclass(frozen=True)
class Arrival:
    """How an open-loop level's requests arrive."""

    kind: str = "poisson"  # one of ARRIVALS
    burstiness: float = 1.0  # the gamma's shape; only for kind "gamma"
    ramp_up_s: float = 0.0

    def describe(self, rate: float | None = None) -> str:
        """``gamma 4 req/s (burstiness 0.5)``, ``poisson 2 req/s, ramp-up 10 s``."""
        text = self.kind + (f" {rate:g} req/s" if rate is not None else "")
        if self.kind == "gamma":
            text += f" (burstiness {self.burstiness:g})"
        if self.ramp_up_s:
            text += f", ramp-up {self.ramp_up_s:g} s"
        return text


def schedule(arrival: Arrival, rate: float, count: int, key: str, duration_s: float | None = None) -> list[float]:
    """The due offsets (seconds from the level's start) of up to ``count`` arrivals at ``rate`` requests/s.

    ``key`` seeds the draws (the same key gives the same schedule everywhere). With ``duration_s``
    the schedule ends at the last arrival before it.
    """
    rng = random.Random(key)
    offsets: list[float] = []
    steady = 0.0  # position on the steady (un-ramped) time axis
    for _ in range(count):
        due = _ramped(steady, arrival.ramp_up_s)
        if duration_s is not None and due >= duration_s:
            break
        offsets.append(due)
        if arrival.kind == "poisson":
            steady += rng.expovariate(rate)
        elif arrival.kind == "gamma":
            steady += rng.gammavariate(arrival.burstiness, 1.0 / (rate * arrival.burstiness))
        else:
            steady += 1.0 / rate
    return offsets


def _ramped(steady: float, ramp: float) -> float:
    """The real time by which a rate ramping linearly over ``ramp`` seconds has sent what the
    steady rate sends by ``steady``: rate*t^2/(2*ramp) during the ramp, then rate*(t - ramp/2)."""
    if ramp <= 0:
        return steady
    if steady < ramp / 2:
        return math.sqrt(2 * ramp * steady)
    return steady + ramp / 2


def coefficient_of_variation(offsets: list[float]) -> float:
    """The inter-arrival gaps' standard deviation over their mean (1 for Poisson)."""
    gaps = [b - a for a, b in zip(offsets, offsets[1:])]
    mean = sum(gaps) / len(gaps)
    variance = sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1)
    return math.sqrt(variance) / mean
