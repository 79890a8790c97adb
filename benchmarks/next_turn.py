"""What building a session's next turn costs: the time from an answer's text to the next
request's bytes (``kitt.workload.spec.next_turn``, ``request_body``, ``json.dumps`` and the HTTP
head), as ``kitt.bench.loadgen`` does it when a turn's answer has been decoded. It runs off the
read path (in the pump's deferred work, before the think time's timer is set), and the send time
of the next turn is taken at its write, so it never enters a latency; this says how long it
holds the pump.

    python benchmarks/next_turn.py --turns 3,10 --input-words 128 --answer-words 128
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from kitt.bench.client import Client
from kitt.workload.spec import RequestSpec, next_turn, request_body


def measure(turn: int, input_words: int, answer_words: int, api: str, rounds: int) -> float:
    """Median microseconds to build turn ``turn``'s bytes from turn ``turn - 1`` and its answer."""
    client = Client("http://127.0.0.1:1/v1/chat/completions", {})
    spec = RequestSpec(index=0, prompt="word " * input_words, max_tokens=128)
    answer = "answer " * answer_words
    for k in range(1, turn - 1):  # the history up to the turn before
        spec = next_turn(spec, answer, RequestSpec(index=k, prompt="more " * input_words, max_tokens=128))
    following = RequestSpec(index=turn, prompt="next " * input_words, max_tokens=128)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        built = next_turn(spec, answer, following)
        client.request_bytes(
            json.dumps(
                request_body(built, api=api, model="m", stream_options={"include_usage": True}, extra={})
            ).encode()
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", default="2,3,10")
    parser.add_argument("--input-words", type=int, default=128)
    parser.add_argument("--answer-words", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    for api in ("chat", "completions"):
        for turn in (int(t) for t in args.turns.split(",")):
            us = measure(turn, args.input_words, args.answer_words, api, args.rounds)
            print(f"{api:12s} turn {turn:3d}: {us:7.1f} us median to build the next turn's request bytes")


if __name__ == "__main__":
    main()
