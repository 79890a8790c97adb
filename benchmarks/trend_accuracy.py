"""How well kitt.trend finds change points in seeded histories under CI noise (figures in docs/trend.md).

The histories are tests/trend_sim.py's: a job effect shared by every metric (log-normal, job CV)
plus per-repeat noise (repeat CV), five repeats, two load levels, nine gated metrics each (18
series per history); a step makes every latency 10% worse and throughput 10% lower from a seeded
random job on (at least three jobs from either end). "Located" means every one of the 18 series has
a change point within ±1 job of each step; "false" means a history has any change point farther
than one job from every true step. Seeded: each run prints the same figures.

    .venv/bin/python benchmarks/trend_accuracy.py [--histories 500] [--welch]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import trend_sim  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--welch", action="store_true", help="Welch's t for each split instead of the pooled t")
    args = parser.parse_args()
    print(
        f"{args.histories} histories of {args.jobs} jobs, {'Welch' if args.welch else 'pooled'} t, "
        "5 repeats, 2 levels x 9 gated metrics"
    )
    print(
        "| Job CV | Repeat CV | Steps | Histories located (±1 job, all 18 series) | Series located | "
        "Histories with a false change point | s/history |"
    )
    print("|---|---|---|---|---|---|---|")
    for job_cv, repeat_cv in ((0.02, 0.015), (0.02, 0.03), (0.03, 0.015)):
        for n_steps in (0, 1, 2):
            started = time.perf_counter()
            outcomes = trend_sim.run(
                args.histories,
                jobs=args.jobs,
                step_pct=10.0,
                n_steps=n_steps,
                job_cv=job_cv,
                repeat_cv=repeat_cv,
                seed=100 + n_steps,
                pooled=not args.welch,
            )
            seconds = (time.perf_counter() - started) / len(outcomes)
            false = sum(o.false_points > 0 for o in outcomes) / len(outcomes)
            if n_steps:
                located = f"{sum(o.all_found for o in outcomes) / len(outcomes):.1%}"
                series = f"{sum(o.series_found for o in outcomes) / sum(o.series_total for o in outcomes):.1%}"
            else:
                located = series = "—"
            label = "flat" if not n_steps else f"{n_steps} × 10%"
            print(
                f"| {job_cv:.0%} | {repeat_cv:.1%} | {label} | {located} | {series} | {false:.1%} | {seconds:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
