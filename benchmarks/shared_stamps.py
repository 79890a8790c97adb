"""ITL and TPOT on a very fast server: how many token events shared a read, and whether TPOT held.

    python benchmarks/shared_stamps.py RESULTS_DIR

RESULTS_DIR is a `kitt run` result set. For each test of the run (measured requests only) it
prints the number of ITL gaps, the share of them that are zero (events that arrived in one read
and so share its stamp), median ITL and median TPOT. When the result set's engine.log is
llama-server's, it also prints the server's own decode time per token for the same requests
(``eval time = X ms / N tokens``, as X / (N - 1), TPOT's definition), matched to the requests in
completion order, and the median relative difference. The figures go into docs/performance.md
with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

EVAL_TIME = re.compile(r"\|\s+eval time =\s+([\d.]+) ms /\s+(\d+) tokens")


def tpot_ms(sample: dict) -> float | None:
    events, tokens = sample["event_ms"], sample["completion_tokens"] or len(sample["event_ms"])
    return (events[-1] - events[0]) / (tokens - 1) if sample["error"] is None and tokens > 1 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    samples = [json.loads(line) for line in (args.results / "samples.jsonl").read_text().splitlines()]
    log = args.results / "engine.log"
    decoded = (
        [(float(ms), int(n)) for ms, n in EVAL_TIME.findall(log.read_text(errors="replace"))] if log.exists() else []
    )
    # The server logs every generation, readiness probe and warm-up included, in completion order.
    lengths = {s["completion_tokens"] for s in samples}
    server = iter([ms / (n - 1) for ms, n in decoded if n in lengths and n > 1])
    # A request that failed before its response was never generated: it has no line to match.
    paired = [(s, next(server, None) if decoded and s["error"] is None else None) for s in samples]
    print("| test | gaps | zero gaps | median ITL ms | median TPOT ms | server ms/token | median diff |")
    print("|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(s["test_name"] for s in samples):
        rows = [(s, srv) for s, srv in paired if s["test_name"] == name and not s["warmup"] and s["error"] is None]
        gaps = [b - a for s, _ in rows for a, b in zip(s["event_ms"], s["event_ms"][1:])]
        tpots = [t for s, _ in rows if (t := tpot_ms(s)) is not None]
        servers = [srv for _, srv in rows if srv is not None]
        diffs = [abs(t - srv) / srv for s, srv in rows if srv and (t := tpot_ms(s)) is not None]
        zero = sum(gap == 0 for gap in gaps)
        print(
            f"| {name} | {len(gaps)} | {zero} ({zero / max(len(gaps), 1):.1%}) | {statistics.median(gaps):.3f} | "
            f"{statistics.median(tpots):.3f} | {statistics.median(servers) if servers else float('nan'):.3f} | "
            f"{statistics.median(diffs) if diffs else float('nan'):.1%} |"
        )


if __name__ == "__main__":
    main()
