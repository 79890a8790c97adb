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
(``kitt.workload.arrivals``) instead of ``--concurrency`` closed-loop streams. With ``--turns N``
each of the ``--num-requests`` is a session of N turns (``kitt.workload.sessions``), each stream
running one session at a time, each later turn carrying the answers so far; with ``--trace`` the
requests and their due times come from a Mooncake trace (``kitt.workload.traces``, ``--speedup``).
A later turn's prompt opens with its first turn's, so every request also saves ``prompt_tokens``
(the server's count): the harness matches on both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

from kitt.bench.loadgen import Target, run_level
from kitt.bench.records import RequestRecord
from kitt.config import Level
from kitt.workload import sessions, traces
from kitt.workload.arrivals import Arrival, schedule
from kitt.workload.datasets import DatasetSpec, read_dataset
from kitt.workload.lengths import Uniform
from kitt.workload.plan import build_level, build_sessions


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
    parser.add_argument("--turns", type=int, help="each request a session of this many turns")
    parser.add_argument("--think-ms", type=float, default=0.0, help="with --turns: the pause before each later turn")
    parser.add_argument("--think-max-ms", type=int, help="with --think-ms: each pause drawn uniformly up to this")
    parser.add_argument("--trace", help="a Mooncake trace (JSONL) to replay, open loop at its timestamps")
    parser.add_argument("--speedup", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.aiohttp:
        from loadgen_aiohttp import run_level as level_runner  # benchmarks/clients/
    else:
        level_runner = run_level
    dataset = read_dataset(DatasetSpec(args.dataset, "sharegpt", "shuffle")) if args.dataset else None
    conversations, level, due = None, Level("concurrency", args.concurrency), None
    if args.turns:
        think = args.think_ms if args.think_max_ms is None else Uniform(int(args.think_ms), args.think_max_ms)
        turns = sessions.TurnsSpec(count=args.turns, think_ms=think)
        built, counts = build_sessions(
            args.num_requests,
            turns,
            input_len=args.input_len,
            output_len=args.output_len,
            seed=args.seed,
            salt="accuracy",
        )
        conversations = sessions.group(built, built, counts, turns, args.seed, "accuracy")
        requests = [s.turns[0] for s in conversations]
        every = [turn for s in conversations for turn in s.turns]
    elif args.trace:
        trace = traces.read_trace(traces.TraceSpec(args.trace, speedup=args.speedup))
        due = trace.offsets(args.num_requests)
        requests = traces.build_requests(trace, len(due), args.seed, "accuracy", None).requests
        level = Level("trace", args.speedup)
    else:
        requests = build_level(
            args.num_requests,
            input_len=args.input_len,
            output_len=args.output_len,
            dataset=dataset,
            seed=args.seed,
            salt="accuracy",
        )
    if not args.turns:
        every = requests
    if args.rate:
        level = Level("rate", args.rate)
        due = schedule(Arrival("gamma", args.burstiness), args.rate, len(requests), f"{args.seed}:accuracy:arrivals")
    target = Target(base_url=args.url, model=args.model, api=args.api)
    records: list[RequestRecord] = []
    extra = {"seed": args.seed} if args.aiohttp else {"schedule": due}  # the old one drew its own arrivals
    if conversations is not None:
        extra["sessions"] = conversations
    before = resource.getrusage(resource.RUSAGE_SELF)
    start, end = asyncio.run(
        level_runner(target, requests, level, test_name="accuracy", run_number=1, sink=records, **extra)
    )
    finished = time.perf_counter()  # every record decoded: the level's work is done
    # Times the process went to sleep waiting (mostly the pump's polls): each costs a wake-up.
    sleeps = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - before.ru_nvcsw
    # A session's later turns open with its first turn's text (kitt.workload.spec.conversation_text).
    heads = {spec.index: spec.text[:48] for spec in every}
    if conversations is not None:
        heads = {turn.index: s.turns[0].text[:48] for s in conversations for turn in s.turns}
    saved = [
        {
            "prompt_head": heads[r.index],
            "prompt_tokens": r.prompt_tokens,
            "scheduled": r.scheduled,
            "turn": r.turn,
            "sent": r.sent,
            "events": r.events,
            "event_tokens": r.event_tokens,
            "completion_tokens": r.completion_tokens,
            "error": r.error,
        }
        for r in records
    ]
    with open(args.out, "w") as handle:
        json.dump(
            {"client": "kitt", "start": start, "end": end, "finished": finished, "sleeps": sleeps, "requests": saved},
            handle,
        )


if __name__ == "__main__":
    main()
