"""Change points over a history of jobs: accuracy under CI noise (seeded), determinism, what is
new, the JSON, and loading a history folder. The figures in docs/trend.md come from
benchmarks/trend_accuracy.py with more histories; these assert the issue's bounds on fewer."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import trend_sim
from kitt.errors import ResultsError
from kitt.provenance import source_revision
from kitt.thresholds import DEFAULT_GATED, Thresholds
from kitt.trend import SLOWER, analyse, best_split, change_points, load_history, trend_with_newest, write_change_points

HISTORIES = 120


def test_a_10pct_step_is_found_within_one_job_in_95pct_of_histories():
    outcomes = trend_sim.run(HISTORIES, jobs=30, step_pct=10.0, n_steps=1, seed=11)
    found = sum(o.all_found for o in outcomes) / len(outcomes)
    assert found >= 0.95, f"only {found:.1%} of histories had the step located in every series"


def test_flat_histories_rarely_give_a_false_change_point():
    outcomes = trend_sim.run(HISTORIES, jobs=30, n_steps=0, seed=12)
    false = sum(o.false_points > 0 for o in outcomes) / len(outcomes)
    assert false <= 0.05, f"{false:.1%} of flat histories had a change point"


def test_two_steps_are_both_found():
    outcomes = trend_sim.run(60, jobs=30, step_pct=10.0, n_steps=2, seed=13)
    series = sum(o.series_found for o in outcomes) / sum(o.series_total for o in outcomes)
    both = sum(o.all_found for o in outcomes) / len(outcomes)
    assert series >= 0.95 and both >= 0.75, (series, both)


def test_a_step_is_described_where_it_happened_with_its_size_commit_and_direction():
    sets = trend_sim.history(30, steps={18: 1.10}, seed=5)
    trend = analyse(sets)
    ttft = [c for c in trend.change_points if c.metric == "median_ttft_ms" and c.test == "chat-c1"]
    assert [c.index for c in ttft] == [18]
    point = ttft[0]
    assert point.direction == SLOWER and point.commit == sets[18].config["commit"]
    assert point.ci_low_pct < point.change_pct < point.ci_high_pct and 5 < point.change_pct < 15
    assert point.p_value <= trend.alpha
    throughput = [c for c in trend.change_points if c.metric == "output_throughput" and c.test == "chat-c1"]
    assert throughput and throughput[0].change_pct < 0 and throughput[0].direction == SLOWER
    faster = analyse(trend_sim.history(30, steps={12: 1 / 1.10}, seed=6)).change_points
    assert faster and {c.direction for c in faster} == {"faster"}


def test_the_same_history_gives_the_same_answer_in_any_order(tmp_path):
    sets = trend_sim.history(20, steps={10: 1.12}, seed=7)
    first, second = analyse(sets), analyse(list(reversed(sets)))
    assert first.change_points and first.change_points == second.change_points
    write_change_points(tmp_path / "a.json", first.change_points)
    write_change_points(tmp_path / "b.json", analyse(sets).change_points)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    entry = json.loads((tmp_path / "a.json").read_text())[0]
    assert {"test", "metric", "index", "timestamp", "commit", "change_pct", "p_value", "direction"} <= set(entry)


def test_only_gated_metrics_are_searched_and_a_thresholds_file_chooses_them():
    sets = trend_sim.history(12, seed=8)
    # Every gated metric the jobs carry (capacity, gated too, belongs to capacity tests only).
    assert {s.metric for s in analyse(sets).series} == set(DEFAULT_GATED) & set(trend_sim.true_values(1))
    chosen = Thresholds(5.0, {"p99_itl_ms": None, "request_throughput": 3.0})
    assert "p99_itl_ms" not in {s.metric for s in analyse(sets, chosen).series}


def test_too_short_a_history_has_no_change_points_and_no_split():
    assert best_split(np.zeros(5), min_segment=3, window=20) is None
    assert change_points(np.array([0.0, 0.0, 0.0, 1.0, 1.0])) == []
    assert analyse(trend_sim.history(4, steps={2: 1.5}, seed=1)).change_points == []


def test_identical_values_are_no_change_and_a_clean_step_is_one():
    assert change_points(np.zeros(12)) == []
    steps = change_points(np.r_[np.zeros(6), np.full(6, 0.1)])
    assert [p for p, _ in steps] == [6]


def test_a_change_is_new_only_in_the_push_that_makes_it_detectable():
    # The step starts at job 17 of 20 (index 17): three jobs after it, the fewest a change point needs.
    sets = trend_sim.history(20, steps={17: 1.12}, seed=9)
    update = trend_with_newest(sets)
    assert update.new and {c.index for c in update.new} == {17}
    again = trend_with_newest([*sets, *trend_sim.history(21, steps={17: 1.12}, seed=9)[20:]])
    assert again.trend.change_points and not [c for c in again.new if c.index in (16, 17, 18)]


def test_load_history_orders_jobs_and_refuses_a_corrupt_one(tmp_path):
    sets = trend_sim.history(6, seed=2)
    for number, result_set in enumerate(reversed(sets)):  # folder names newest first, as downloaded
        trend_sim.write(result_set, tmp_path / f"{number + 1:02d}-run{100 + number}")
    loaded = load_history(tmp_path)
    assert [r.config["commit"] for r in loaded] == [r.config["commit"] for r in sets]
    (tmp_path / "03-run102" / "metrics.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_history(tmp_path)
    with pytest.raises(ResultsError, match="does not exist"):
        load_history(tmp_path / "missing")


def test_source_revision_prefers_the_ci_then_git_then_nothing(tmp_path):
    assert source_revision("abc", "main", tmp_path) == {"commit": "abc", "branch": "main"}
    assert source_revision(None, None, tmp_path) == {"commit": None, "branch": None}  # not a repository
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    try:
        subprocess.run([*git, "init", "-q", "-b", "trunk", str(tmp_path)], check=True, capture_output=True)
        subprocess.run(
            [*git, "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"], check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"git cannot make a repository here: {exc}")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert source_revision(None, None, tmp_path) == {"commit": head, "branch": "trunk"}
