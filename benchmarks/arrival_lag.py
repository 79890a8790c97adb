"""Does the open loop's early wake help? Schedule lag with and without it, in alternating rounds.

An open-loop level's arrivals are timers on the pump; epoll waits whole milliseconds, rounded
up, so a timer fires up to 1 ms late unless the pump wakes early and polls until it is due
(``kitt.bench.pump.TIMER_SLACK``, set by ``kitt.bench.loadgen`` for open loops). Each round runs
the same gamma-arrival level against one reference server with the slack off and on, in turn,
so the machine's load shifts both alike:

    python benchmarks/arrival_lag.py --rounds 3 --requests 300 --rate 50 --burstiness 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
from pathlib import Path

import kitt.bench.loadgen as loadgen
from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.config import Level
from kitt.workload.arrivals import Arrival, schedule
from kitt.workload.synthetic import build_requests

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--burstiness", type=float, default=0.5)
    args = parser.parse_args(argv)
    server = subprocess.Popen(
        [sys.executable, str(HERE / "reference_server.py"), "--port", "0", "--ttft-ms", "50", "--itl-ms", "10"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = (server.stdout.readline() if server.stdout else "").split()[1]
        on = loadgen.TIMER_SLACK
        for round_number in range(args.rounds):
            for slack in (0.0, on):
                loadgen.TIMER_SLACK = slack  # what the open loop sets on its pump
                specs = build_requests(args.requests, 32, 64, 0, f"lag:{round_number}:{slack}")
                due = schedule(Arrival("gamma", args.burstiness), args.rate, args.requests, f"lag:{round_number}")
                sink: list[RequestRecord] = []
                asyncio.run(
                    run_level(
                        Target(base_url=f"http://127.0.0.1:{port}", model="reference"),
                        specs,
                        Level("rate", args.rate),
                        test_name="lag",
                        run_number=1,
                        sink=sink,
                        schedule=due,
                    )
                )
                lags = sorted((r.sent - r.scheduled) * 1e3 for r in sink)
                print(
                    f"round {round_number + 1}, slack {slack * 1e3:g} ms: schedule lag median "
                    f"{statistics.median(lags):.3f} ms, p90 {lags[int(0.9 * (len(lags) - 1))]:.3f} ms",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
