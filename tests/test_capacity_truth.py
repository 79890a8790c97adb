"""The queue behind the request-rate capacity truth (tests/capacity_truth.py), against closed forms:
the M/D/1 waiting-time distribution (Erlang's formula) and the M/M/c one (Erlang's C)."""

from __future__ import annotations

import random

import numpy as np
import pytest

import capacity_truth as truth
from kitt.workload import arrivals

ARRIVALS = 200_000


def poisson(rate: float, count: int, seed: int) -> list[float]:
    rng, now, out = random.Random(seed), 0.0, []
    for _ in range(count):
        now += rng.expovariate(rate)
        out.append(now)
    return out


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_one_slot_with_a_fixed_service_time_is_the_m_d_1_queue(rho: float) -> None:
    waits = np.asarray(truth.waits(poisson(rho, ARRIVALS, 1), 1, 1.0)[1000:])  # past the empty start
    for t in (0.0, 0.5, 1.0, 2.0, 4.0):
        assert abs(np.mean(waits <= t) - truth.mdl_wait_cdf(t, rho, 1.0)) < 0.01, t
    # The p99 wait: where the closed form's CDF reaches 0.99, within the sampling spread of a p99.
    grid = np.arange(0.0, 30.0, 0.001)
    closed = grid[np.searchsorted([truth.mdl_wait_cdf(t, rho, 1.0) for t in grid], 0.99)]
    assert abs(np.percentile(waits, 99) / closed - 1) < 0.08, (np.percentile(waits, 99), closed)


def test_c_slots_with_exponential_service_is_the_m_m_c_queue() -> None:
    rng = random.Random(2)
    servers, rate = 3, 2.4  # rho 0.8, mu 1
    services = [rng.expovariate(1.0) for _ in range(ARRIVALS)]
    waits = np.asarray(truth.waits(poisson(rate, ARRIVALS, 3), servers, services)[1000:])
    for t in (0.0, 0.5, 1.0, 2.0, 4.0):
        assert abs(np.mean(waits > t) - truth.erlang_c_tail(t, servers, rate, 1.0)) < 0.015, t
    # p99 in closed form: C e^(-(c mu - lam) t) = 0.01.
    closed = np.log(truth.erlang_c_tail(0.0, servers, rate, 1.0) / 0.01) / (servers - rate)
    assert abs(np.percentile(waits, 99) / closed - 1) < 0.08, (np.percentile(waits, 99), closed)


def test_the_p99_only_grows_with_the_rate_and_the_truth_is_where_it_meets_the_goal() -> None:
    """Bisection finds the truth because compressing one pattern never shortens a wait."""
    unit = arrivals.schedule(arrivals.Arrival(), 1.0, 60, "3:chat-capacity:1:arrivals")
    rates = np.arange(5.0, 120.0, 0.25)
    p99 = [truth.p99_ttft(unit, r, 8, 0.1, 0.04) for r in rates]
    assert all(b >= a - 1e-12 for a, b in zip(p99, p99[1:]))
    found = truth.truth_rate(unit, 8, 0.1, 0.04, 0.08, 1.0, 1000.0)
    assert truth.p99_ttft(unit, found, 8, 0.1, 0.04) <= 0.08 < truth.p99_ttft(unit, found * 1.0001, 8, 0.1, 0.04)
    assert max(r for r, p in zip(rates, p99) if p <= 0.08) <= found
    # A goal met at the top of the range is the top; one missed already at the bottom is the bottom.
    assert truth.truth_rate(unit, 8, 0.1, 0.04, 0.08, 1.0, 2.0) == 2.0
    assert truth.truth_rate(unit, 8, 0.1, 0.04, 0.03, 1.0, 2.0) == 1.0
