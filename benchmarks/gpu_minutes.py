"""GPU minutes per trustworthy verdict: fixed A/B designs against --repeats auto (docs/gpu-minutes.md).

    .venv/bin/python benchmarks/gpu_minutes.py [--jobs 10000] [--repeat-cv 0.015] [--drift-pct 5]
    .venv/bin/python benchmarks/gpu_minutes.py --history [--job-cv 0.03] [--history-jobs 10] ...

Seeded and deterministic: it runs tests/seq_sim.py's simulation (kitt.sequential and the gate's
own functions) of A/B jobs under docs/gate-noise.md's and docs/ab.md's noise (a 3% job effect
shared by every metric, each repeat's own noise, the runner's speed drifting by a sine of the
wall clock, one period per 10 pairs), nine gated metrics, threshold 5%, family alpha 1%, and
prints a Markdown table per noise setting: the A/A jobs whose report fails, the share of one
metric's 6% (just past the threshold), 10% and 20% regressions that the report catches, and the mean and 95th percentile of
pairs run. Fixed designs run 3, 5 and 10 pairs; auto looks after every pair from 3 to 10. Rows
for the alternatives the design was chosen over: no spending (every look at the full level),
and an always-valid normal-mixture confidence sequence.

``--history``: single-arm jobs judged against a history of baseline jobs (``--history-dir``, the
gate's history test) instead: each simulated job gets its own history of ``--history-jobs`` jobs
of 5 repeats under the same noise model (job effect ``--job-cv``, drift a sine of the repeat
slot, one period per 20 repeats); fixed designs of 3, 5 and 10 repeats against auto from 3 to 10.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from seq_sim import (  # noqa: E402
    Outcome,
    auto,
    auto_history,
    current_jobs,
    fixed,
    fixed_history,
    history_jobs,
    one_metric_worse,
    pair_diffs,
    report_regressions,
)

from kitt import sequential  # noqa: E402


def mixture_auto(diffs: np.ndarray, design: sequential.Design, threshold_pct: float = 5.0, rho: float = 5.0) -> Outcome:
    """The alternative: Robbins' normal-mixture confidence sequence (always valid for every n, for a
    known variance; the variance measured so far is plugged in, which flatters it), with the same
    decisions: beyond when the interval at level alpha/M excludes 0 and the change is past the
    threshold, within when the interval at level beta lies inside ±threshold."""
    jobs = diffs.shape[0]
    up, down = math.log1p(threshold_pct / 100), math.log1p(-threshold_pct / 100)
    stopped = np.full(jobs, design.max_pairs)
    done = np.zeros(jobs, dtype=bool)
    for n in range(design.min_pairs, design.max_pairs):
        d = diffs[..., :n]
        mean, sd = d.mean(-1), d.std(-1, ddof=1)

        def half(level: float, sd: np.ndarray = sd, n: int = n) -> np.ndarray:
            return sd * np.sqrt(2 * (n + rho) / n**2 * np.log(np.sqrt((n + rho) / rho) / level))

        beyond = (np.abs(mean) > np.log1p(threshold_pct / 100)) & (
            np.abs(mean) > half(design.alpha / design.family_size)
        )
        within = (mean + half(design.beta) < up) & (mean - half(design.beta) > down)
        now = ~done & (beyond | within).all(-1)
        stopped[now] = n
        done |= now
    regression = np.zeros((jobs, diffs.shape[1]), dtype=bool)
    for n in np.unique(stopped):
        rows = stopped == n
        regression[rows] = report_regressions(diffs[rows][..., :n], threshold_pct)
    return Outcome(regression, stopped)


def history_tables(args: argparse.Namespace) -> None:
    """Single-arm jobs against a history: fixed repeats against auto (the module docstring)."""
    common = {"repeat_cv": args.repeat_cv, "drift_pct": args.drift_pct, "job_cv": args.job_cv}
    sides = {
        name: (
            history_jobs(args.jobs, args.history_jobs, seed=seed, **common),
            current_jobs(args.jobs, 10, shift=shift, seed=seed + 100, **common),
        )
        for name, shift, seed in cases()
    }
    print(
        f"{args.jobs:,} simulated single-arm jobs per cell, each against its own history of {args.history_jobs} "
        f"jobs of 5 repeats; repeat CV {args.repeat_cv:.1%}; job CV {args.job_cv:.1%}; "
        f"drift ±{args.drift_pct:g}% (one period per 20 repeats)\n"
    )
    print(
        "| Design | A/A failing | 6% caught | 10% caught | 20% caught | Repeats, A/A (mean) | Repeats, 10% (mean) "
        "| Repeats, all (mean) | Repeats, all (p95) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for repeats in (3, 5, 10):
        outcomes = (fixed_history(*sides[k], repeats) for k in SIDES)
        print(row(f"fixed {repeats} repeats", *outcomes), flush=True)
    design = sequential.Design(3, 10)
    print(row("auto (3-10), the design", *(auto_history(*sides[k], design) for k in SIDES)), flush=True)
    naive = sequential.Design(3, 10, spending="none")
    print(row("auto, no spending (invalid)", *(auto_history(*sides[k], naive) for k in SIDES)), flush=True)


def row(label: str, aa: Outcome, p6: Outcome, p10: Outcome, p20: Outcome) -> str:
    pairs = np.concatenate([aa.pairs, p6.pairs, p10.pairs, p20.pairs])
    return (
        f"| {label} | {aa.regression.any(-1).mean():.2%} | {p6.regression[:, 0].mean():.1%} | "
        f"{p10.regression[:, 0].mean():.1%} | "
        f"{p20.regression[:, 0].mean():.1%} | {aa.pairs.mean():.2f} | {p10.pairs.mean():.2f} | "
        f"{pairs.mean():.2f} | {np.percentile(pairs, 95):.0f} |"
    )


SIDES = ("aa", "p6", "p10", "p20")


def cases() -> list[tuple[str, np.ndarray | None, int]]:
    """Each column's jobs: A/A, then one metric 6, 10 and 20% worse; (name, shift, seed)."""
    return [
        ("aa", None, 1),
        ("p6", one_metric_worse(6), 4),
        ("p10", one_metric_worse(10), 2),
        ("p20", one_metric_worse(20), 3),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat-cv", type=float, default=0.015)
    parser.add_argument("--drift-pct", type=float, default=5.0)
    parser.add_argument("--history", action="store_true", help="single-arm jobs against a history of baseline jobs")
    parser.add_argument("--job-cv", type=float, default=0.03, help="with --history: the job effect's CV")
    parser.add_argument("--history-jobs", type=int, default=10, help="with --history: baseline jobs in the history")
    args = parser.parse_args()
    if args.history:
        history_tables(args)
        return
    common = {"repeat_cv": args.repeat_cv, "drift_pct": args.drift_pct}
    jobs = {name: pair_diffs(args.jobs, 10, shift=shift, seed=seed, **common) for name, shift, seed in cases()}
    print(
        f"{args.jobs:,} simulated A/B jobs per cell; repeat CV {args.repeat_cv:.1%}; job CV 3%; "
        f"drift ±{args.drift_pct:g}% (one period per 10 pairs)\n"
    )
    print(
        "| Design | A/A failing | 6% caught | 10% caught | 20% caught | Pairs, A/A (mean) | Pairs, 10% (mean) "
        "| Pairs, all (mean) | Pairs, all (p95) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for pairs in (3, 5, 10):
        print(row(f"fixed {pairs} pairs", *(fixed(jobs[k], pairs) for k in SIDES)), flush=True)
    design = sequential.Design(3, 10)
    print(row("auto (3-10), the design", *(auto(jobs[k], design) for k in SIDES)), flush=True)
    naive = sequential.Design(3, 10, spending="none")
    print(row("auto, no spending (invalid)", *(auto(jobs[k], naive) for k in SIDES)), flush=True)
    print(row("auto, mixture CS", *(mixture_auto(jobs[k], design) for k in SIDES)), flush=True)


if __name__ == "__main__":
    main()
