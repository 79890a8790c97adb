"""The gate's error rates under real CI noise, for each baseline design: docs/gate-noise.md.

    .venv/bin/python benchmarks/gate_noise.py [--reports 20000] [--repeat-cv 0.015]

Seeded and deterministic: it runs tests/gate_sim.py's simulation (the gate's own functions) for
one baseline job and for histories of 3, 5 and 10 jobs, at job-to-job CVs of 0%, 2% and 3%, and
prints a Markdown table: A/A reports with any false alarm, and the share of one-metric
regressions of 10% and 20% that are caught (five repeats a side, threshold 5%, family α 1%).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gate_sim import one_metric_worse, simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--repeat-cv", type=float, default=0.015)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
