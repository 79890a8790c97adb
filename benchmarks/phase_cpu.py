"""Does a workload's CPU per token follow its code path or the phase of its requests?

At 256 requests in flight, kitt's open-loop rows (a trace, a gamma mix) cost 10-25% more CPU per
token than the closed-loop short row, with the same work per token under a profiler
(docs/performance.md). This benchmark separates the two causes it could be: the open loop's code
(timers, requests made ready ahead, connections opened as bursts need them) and the timing of
the requests (a closed loop's streams start together, so every request is at the same point of
its stream as the others; an open loop's requests start at different moments).

The same ``--requests`` short requests (64 tokens, one per event, from one reference server:
TTFT 50 ms, 10 ms between tokens) are sent four ways through ``kitt.bench.loadgen.run_level``,
each about ``--in-flight`` at a time:

- ``closed``: a closed loop of ``--in-flight`` streams (in phase, the closed-loop code);
- ``waves``: the open loop, with ``--in-flight`` requests due at once, one request's length
  apart (in phase, the open-loop code);
- ``staggered``: the open loop, with the same slots evenly offset within a request's length
  (out of phase, no randomness, the open-loop code);
- ``poisson``: the open loop at Poisson arrivals of the same mean rate (out of phase, random).

The ways run in turn, ``--rounds`` times, so drift on a shared machine falls on all of them
alike. Each run reports the process's user and system CPU (``getrusage``) per token, how often
it slept (voluntary context switches) and the kernel's TCP segments per token (``/proc/net/snmp``,
the whole machine: the client's ACKs are the part that differs).

    python benchmarks/phase_cpu.py --rounds 5
    python benchmarks/phase_cpu.py --rounds 5 --server-step-ms 10   # a server that sends like an engine
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import signal
import statistics
import subprocess
import sys
from pathlib import Path

from kitt.bench.loadgen import Target, run_level
from kitt.config import Level
from kitt.workload.synthetic import build_requests

HERE = Path(__file__).resolve().parent
OUTPUT, TTFT_S, ITL_S = 64, 0.050, 0.010
WAYS = ("closed", "waves", "staggered", "poisson")


def due_times(way: str, requests: int, in_flight: int, seed: int) -> list[float] | None:
    """Each request's due time (s from the level's start) for an open-loop way; None for closed."""
    length = TTFT_S + OUTPUT * ITL_S  # one request, start to end, on the reference server
    if way == "closed":
        return None
    if way == "waves":
        return [(i // in_flight) * length for i in range(requests)]
    if way == "staggered":
        return [(i % in_flight) * length / in_flight + (i // in_flight) * length for i in range(requests)]
    rng, at, due = random.Random(seed), 0.0, []
    for _ in range(requests):
        due.append(at)
        at += rng.expovariate(in_flight / length)
    return due


def tcp_segments() -> int:
    """TCP segments sent by the whole machine so far (``/proc/net/snmp``, ``Tcp: OutSegs``)."""
    names, values = [
        line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Tcp:")
    ]
    return int(values[names.index("OutSegs")])


def run_way(port: int, way: str, requests: int, in_flight: int, seed: int) -> dict[str, float]:
    specs = build_requests(requests, 1, OUTPUT, seed=seed, salt="phase")
    due = due_times(way, requests, in_flight, seed)
    level = Level("concurrency", in_flight) if due is None else Level("rate", in_flight / (TTFT_S + OUTPUT * ITL_S))
    sink: list = []
    before, segments = resource.getrusage(resource.RUSAGE_SELF), tcp_segments()
    asyncio.run(
        run_level(
            Target(base_url=f"http://127.0.0.1:{port}", model="reference"),
            specs,
            level,
            test_name="phase",
            run_number=1,
            sink=sink,
            schedule=due,
        )
    )
    after, segments = resource.getrusage(resource.RUSAGE_SELF), tcp_segments() - segments
    tokens = sum(len(r.events) for r in sink)
    failed = sum(r.error is not None for r in sink)
    if failed or not tokens:
        raise SystemExit(f"{way}: {failed} of {len(sink)} requests failed; is the machine overloaded?")
    return {
        "user_us": (after.ru_utime - before.ru_utime) / tokens * 1e6,
        "sys_us": (after.ru_stime - before.ru_stime) / tokens * 1e6,
        "sleeps_per_ktok": (after.ru_nvcsw - before.ru_nvcsw) / tokens * 1e3,
        "segments_per_tok": segments / tokens,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1024)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument(
        "--server-step-ms",
        type=float,
        default=0.0,
        help="the reference server sends on decode steps this long (the tokens of every request in flight together)",
    )
    args = parser.parse_args(argv)
    ways = args.ways.split(",")
    if unknown := set(ways) - set(WAYS):
        parser.error(f"unknown way {sorted(unknown)[0]!r}: choose from {', '.join(WAYS)}")
    server = subprocess.Popen(
        [sys.executable, str(HERE / "reference_server.py"), "--port", "0", "--step-ms", str(args.server_step_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    results: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        for round_number in range(args.rounds):
            for way in ways:
                figures = run_way(port, way, args.requests, args.in_flight, seed=round_number)
                results[way].append(figures)
                print(
                    f"round {round_number + 1} {way:9s} user {figures['user_us']:5.1f} sys {figures['sys_us']:5.1f}"
                    f" us/token, sleeps {figures['sleeps_per_ktok']:4.0f}/1k tokens,"
                    f" TCP segments {figures['segments_per_tok']:.2f}/token",
                    flush=True,
                )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print("\n| way | CPU per token, median (range), us | user | system | TCP segments per token |")
    print("|---|---|---|---|---|")
    for way, runs in results.items():
        total = [r["user_us"] + r["sys_us"] for r in runs]
        print(
            f"| {way} | {statistics.median(total):.1f} ({min(total):.1f}-{max(total):.1f})"
            f" | {statistics.median(r['user_us'] for r in runs):.1f} | {statistics.median(r['sys_us'] for r in runs):.1f}"
            f" | {statistics.median(r['segments_per_tok'] for r in runs):.2f} |"
        )


if __name__ == "__main__":
    main()
