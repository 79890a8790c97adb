"""What keeps an open loop's arrivals on time? Schedule lag and CPU for four ways of timing them, in alternating rounds.

An open-loop level's arrivals are timers on the pump (``kitt.bench.pump``). epoll waits whole
milliseconds, rounded up, so a plain timer fires up to 1 ms late; an exact timer wakes the pump
early and polls until it is due: a millisecond early with epoll's timeout alone, ``SPIN`` early
with a timerfd, which wakes within microseconds. And an arrival's own work (its record, choosing
or opening a connection) takes time before the send: ``kitt.bench.loadgen.PREPARE_S`` does it
that long ahead, so only the send is left at the due time. Each round runs the same
gamma-arrival level against one reference server four ways, in turn, so the machine's load
shifts all alike:

- ``plain``: the arrival's work at its due time, on a plain timer;
- ``exact``: the same on an exact timer, epoll only (a millisecond of polling per arrival);
- ``prepared``: made ready ``PREPARE_S`` ahead, sent on an exact timer, epoll only;
- ``prepared+timerfd``: the same with the timerfd (kitt's way on Linux).

CPU is this process's (the client's) CPU time for the level.

    python benchmarks/arrival_lag.py --rounds 3 --requests 300 --rate 50 --burstiness 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import kitt.bench.loadgen as loadgen
import kitt.bench.pump as pump
from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.config import Level
from kitt.workload.arrivals import Arrival, schedule
from kitt.workload.synthetic import build_requests

HERE = Path(__file__).resolve().parent
WAYS = {  # (TIMER_SLACK without a timerfd, PREPARE_S, use a timerfd)
    "plain": (0.0, 0.0, False),
    "exact": (pump.TIMER_SLACK, 0.0, False),
    "prepared": (pump.TIMER_SLACK, loadgen.PREPARE_S, False),
    "prepared+timerfd": (pump.TIMER_SLACK, loadgen.PREPARE_S, True),
}
CREATE_TIMERFD = pump.TimerFd.create


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
        print("| round | way | median lag (ms) | p90 lag (ms) | client CPU (s) |\n|---|---|---|---|---|")
        for round_number in range(args.rounds):
            for way, (slack, prepare, timerfd) in WAYS.items():
                pump.TIMER_SLACK, loadgen.PREPARE_S = slack, prepare  # read when the level's pump is made
                pump.TimerFd.create = CREATE_TIMERFD if timerfd else (lambda: None)  # type: ignore[method-assign]
                specs = build_requests(args.requests, 32, 64, 0, f"lag:{round_number}:{way}")
                due = schedule(Arrival("gamma", args.burstiness), args.rate, args.requests, f"lag:{round_number}")
                sink: list[RequestRecord] = []
                cpu = time.process_time()
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
                cpu = time.process_time() - cpu
                lags = sorted((r.sent - r.scheduled) * 1e3 for r in sink if r.sent)
                print(
                    f"| {round_number + 1} | {way} | {statistics.median(lags):.3f} "
                    f"| {lags[int(0.9 * (len(lags) - 1))]:.3f} | {cpu:.2f} |",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
