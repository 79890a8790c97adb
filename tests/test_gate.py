"""kitt.gate on its own: judge() turns candidates into decisions, in order, and changes nothing."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from kitt import gate
from kitt.comparison import FAMILY_ALPHA, Design, Reason, Verdict
from kitt.gate import Candidate, Decision, Judgement, judge


def candidate(
    base: list[float],
    cur: list[float],
    design: Design = Design.SINGLE,
    *,
    lower: bool = True,
    threshold: float = 5.0,
    change: float | None = None,
) -> Candidate:
    """A candidate whose change is the ratio of the means (what compare computes for positive values)."""
    if change is None:
        change = (sum(cur) / len(cur) / (sum(base) / len(base)) - 1.0) * 100.0
    return Candidate(design, change, lower, threshold, base, cur, [base])


STEADY = [100.0, 100.4, 99.7, 100.2, 99.9]


def test_nothing_to_judge_is_an_empty_judgement() -> None:
    assert judge([]) == Judgement((), {})


@pytest.mark.parametrize(
    ("cur", "lower", "verdict"),
    [
        ([110.0], True, Verdict.REGRESSION),  # latency up 10% past a 5% threshold
        ([90.0], True, Verdict.IMPROVEMENT),
        ([103.0], True, Verdict.UNCHANGED),
        ([90.0], False, Verdict.REGRESSION),  # a throughput down 10%
    ],
)
def test_one_repeat_is_judged_by_the_threshold_alone(cur: list[float], lower: bool, verdict: Verdict) -> None:
    (decision,) = judge([candidate([100.0], cur, Design.THRESHOLD, lower=lower)]).decisions
    assert decision == Decision(verdict, Reason.SINGLE_REPEAT)  # no test: no p-value, no interval


def test_a_clear_shift_beyond_the_threshold_is_a_significant_regression() -> None:
    cur = [v * 1.2 for v in STEADY]
    (decision,) = judge([candidate(STEADY, cur)]).decisions
    assert decision.verdict is Verdict.REGRESSION and decision.reason is Reason.SIGNIFICANT
    assert decision.p_value is not None and decision.p_value <= FAMILY_ALPHA
    assert decision.ci_low_pct is not None and decision.ci_high_pct is not None
    assert decision.ci_low_pct < 20.0 < decision.ci_high_pct
    assert decision.repeats_to_settle is None


def test_a_clear_shift_in_the_better_direction_is_an_improvement() -> None:
    cur = [v * 0.8 for v in STEADY]
    (decision,) = judge([candidate(STEADY, cur)]).decisions
    assert decision.verdict is Verdict.IMPROVEMENT and decision.reason is Reason.SIGNIFICANT


def test_a_change_within_the_threshold_is_unchanged_whatever_its_p_value() -> None:
    cur = [v * 1.02 for v in STEADY]
    (decision,) = judge([candidate(STEADY, cur)]).decisions
    assert decision.verdict is Verdict.UNCHANGED and decision.reason is Reason.WITHIN_THRESHOLD
    assert decision.p_value is not None


def test_beyond_the_threshold_within_the_noise_is_inconclusive_with_the_repeats_that_would_settle_it() -> None:
    base, cur = [80.0, 120.0, 95.0], [90.0, 135.0, 105.0]  # +10%, repeats spread by about 20%
    (decision,) = judge([candidate(base, cur)]).decisions
    assert decision.verdict is Verdict.INCONCLUSIVE and decision.reason is Reason.WITHIN_NOISE
    assert decision.p_value is not None and decision.p_value > FAMILY_ALPHA
    assert decision.repeats_to_settle is None or decision.repeats_to_settle > len(base)


def test_decisions_come_back_in_the_candidates_order_across_designs() -> None:
    items = [
        candidate([100.0], [110.0], Design.THRESHOLD),
        candidate(STEADY, [v * 1.2 for v in STEADY]),
        candidate([100.0], [100.0], Design.THRESHOLD),
        candidate(STEADY, [v * 1.01 for v in STEADY]),
    ]
    verdicts = [d.verdict for d in judge(items).decisions]
    assert verdicts == [Verdict.REGRESSION, Verdict.REGRESSION, Verdict.UNCHANGED, Verdict.UNCHANGED]


def test_judge_changes_nothing_it_is_given() -> None:
    items = [candidate(STEADY, [v * 1.2 for v in STEADY]), candidate([100.0], [110.0], Design.THRESHOLD)]
    before = copy.deepcopy(items)
    judge(items)
    assert items == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        items[0].change_pct = 0.0  # type: ignore[misc]


def test_the_design_names_are_the_strings_the_report_and_the_rows_used() -> None:
    assert [d.value for d in (gate.HISTORY, gate.PAIRED, gate.SINGLE, gate.THRESHOLD)] == [
        "history t",
        "paired t",
        "moderated t",
        "threshold only",
    ]
    assert Design.SINGLE == "moderated t"
