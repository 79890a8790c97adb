"""kitt.workload.arrivals: open-loop schedules (Poisson as kitt always drew it, gamma, constant, ramp-up)."""

from __future__ import annotations

import math
import random

import pytest

from kitt.workload.arrivals import Arrival, coefficient_of_variation, schedule


def test_poisson_draws_are_the_ones_kitt_always_drew() -> None:
    key = "42:poisson-r2:1:arrivals"
    rng, due, expected = random.Random(key), 0.0, []
    for _ in range(50):  # the loop kitt.bench.loadgen ran before schedules existed
        expected.append(due)
        due += rng.expovariate(2.0)
    assert schedule(Arrival(), 2.0, 50, key) == expected


@pytest.mark.parametrize("burstiness", [0.25, 0.5, 1.0, 4.0])
def test_gamma_cv_matches_one_over_root_burstiness(burstiness: float) -> None:
    offsets = schedule(Arrival("gamma", burstiness), 4.0, 400, f"seed:{burstiness}")
    expected = 1 / math.sqrt(burstiness)
    assert abs(coefficient_of_variation(offsets) - expected) <= 0.15 * expected
    assert abs(offsets[-1] / 399 - 0.25) < 0.25 * 0.25  # the mean gap is still 1/rate


def test_constant_and_duration() -> None:
    offsets = schedule(Arrival("constant"), 4.0, 100, "k", duration_s=2.0)
    assert offsets == [i / 4 for i in range(8)]


def test_ramp_up_rises_linearly_then_holds_the_rate() -> None:
    offsets = schedule(Arrival("constant", ramp_up_s=10.0), 10.0, 400, "k")
    in_ramp = sum(1 for t in offsets if t < 10.0)
    assert in_ramp in (50, 51)  # the integral of a ramp from 0 to 10 req/s over 10 s
    first_half = sum(1 for t in offsets if t < 5.0)
    assert first_half in (12, 13, 14)  # a quarter of the ramp's requests in its first half
    after = [b - a for a, b in zip(offsets, offsets[1:]) if a >= 10.0]
    assert all(abs(gap - 0.1) < 1e-9 for gap in after)
