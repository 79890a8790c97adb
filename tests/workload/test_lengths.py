"""kitt.workload.lengths and synthetic prompts: seeded length distributions and mixtures."""

from __future__ import annotations

import random
import statistics

from kitt.workload.lengths import MixEntry, Normal, Uniform, draw, draw_pairs, to_data
from kitt.workload.synthetic import build_requests


def test_fixed_lengths_give_the_prompts_kitt_always_built() -> None:
    # The prompts of seed 42, salt "x" before distributions existed (kitt/bench/workload.py).
    specs = build_requests(3, 5, 2, 42, "x")
    assert [s.prompt for s in specs] == [
        "803728 might us is or",
        "961034 out are an their",
        "321921 see between very one",
    ]
    assert all(s.max_tokens == 2 and s.input_len == 5 for s in specs)


def test_truncated_normal_respects_its_bounds_and_mean() -> None:
    length = Normal(mean=200, stdev=80, minimum=100, maximum=300)
    values = [draw(length, random.Random(f"n{i}")) for i in range(2000)]
    assert min(values) >= 100 and max(values) <= 300
    assert min(values) < 110 and max(values) > 290  # truncated, not clipped to a point
    assert abs(statistics.mean(values) - 200) < 5  # symmetric window: the mean stays


def test_uniform_and_mixture() -> None:
    rng = random.Random(1)
    values = [draw(Uniform(10, 20), rng) for _ in range(500)]
    assert set(values) == set(range(10, 21))
    mix = (MixEntry(0.8, 50, 10), MixEntry(0.2, 1000, 200), MixEntry(0.0, 7, 7))
    pairs = draw_pairs(2000, 1, 1, mix, random.Random(2))
    long_share = sum(1 for p in pairs if p == (1000, 200)) / len(pairs)
    assert 0.17 < long_share < 0.23
    assert (7, 7) not in pairs and set(pairs) == {(50, 10), (1000, 200)}


def test_same_seed_same_requests_other_seed_other_lengths() -> None:
    length = Normal(300, 100, 50, 600)
    a = build_requests(20, length, Uniform(10, 90), 7, "t-c1:1")
    b = build_requests(20, length, Uniform(10, 90), 7, "t-c1:1")
    c = build_requests(20, length, Uniform(10, 90), 8, "t-c1:1")
    assert a == b
    assert [s.input_len for s in a] != [s.input_len for s in c]
    assert all(len(s.prompt.split()) == s.input_len and 10 <= s.max_tokens <= 90 for s in a)


def test_lengths_as_written() -> None:
    assert to_data(5) == 5
    assert to_data(Uniform(1, 9)) == {"uniform": [1, 9]}
    assert to_data(Normal(5.0, 1.0, 1, 9)) == {"mean": 5.0, "stdev": 1.0, "min": 1, "max": 9}
