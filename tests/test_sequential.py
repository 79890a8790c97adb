"""kitt.sequential: the decisions of --repeats auto, its error rates under optional stopping, and its
configuration (suite keys, flags, the action input), all refused up front when wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest
from seq_sim import LOWER, auto, fixed, one_metric_worse, pair_diffs

from kitt import sequential
from kitt.config import (
    Overrides,
    RunConfig,
    apply_overrides,
    check_run_config,
    load_suite,
    suite_to_dict,
)
from kitt.errors import UsageError
from kitt.sequential import Decision, Design, decide, look

GATED = {"median_ttft_ms": 5.0, "p99_ttft_ms": 5.0, "output_throughput": 5.0}
LOWER_BY_NAME = {"median_ttft_ms": True, "p99_ttft_ms": True, "output_throughput": False}


def pairs_with(change: float, noise: float, n: int, seed: int = 0) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return [(100.0, 100.0 * (1 + change) * math.exp(rng.normal(0, noise))) for _ in range(n)]


def test_nothing_is_decided_before_min_pairs_and_a_clear_answer_is_after():
    design = Design(3, 10, family_size=3)
    early = look({m: pairs_with(0.0, 0.005, 2, i) for i, m in enumerate(GATED)}, LOWER_BY_NAME, GATED, design, 2)
    assert not early.stop and set(early.decisions.values()) == {Decision.UNDECIDED}
    same = look({m: pairs_with(0.0, 0.005, 4, i) for i, m in enumerate(GATED)}, LOWER_BY_NAME, GATED, design, 4)
    assert same.stop and same.why == "decided" and set(same.decisions.values()) == {Decision.WITHIN}
    assert same.reason() == "all 3 gated metrics decided after 4 pairs"
    slower = {
        "median_ttft_ms": pairs_with(0.3, 0.005, 4),
        "p99_ttft_ms": pairs_with(0.0, 0.005, 4, 1),
        "output_throughput": pairs_with(0.3, 0.005, 4, 2),
    }
    verdict = look(slower, LOWER_BY_NAME, GATED, design, 4)
    # Higher TTFT is worse; higher throughput is better.
    assert verdict.decisions == {
        "median_ttft_ms": Decision.WORSE,
        "p99_ttft_ms": Decision.WITHIN,
        "output_throughput": Decision.BETTER,
    }


def test_a_change_at_the_threshold_is_never_decided_and_the_level_says_why_it_stopped():
    design = Design(3, 6, family_size=3)
    near = {m: pairs_with(0.05, 0.02, 5, i) for i, m in enumerate(GATED)}
    middle = look(near, LOWER_BY_NAME, GATED, design, 5)
    assert middle.undecided and (not middle.stop or middle.why == "out_of_reach")
    last = look({m: pairs_with(0.05, 0.02, 6, i) for i, m in enumerate(GATED)}, LOWER_BY_NAME, GATED, design, 6)
    assert last.stop and last.why == "max_pairs" and last.reason().startswith("max_repeats reached")


def test_a_metric_too_noisy_to_settle_stops_the_level_as_out_of_reach():
    design = Design(3, 10, family_size=3)
    values = {
        "median_ttft_ms": pairs_with(0.0, 0.005, 4),
        "output_throughput": pairs_with(0.0, 0.005, 4, 1),
        "p99_ttft_ms": [(100.0, v) for v in (180.0, 60.0, 150.0, 70.0)],
    }
    result = look(values, LOWER_BY_NAME, GATED, design, 4)
    assert result.stop and result.why == "out_of_reach" and result.out_of_reach == ["p99_ttft_ms"]
    assert "p99_ttft_ms too noisy to settle" in result.reason()


def test_failed_pairs_count_towards_max_but_not_towards_the_evidence():
    design = Design(3, 10, family_size=3)
    values = {m: pairs_with(0.0, 0.005, 2, i) for i, m in enumerate(GATED)}  # a third pair failed
    result = look(values, LOWER_BY_NAME, GATED, design, 3)
    assert not result.stop and set(result.decisions.values()) == {Decision.UNDECIDED}


def test_decide_broadcasts_and_ungated_metrics_never_hold_a_level_up():
    diffs = np.zeros((2, 3, 4)) + np.array([0.0, 0.001, -0.001, 0.0005])
    codes = decide(diffs, np.array([True, True, False]), np.array([5.0, np.nan, 5.0]), Design(3, 10, family_size=3))
    assert codes.shape == (2, 3) and (codes == Decision.WITHIN).all()


def test_pair_orders_are_balanced_after_every_pair():
    for seed in range(20):
        orders = sequential.pair_orders(10, f"s{seed}")
        for n in range(1, 11):
            assert abs(sum(orders[:n]) - (n - sum(orders[:n]))) <= 1


def test_design_refuses_impossible_settings():
    with pytest.raises(ValueError):
        Design(1, 10)
    with pytest.raises(ValueError):
        Design(5, 4)


# ------------------------------------------------------------------ error rates, seeded simulation


def test_auto_keeps_the_fixed_design_error_rates_with_half_the_pairs():
    """docs/gpu-minutes.md's goal on its main case (1.5% repeat CV, 3% job CV, ±5% drift): A/A at most
    1%, a 10% regression of one metric caught at least 95%, at most 5 pairs on average (10 fixed)."""
    design = Design(3, 10)
    common = {"repeat_cv": 0.015, "drift_pct": 5.0}
    aa = auto(pair_diffs(2000, 10, seed=11, **common), design)
    worse = auto(pair_diffs(2000, 10, shift=one_metric_worse(10), seed=12, **common), design)
    assert aa.regression.any(-1).mean() <= 0.01
    assert worse.regression[:, 0].mean() >= 0.95
    assert aa.pairs.mean() <= 5.0 and worse.pairs.mean() <= 5.0
    assert (
        fixed(pair_diffs(2000, 10, shift=one_metric_worse(10), seed=12, **common), 10).regression[:, 0].mean() >= 0.95
    )


def test_spending_is_what_holds_the_within_error_under_optional_stopping():
    """A change exactly at the threshold: with the budget spent over the looks it is called "within"
    at most beta of the time; looking at the full level every time calls it within more often."""
    rng_diffs = pair_diffs(3000, 10, repeat_cv=0.02, drift_pct=0.0, job_cv=0.0, shift=one_metric_worse(5.0), seed=5)
    first = rng_diffs[:, :1, :]  # the metric at the threshold, alone

    def within_rate(design: Design) -> float:
        called = np.zeros(first.shape[0], dtype=bool)
        stopped = np.zeros(first.shape[0], dtype=bool)
        for n in range(design.min_pairs, design.max_pairs + 1):
            codes = decide(first[..., :n], LOWER[:1], 5.0, design)[:, 0]
            called |= ~stopped & (codes == Decision.WITHIN)
            stopped |= codes != Decision.UNDECIDED
        return float(called.mean())

    spent = within_rate(Design(3, 10, family_size=1))
    naive = within_rate(Design(3, 10, family_size=1, spending="none"))
    assert spent <= sequential.MISS_BETA
    assert naive > spent


# ------------------------------------------------------------------ configuration


def suite_file(tmp_path, extra: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(f"{extra}\ntests: [{{name: a, concurrency: 1}}]\n")
    return str(path)


def test_a_suite_says_repeats_auto_with_its_bounds(tmp_path):
    suite = load_suite(suite_file(tmp_path, "repeats: auto\nmin_repeats: 4\nmax_repeats: 8"))
    assert suite.auto_repeats == (4, 8) and suite.repeats == 8
    data = suite_to_dict(suite)
    assert (data["repeats"], data["min_repeats"], data["max_repeats"]) == ("auto", 4, 8)
    default = load_suite(suite_file(tmp_path, "repeats: auto"))
    assert default.auto_repeats == (3, 10)
    cli = apply_overrides(load_suite("quick"), Overrides(repeats="auto", max_repeats=6))
    assert cli.auto_repeats == (3, 6) and cli.repeats == 6
    back = apply_overrides(default, Overrides(repeats=4))
    assert back.auto_repeats is None and back.repeats == 4


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("repeats: sometimes", "suite.repeats: must be a whole number >= 1 or 'auto'"),
        ("repeats: 5\nmax_repeats: 8", "suite.max_repeats: needs `repeats: auto`"),
        ("repeats: auto\nmin_repeats: 1", "suite.min_repeats: must be a whole number >= 2"),
        ("repeats: auto\nmin_repeats: 6\nmax_repeats: 4", "suite.max_repeats: must be at least min_repeats (6)"),
    ],
)
def test_bad_auto_settings_name_the_field(tmp_path, extra, fragment):
    with pytest.raises(UsageError, match="suite.yaml") as caught:
        load_suite(suite_file(tmp_path, extra))
    assert fragment in caught.value.message


def test_bad_overrides_and_a_single_arm_auto_run_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="need --repeats auto"):
        apply_overrides(load_suite("quick"), Overrides(max_repeats=6))
    with pytest.raises(UsageError, match="at least --min-repeats"):
        apply_overrides(load_suite("quick"), Overrides(repeats="auto", min_repeats=5, max_repeats=4))
    suite = apply_overrides(load_suite("quick"), Overrides(repeats="auto"))
    with pytest.raises(UsageError, match="--repeats auto needs something to decide against"):
        check_run_config(RunConfig(model="m", engine="sim", suite=suite, output=tmp_path / "o"))


def test_the_action_input_takes_auto_and_refuses_other_words():
    from kitt.action_inputs import ActionInputs

    env = {"INPUT_MODEL": "m", "INPUT_REPEATS": "auto"}
    assert ActionInputs.from_environment(env).repeats == "auto"
    assert ActionInputs.from_environment({**env, "INPUT_REPEATS": "4"}).repeats == 4
    with pytest.raises(UsageError, match="input 'repeats'"):
        ActionInputs.from_environment({**env, "INPUT_REPEATS": "often"})


def test_the_cli_refuses_auto_without_a_baseline_arm_in_one_line_before_anything_starts(tmp_path):
    from support import assert_one_line_error, run_kitt

    out = tmp_path / "r"
    done = run_kitt("run", "-m", "m", "-e", "sim", "-o", str(out), "--repeats", "auto")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--repeats auto needs something to decide against")
    done = run_kitt("run", "-m", "m", "-e", "sim", "-o", str(out), "--repeats", "often")
    assert done.returncode == 2 and "often" in done.stderr
    done = run_kitt(
        "run",
        "-m",
        "m",
        "-e",
        "sim",
        "-o",
        str(out),
        "--repeats",
        "auto",
        "--ab-schedule",
        "blocks",
        "--baseline-engine-arg=--slowdown=1",
    )
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--repeats auto needs --ab-schedule interleaved")
    assert not out.exists()
