"""Run kitt's load generator (``kitt.bench.loadgen.run_level``) once and save its records as JSON.

    python benchmarks/clients/kitt_bench.py --url http://127.0.0.1:8000 --concurrency 64 \\
        --num-requests 256 --output-len 64 --out kitt.json

Each saved request has ``prompt_head`` (the first 48 characters of its prompt, which the
reference server logs too), ``sent`` and ``events`` in ``time.perf_counter()`` seconds, and
``event_tokens`` and ``error`` as the record has them.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.workload.synthetic import build_requests
from kitt.config import Level


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
    args = parser.parse_args(argv)
    if args.aiohttp:
        from loadgen_aiohttp import run_level as level_runner  # benchmarks/clients/
    else:
        level_runner = run_level
    requests = build_requests(args.num_requests, args.input_len, args.output_len, args.seed, "accuracy")
    target = Target(base_url=args.url, model=args.model, api=args.api)
    records: list[RequestRecord] = []
    extra = {"seed": args.seed} if args.aiohttp else {}  # the old load generator drew its own arrivals
    start, end = asyncio.run(level_runner(target, requests, Level("concurrency", args.concurrency),
                                       test_name="accuracy", run_number=1, sink=records, **extra))
    prompts = {spec.index: spec.prompt for spec in requests}
    saved = [{"prompt_head": prompts[r.index][:48], "sent": r.sent, "events": r.events,
              "event_tokens": r.event_tokens, "completion_tokens": r.completion_tokens, "error": r.error}
             for r in records]
    with open(args.out, "w") as handle:
        json.dump({"client": "kitt", "start": start, "end": end, "requests": saved}, handle)


if __name__ == "__main__":
    main()
