"""The ``sim`` engine: a simulated OpenAI-compatible streaming server.

It streams completions on a schedule drawn from log-normal distributions (TTFT, and the latency
of each token) with seeded noise, so the whole pipeline can be tried, and tested, without a GPU.
Run by ``kitt run -e sim`` as ``python -m kitt.engines.simserver``; pass its options with
``--engine-arg``, e.g. ``--engine-arg=--ttft-ms=80 --engine-arg=--itl-ms=12``.

Events are scheduled on absolute deadlines, so errors never accumulate along a stream. The event
loop wakes up to 1 ms late (epoll's timeout is in whole milliseconds), so each deadline is aimed
half a millisecond early: delivery is then within about ±0.5 ms of the schedule.

Fault injection for tests: ``--never-ready``, ``--startup-delay S``, ``--die-after N`` (exit
abruptly in the middle of request N+1) and ``--fail-every N`` (every Nth request gets HTTP 500).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import time
from typing import Any

_EARLY = 0.0005  # aim this much before each deadline; see the module docstring


class SimServer:
    def __init__(self, options: argparse.Namespace) -> None:
        self.o = options
        self.started = time.monotonic()
        self.requests = 0
        self.running = 0
        self.generation_tokens = 0
        self.prompt_tokens = 0

    def draw(self, rng: random.Random, mean_ms: float, cv: float) -> float:
        """A log-normal draw in seconds with the given mean and coefficient of variation."""
        if cv <= 0:
            return mean_ms / 1e3
        sigma = math.sqrt(math.log1p(cv * cv))
        return rng.lognormvariate(math.log(mean_ms) - sigma * sigma / 2, sigma) / 1e3

    async def health(self, request: Any) -> Any:
        from aiohttp import web

        ready = not self.o.never_ready and time.monotonic() - self.started >= self.o.startup_delay
        return web.Response(status=200 if ready else 503, text="ok" if ready else "loading")

    async def models(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"object": "list", "data": [{"id": self.o.model, "object": "model", "owned_by": "kitt-sim"}]})

    async def metrics(self, request: Any) -> Any:
        from aiohttp import web

        label = f'{{model_name="{self.o.model}"}}'
        lines = [
            "# TYPE kitt_sim:generation_tokens_total counter",
            f"kitt_sim:generation_tokens_total{label} {self.generation_tokens}",
            "# TYPE kitt_sim:prompt_tokens_total counter",
            f"kitt_sim:prompt_tokens_total{label} {self.prompt_tokens}",
            "# TYPE kitt_sim:num_requests_running gauge",
            f"kitt_sim:num_requests_running{label} {self.running}",
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def complete(self, request: Any) -> Any:
        from aiohttp import web

        arrived = asyncio.get_running_loop().time()
        chat = request.path.endswith("/chat/completions")
        body = await request.json()
        self.requests += 1
        number = self.requests
        if self.o.fail_every and number % self.o.fail_every == 0:
            return web.json_response({"error": {"message": "simulated failure", "code": 500}}, status=500)
        prompt = " ".join(m.get("content", "") for m in body.get("messages", [])) if chat else str(body.get("prompt", ""))
        prompt_tokens = max(len(prompt.split()), 1)
        max_tokens = int(body.get("max_tokens") or 16)
        stream_options = body.get("stream_options") or {}
        rng = random.Random(f"{self.o.seed}:{number}")
        schedule = self._schedule(rng, arrived, max_tokens)
        if not body.get("stream"):
            await asyncio.sleep(max(schedule[-1][0] - asyncio.get_running_loop().time(), 0))
            self.prompt_tokens += prompt_tokens
            self.generation_tokens += max_tokens
            text = " tok" * max_tokens
            choice = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
            return web.json_response({"id": f"sim-{number}", "object": "chat.completion" if chat else "text_completion",
                                      "model": self.o.model, "choices": [choice | {"finish_reason": "length"}],
                                      "usage": _usage(prompt_tokens, max_tokens)})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.prompt_tokens += prompt_tokens
        self.running += 1
        try:
            await self._stream(response, number, chat, schedule, prompt_tokens, stream_options)
        finally:
            self.running -= 1
        return response

    def _schedule(self, rng: random.Random, start: float, max_tokens: int) -> list[tuple[float, int]]:
        """(deadline, tokens) per event: TTFT for the first token, then one ITL draw per token."""
        per_event = max(self.o.tokens_per_event, 1)
        deadline = start + self.draw(rng, self.o.ttft_ms, self.o.ttft_cv)
        events, sent = [], 0
        while sent < max_tokens:
            count = min(per_event, max_tokens - sent)
            if sent:
                deadline += sum(self.draw(rng, self.o.itl_ms, self.o.itl_cv) for _ in range(count))
            sent += count
            events.append((deadline, count))
        return events

    async def _stream(self, response: Any, number: int, chat: bool, schedule: list[tuple[float, int]],
                      prompt_tokens: int, stream_options: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        continuous = bool(stream_options.get("continuous_usage_stats"))
        head = {"id": f"sim-{number}", "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": self.o.model}
        if chat:  # a role-only first delta, as real servers send; it is not a token event
            await response.write(_sse(head | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                           "finish_reason": None}]}))
        completion = 0
        for position, (deadline, count) in enumerate(schedule):
            delay = deadline - _EARLY - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.o.die_after and number > self.o.die_after and position >= 2:
                os._exit(3)  # a crash: no goodbye, no final chunk
            completion += count
            self.generation_tokens += count
            last = position == len(schedule) - 1
            text = " tok" * count
            choice: dict[str, Any] = {"index": 0, "finish_reason": "length" if last else None}
            choice.update({"delta": {"content": text}} if chat else {"text": text, "logprobs": None})
            chunk = head | {"choices": [choice]}
            if continuous:
                chunk["usage"] = _usage(prompt_tokens, completion)
            await response.write(_sse(chunk))
        if stream_options.get("include_usage"):
            await response.write(_sse(head | {"choices": [], "usage": _usage(prompt_tokens, completion)}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kitt.engines.simserver", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sim-model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ttft-ms", type=float, default=40.0, help="mean time to first token")
    parser.add_argument("--ttft-cv", type=float, default=0.05, help="coefficient of variation of TTFT (0: constant)")
    parser.add_argument("--itl-ms", type=float, default=8.0, help="mean latency of each further token")
    parser.add_argument("--itl-cv", type=float, default=0.05, help="coefficient of variation of each token's latency")
    parser.add_argument("--tokens-per-event", type=int, default=1, help="tokens carried by each SSE event")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup-delay", type=float, default=0.0, help="seconds before /health answers 200")
    parser.add_argument("--never-ready", action="store_true", help="/health never answers 200")
    parser.add_argument("--die-after", type=int, default=0, help="exit abruptly during request N+1")
    parser.add_argument("--fail-every", type=int, default=0, help="answer every Nth request with HTTP 500")
    options = parser.parse_args(argv)
    if options.ttft_ms <= 0 or options.itl_ms <= 0:
        parser.error("--ttft-ms and --itl-ms must be greater than 0")
    return options


def main(argv: list[str] | None = None) -> None:
    from aiohttp import web

    options = parse_args(argv)
    sim = SimServer(options)
    app = web.Application()
    app.router.add_get("/health", sim.health)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_get("/metrics", sim.metrics)
    app.router.add_post("/v1/completions", sim.complete)
    app.router.add_post("/v1/chat/completions", sim.complete)
    print(f"kitt sim: serving {options.model} on http://{options.host}:{options.port} "
          f"(TTFT {options.ttft_ms} ms, ITL {options.itl_ms} ms)", flush=True)
    web.run_app(app, host=options.host, port=options.port, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
