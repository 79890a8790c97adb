"""Capacity gated under CI noise, for each baseline design: docs/gate-noise.md ("Capacity").

    .venv/bin/python benchmarks/capacity_gate.py [--reports 1000] [--caught-reports 200] [--repeat-cv 0.015]

Seeded and deterministic: it runs tests/capacity_gate_sim.py's simulation (kitt's own search and
kitt.compare's gate on result sets as the arm writes them) for A/B pairs in one job (5 pairs),
a history of 10 baseline jobs and one baseline job (5 repeats a side), on the noise model of
docs/gate-noise.md (job CV 3%, drift ±5% within a job, repeat CV 1.5%), and prints a Markdown
table: A/A reports whose capacity is a regression, and the share of 25% capacity losses caught
(8 -> 6 slots over concurrency, 8.5 -> 6.4 req/s over request rate). "Exact slots" is a server
whose capacity is its slots whatever the noise (a TTFT goal below one service time): every
repeat finds the same number, so there is no spread at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from capacity_gate_sim import rate, simulate  # noqa: E402

from kitt.comparison import Verdict  # noqa: E402

CASES = (  # label, over, knee, knee after a 25% loss, noise on
    ("concurrency, exact slots", "concurrency", 8.5, 6.5, False),
    ("concurrency, knee 8.5 streams", "concurrency", 8.5, 6.5, True),
    ("request rate, knee 8.5 req/s", "request_rate", 8.5, 8.5 * 0.75, True),
)
DESIGNS = (("A/B, 5 pairs", "ab"), ("10 baseline jobs", "history"), ("1 baseline job", "single"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--caught-reports", type=int, default=200)
    parser.add_argument("--repeat-cv", type=float, default=0.015)
    args = parser.parse_args()
    print(
        f"{args.reports:,} simulated A/A reports and {args.caught_reports:,} with a 25% loss per cell; "
        f"job CV 3%, drift ±5%, repeat CV {args.repeat_cv:.1%}; threshold 5%\n"
    )
    print("| Capacity | Design | A/A failing | A/A inconclusive | 25% loss caught |")
    print("|---|---|---|---|---|")
    for label, over, knee, lost, noisy in CASES:
        noise = (
            dict(job_cv=0.03, drift_pct=5.0, repeat_cv=args.repeat_cv)
            if noisy
            else dict(job_cv=0.0, drift_pct=0.0, repeat_cv=0.0)
        )
        for name, design in DESIGNS:
            aa = simulate(args.reports, design, over=over, base_knee=knee, cur_knee=knee, seed=1, **noise)
            loss = simulate(args.caught_reports, design, over=over, base_knee=knee, cur_knee=lost, seed=2, **noise)
            print(
                f"| {label} | {name} | {rate(aa):.2%} | {rate(aa, Verdict.INCONCLUSIVE):.1%} | {rate(loss):.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
