"""The gate's error rates under real CI noise, for each baseline design: docs/gate-noise.md.

    .venv/bin/python benchmarks/gate_noise.py [--reports 20000] [--repeat-cv 0.015]

Seeded and deterministic: it runs tests/gate_sim.py's simulation (the gate's own functions) for
one baseline job and for histories of 3, 5 and 10 jobs, at job-to-job CVs of 0%, 2% and 3%, and
prints a Markdown table: A/A reports with any false alarm, and the share of one-metric
regressions of 10% and 20% that are caught (five repeats a side, threshold 5%, family α 1%).
With ``--ab`` it prints the A/B table instead: both arms in one job whose speed drifts by a sine
over the job, judged as balanced pairs, and the same drift judged from two sequential runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gate_sim import one_metric_worse, simulate, simulate_ab  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--repeat-cv", type=float, default=0.015)
    parser.add_argument("--ab", action="store_true", help="the A/B-in-one-job table")
    args = parser.parse_args()
    if args.ab:
        ab_table(args.reports, args.repeat_cv)
        return
    print(f"{args.reports:,} simulated reports per cell; repeat CV {args.repeat_cv:.1%}; 5 repeats a side\n")
    print("| Baseline | Job CV | A/A reports failing | 10% regression caught | 20% regression caught |")
    print("|---|---|---|---|---|")
    for jobs in (1, 3, 5, 10):
        for job_cv in (0.0, 0.02, 0.03):
            common = dict(jobs=jobs, job_cv=job_cv, repeat_cv=args.repeat_cv)
            aa = simulate(args.reports, seed=1, **common).any(axis=-1).mean()
            p10 = simulate(args.reports, shift=one_metric_worse(10), seed=2, **common)[:, 0].mean()
            p20 = simulate(args.reports, shift=one_metric_worse(20), seed=3, **common)[:, 0].mean()
            label = "1 job" if jobs == 1 else f"{jobs} jobs"
            print(f"| {label} | {job_cv:.0%} | {aa:.2%} | {p10:.1%} | {p20:.1%} |", flush=True)


def ab_table(reports: int, repeat_cv: float) -> None:
    print(f"{reports:,} simulated reports per cell; repeat CV {repeat_cv:.1%}; job CV 3%; drift: a sine over the job\n")
    print("| Drift amplitude | Pairs | Paired: A/A failing | Paired: 10% caught | Two sequential runs: A/A failing |")
    print("|---|---|---|---|---|")
    for drift in (0.0, 5.0, 15.0):
        for pairs in (5, 10):
            common = dict(pairs=pairs, drift_pct=drift, repeat_cv=repeat_cv)
            aa = simulate_ab(reports, seed=1, **common).any(axis=-1).mean()
            p10 = simulate_ab(reports, shift=one_metric_worse(10), seed=2, **common)[:, 0].mean()
            separate = simulate_ab(reports, paired=False, seed=3, **common).any(axis=-1).mean()
            print(f"| ±{drift:.0f}% | {pairs} | {aa:.2%} | {p10:.1%} | {separate:.2%} |", flush=True)


if __name__ == "__main__":
    main()
