"""Run kitt's load generator (``kitt.bench.loadgen.run_level``) once and save its records as JSON.

    python benchmarks/clients/kitt_bench.py --url http://127.0.0.1:8000 --concurrency 64 \\
        --num-requests 256 --output-len 64 --out kitt.json

    python benchmarks/clients/kitt_bench.py --url http://127.0.0.1:8000 --concurrency 64 \\
        --num-requests 512 --output-len 256 --dataset chats.json --rate 48 --burstiness 0.5 --out kitt.json

Each saved request has ``prompt_head`` (the first 48 characters of its prompt, which the
reference server logs too), ``scheduled``, ``sent`` and ``events`` in ``time.perf_counter()``
seconds, and ``event_tokens`` and ``error`` as the record has them. With ``--dataset`` the
prompts come from a ShareGPT file (``kitt.workload.datasets``, output lengths from its answers
capped at ``--output-len``); with ``--rate`` the level is open loop with gamma arrivals
(``kitt.workload.arrivals``) instead of ``--concurrency`` closed-loop streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.config import Level
from kitt.workload.arrivals import Arrival, schedule
from kitt.workload.datasets import DatasetSpec, read_dataset
from kitt.workload.plan import build_level


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="reference")
    parser.add_argument("--api", choices=("completions", "chat"), default="completions")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--num-requests", type=int, required=True)
    parser.add_argument("--input-len", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--aiohttp", action="store_true", help="use the load generator as it was before http.py")
    parser.add_argument("--dataset", help="a ShareGPT file to take prompts from")
    parser.add_argument("--rate", type=float, help="open loop at this many requests/s (gamma arrivals)")
    parser.add_argument("--burstiness", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.aiohttp:
        from loadgen_aiohttp import run_level as level_runner  # benchmarks/clients/
    else:
        level_runner = run_level
    dataset = read_dataset(DatasetSpec(args.dataset, "sharegpt", "shuffle")) if args.dataset else None
    requests = build_level(args.num_requests, input_len=args.input_len, output_len=args.output_len, dataset=dataset,
                           seed=args.seed, salt="accuracy")
    level, due = Level("concurrency", args.concurrency), None
    if args.rate:
        level = Level("rate", args.rate)
        due = schedule(Arrival("gamma", args.burstiness), args.rate, len(requests), f"{args.seed}:accuracy:arrivals")
    target = Target(base_url=args.url, model=args.model, api=args.api)
    records: list[RequestRecord] = []
    extra = {"seed": args.seed} if args.aiohttp else {"schedule": due}  # the old one drew its own arrivals
    start, end = asyncio.run(level_runner(target, requests, level, test_name="accuracy", run_number=1, sink=records,
                                          **extra))
    prompts = {spec.index: spec.prompt for spec in requests}
    saved = [{"prompt_head": prompts[r.index][:48], "scheduled": r.scheduled, "sent": r.sent, "events": r.events,
              "event_tokens": r.event_tokens, "completion_tokens": r.completion_tokens, "error": r.error}
             for r in records]
    with open(args.out, "w") as handle:
        json.dump({"client": "kitt", "start": start, "end": end, "requests": saved}, handle)


if __name__ == "__main__":
    main()
