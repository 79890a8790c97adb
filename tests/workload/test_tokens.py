"""kitt.workload.tokens: prompts fitted to exact lengths by a tokenizer that is not one token a word."""

from __future__ import annotations

from typing import Sequence

from kitt.workload.spec import RequestSpec
from kitt.workload.synthetic import build_requests
from kitt.workload.tokens import Fitted, approximation, fit
from kitt.workload.lengths import Uniform


class DigitsAndPairs:
    """Each digit is a token, words with 'th' are two, every other word one, plus a BOS token."""

    method = "exact, test"

    def __init__(self, max_model_len: int | None = None) -> None:
        self.max_model_len = max_model_len
        self.calls: list[int] = []

    def count(self, prompts: Sequence[str]) -> list[int]:
        self.calls.append(len(prompts))
        return [1 + sum(len(w) if w.isdigit() else 2 if "th" in w else 1 for w in p.split()) for p in prompts]


def test_synthetic_prompts_hit_every_length_in_few_batched_rounds() -> None:
    counter = DigitsAndPairs()
    requests = build_requests(200, Uniform(2, 300), 8, seed=5, salt="t-c1:1")
    fitted = fit(requests, counter, 5, "t-c1:1", synthetic=True)
    assert fitted.inexact == 0
    assert counter.count([r.prompt for r in fitted.requests]) == [r.input_len for r in requests]
    openings = [f.prompt.split()[0] for f, r in zip(fitted.requests, requests) if r.input_len > 7]
    assert len(set(openings)) >= 0.97 * len(openings)  # distinct openings: no prefix cache across requests
    assert len(counter.calls) <= 13 and counter.calls[0] == 200  # one batch a round, never one call a prompt
    again = fit(
        build_requests(200, Uniform(2, 300), 8, seed=5, salt="t-c1:1"), DigitsAndPairs(), 5, "t-c1:1", synthetic=True
    )
    assert again.requests == fitted.requests  # both arms of an A/B run get the same prompts


def test_a_length_no_prompt_can_hit_is_counted_not_hidden() -> None:
    requests = [RequestSpec(0, "123456 a", 4, input_len=1)]  # BOS alone is 1 token: no prompt has 1
    fitted = fit(requests, DigitsAndPairs(), 1, "s", synthetic=True)
    assert fitted.inexact == 1


def test_dataset_prompts_are_measured_and_those_past_the_context_skipped() -> None:
    requests = [RequestSpec(i, "word " * n, 10) for i, n in enumerate((5, 50, 95, 200))]
    fitted = fit(requests, DigitsAndPairs(max_model_len=100), 1, "s", synthetic=False)
    assert fitted == Fitted([RequestSpec(0, "word " * 5, 10, 6), RequestSpec(1, "word " * 50, 10, 51)], skipped=2)


def test_approximation_says_by_how_much() -> None:
    assert approximation([100, 100, 100], [110, 95, 140]) == "approximate, ±10%"
    assert approximation([], []) == "approximate"
