"""What keeps an open loop's arrivals on time? Schedule lag for three ways of timing them, in alternating rounds.

An open-loop level's arrivals are timers on the pump (``kitt.bench.pump``). epoll waits whole
milliseconds, rounded up, so a plain timer fires up to 1 ms late; an exact timer wakes the pump
``TIMER_SLACK`` early and polls until it is due. And an arrival's own work (its record, choosing
or opening a connection) takes time before the send: ``kitt.bench.loadgen.PREPARE_S`` does it
that long ahead, so only the send is left at the due time. Each round runs the same
gamma-arrival level against one reference server three ways, in turn, so the machine's load
shifts all alike:

- ``plain``: the arrival's work at its due time, on a plain timer (no early wake);
- ``exact``: the same on an exact timer;
- ``prepared``: the arrival made ready ``PREPARE_S`` ahead, then sent on an exact timer (kitt's way).

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
import kitt.bench.pump as pump
from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.config import Level
from kitt.workload.arrivals import Arrival, schedule
from kitt.workload.synthetic import build_requests

HERE = Path(__file__).resolve().parent
WAYS = {  # (TIMER_SLACK, PREPARE_S)
    "plain": (0.0, 0.0),
    "exact": (pump.TIMER_SLACK, 0.0),
    "prepared": (pump.TIMER_SLACK, loadgen.PREPARE_S),
}


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
        print("| round | way | median lag (ms) | p90 lag (ms) |\n|---|---|---|---|")
        for round_number in range(args.rounds):
            for way, (slack, prepare) in WAYS.items():
                pump.TIMER_SLACK, loadgen.PREPARE_S = slack, prepare  # read when the level's pump is made
                specs = build_requests(args.requests, 32, 64, 0, f"lag:{round_number}:{way}")
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
                lags = sorted((r.sent - r.scheduled) * 1e3 for r in sink if r.sent)
                print(
                    f"| {round_number + 1} | {way} | {statistics.median(lags):.3f} | {lags[int(0.9 * (len(lags) - 1))]:.3f} |",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
