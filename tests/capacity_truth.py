"""The truth of a capacity search over request rate: an N-server FIFO queue, simulated exactly.

The sim with ``--max-num-seqs N``, no noise (``--ttft-cv 0 --itl-cv 0``) and no per-token or
per-sequence costs serves each request in a fixed time, ``S = TTFT + (output_len - 1) x ITL``
(the first event a TTFT after the request takes a slot, then one gap per later token; the slot
frees at its last token), and a request waiting for a slot has that wait added to its TTFT. kitt
sends every probe of one repeat the same unit-rate arrival pattern scaled by 1/rate
(:func:`kitt.capacity.probe_schedule`), so the TTFTs a probe at rate r would measure are known
exactly: :func:`waits` on that pattern divided by r. The truth of a repeat is the highest rate
whose p99 TTFT (numpy's linear interpolation, as kitt computes it) meets the SLO
(:func:`truth_rate`). :func:`mdl_wait_cdf` and :func:`erlang_c_tail` are the closed forms the
queue is checked against (tests/test_capacity_truth.py).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np


def waits(arrivals: Sequence[float], servers: int, service: float | Sequence[float]) -> list[float]:
    """Each request's wait for a slot: FIFO over ``servers`` slots, arrivals in order."""
    free = [0.0] * servers  # when each slot frees, as a heap
    out: list[float] = []
    for i, arrival in enumerate(arrivals):
        start = max(arrival, free[0])
        out.append(start - arrival)
        heapq.heapreplace(free, start + (service if isinstance(service, (int, float)) else service[i]))
    return out


def p99_ttft(unit_offsets: Sequence[float], rate: float, servers: int, service: float, ttft: float) -> float:
    """The p99 TTFT (seconds) of the unit-rate pattern sent at ``rate``: its wait plus the base TTFT."""
    scaled = [t / rate for t in unit_offsets]
    return float(np.percentile(np.asarray(waits(scaled, servers, service)) + ttft, 99))


def truth_rate(
    unit_offsets: Sequence[float],
    servers: int,
    service: float,
    ttft: float,
    slo: float,
    low: float,
    high: float,
    rel: float = 1e-6,
) -> float:
    """The highest rate in [low, high] whose p99 TTFT meets ``slo`` (bisection: waits only grow with
    the rate when the pattern is compressed, tests/test_capacity_truth.py checks that on a grid)."""
    if p99_ttft(unit_offsets, low, servers, service, ttft) > slo:
        return low
    if p99_ttft(unit_offsets, high, servers, service, ttft) <= slo:
        return high
    while high - low > rel * low:
        middle = (low + high) / 2
        if p99_ttft(unit_offsets, middle, servers, service, ttft) <= slo:
            low = middle
        else:
            high = middle
    return low


def mdl_wait_cdf(t: float, rate: float, service: float) -> float:
    """P(W <= t) in the M/D/1 queue (Erlang's formula): (1 - rho) sum_k (lam (kD - t))^k / k! e^(-lam (kD - t))
    over k = 0 .. floor(t / D). Alternating terms: exact enough for t up to a few service times."""
    rho = rate * service
    total = 0.0
    for k in range(int(math.floor(t / service)) + 1):
        x = rate * (k * service - t)
        total += x**k / math.factorial(k) * math.exp(-x)
    return (1.0 - rho) * total


def erlang_c_tail(t: float, servers: int, rate: float, mu: float) -> float:
    """P(W > t) in the M/M/c queue: Erlang's C times exp(-(c mu - lam) t)."""
    a = rate / mu
    rho = a / servers
    head = sum(a**k / math.factorial(k) for k in range(servers))
    top = a**servers / math.factorial(servers) / (1 - rho)
    return top / (head + top) * math.exp(-(servers * mu - rate) * t)
