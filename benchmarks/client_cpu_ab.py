"""Did a change to the load generator cost CPU? kitt's own A/B: two source trees, balanced interleaved pairs.

Run-to-run noise in a client's CPU on a shared VM is 10-20% (``docs/performance.md``), so two
sequential runs of ``harness_accuracy.py`` cannot show a few percent either way. This benchmark
does what kitt's A/B mode does for engines: it runs ``client_costs.kitt_variant`` (the whole of
``run_level`` streaming a closed-loop workload from a fresh reference server) from tree A and from
tree B in shuffled pairs, as many A-first as B-first, each run in a fresh process with that
tree first on ``sys.path`` (the reference server is this tree's for both), and reports the ratio of B's CPU per event to A's with a 95%
confidence interval from the paired log differences.

    git worktree add /tmp/before <rev>
    python benchmarks/client_cpu_ab.py --a /tmp/before --b . --streams 1,64,256 --pairs 8
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One run, inside the tree under test: this tree's kitt and its client_costs.kitt_variant. The CLI is
# imported first, as in a real `kitt run`, so that a module one tree happens to load first in the load
# generator (urllib, say) is not counted as a difference: it is loaded in every real run anyway.
_RUN = """
import signal, subprocess, sys
import kitt.cli
sys.path.insert(0, 'benchmarks')
import client_costs as cc
streams, requests, server_tree = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
server = subprocess.Popen([sys.executable, server_tree + '/benchmarks/reference_server.py', '--port', '0'],
                          stdout=subprocess.PIPE, text=True, env={'PYTHONPATH': server_tree})
try:
    port = int(server.stdout.readline().split()[1])
    before = cc.cpu()
    cc.kitt_variant(port, streams, requests)
    print((cc.cpu() - before) / (requests * cc.OUTPUT) * 1e6)
finally:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
"""


def run_once(tree: Path, streams: int, requests: int) -> float:
    """CPU microseconds per SSE event of one ``run_level`` run from ``tree``.

    The reference server always comes from this benchmark's own tree, so both arms stream from the
    same server code and only the client differs."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(streams), str(requests), str(ROOT)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: the run failed: {done.stderr.strip().splitlines()[-1:]}")
    return float(done.stdout.strip().splitlines()[-1])


def balanced_orders(pairs: int, rng: random.Random) -> list[bool]:
    """True: A runs first. As many A-first as B-first (one apart when odd), shuffled."""
    orders = [i % 2 == 0 for i in range(pairs)]
    rng.shuffle(orders)
    return orders


def ratio_interval(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """B/A as a geometric-mean ratio with its 95% t interval, from paired log differences."""
    from kitt.stats import t_ppf

    diffs = [math.log(y / x) for x, y in zip(a, b)]
    mean = statistics.fmean(diffs)
    half = float(t_ppf(0.975, len(diffs) - 1)) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="the reference tree (say, a worktree of main)")
    parser.add_argument("--b", type=Path, required=True, help="the tree under test")
    parser.add_argument("--streams", default="1,64,256")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0, help="about how long each run streams")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.pairs < 2:
        parser.error("--pairs must be at least 2")
    trees = (args.a.resolve(), args.b.resolve())
    for tree in trees:
        if not (tree / "benchmarks" / "client_costs.py").is_file():
            parser.error(f"{tree} has no benchmarks/client_costs.py; pass a kitt source tree")
    rng = random.Random(args.seed)
    print(f"A = {trees[0]}\nB = {trees[1]}\n")
    print("| streams | pairs | A: CPU us per event (median) | B: CPU us per event (median) | B / A (95% CI) |")
    print("|---|---|---|---|---|")
    for streams in map(int, args.streams.split(",")):
        requests = max(streams, int(args.seconds / 0.7) * streams)
        a: list[float] = []
        b: list[float] = []
        for a_first in balanced_orders(args.pairs, rng):
            for arm in (0, 1) if a_first else (1, 0):  # by arm, not by path: A and B may be one tree (A/A)
                (a, b)[arm].append(run_once(trees[arm], streams, requests))
        ratio, low, high = ratio_interval(a, b)
        print(
            f"| {streams} | {args.pairs} | {statistics.median(a):.1f} | {statistics.median(b):.1f} | "
            f"{ratio:.3f} ({low:.3f} ... {high:.3f}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
