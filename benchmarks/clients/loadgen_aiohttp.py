"""kitt's load generator as it was before kitt/bench/http.py (aiohttp, a task wake-up per SSE line).

Kept only so that benchmarks/harness_accuracy.py can measure the "before" figures
(``--clients kitt-aiohttp``); nothing in kitt imports it.

The original docstring follows.

The asynchronous streaming load generator.

It sends OpenAI-compatible streaming requests in one of two shapes:

- closed loop: ``concurrency`` streams, each sending its next request as soon as the last ends;
- open loop: Poisson arrivals at ``rate`` requests/s from a seeded generator, whatever the
  server's state, so queueing shows up as latency.

Latency is measured from the moment a request is sent, and the schedule lag (send minus due
time) is recorded, so client-side queueing is never hidden. The connection pool is sized to the
number of streams. Each SSE line is timestamped as it is read, before any JSON is decoded;
decoding happens once the stream has ended, off the timing path.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any, Callable

from kitt.bench.loadgen import Progress, Target  # the same data types as today's load generator
from kitt.bench.records import RequestRecord
from kitt.workload.spec import RequestSpec, api_path, request_body
from kitt.config import Level


async def run_level(
    target: Target,
    requests: list[RequestSpec],
    level: Level,
    *,
    test_name: str,
    run_number: int,
    seed: int,
    sink: list[RequestRecord],
    progress: Progress | None = None,
) -> tuple[float, float]:
    """Run ``requests`` at ``level``, appending one record per request to ``sink`` as it ends.

    Returns (start, end) in perf_counter seconds: the first due time and the last end.
    ``sink`` is owned by the caller so records survive a cancellation.
    """
    import aiohttp

    streams = int(level.value) if level.kind == "concurrency" else len(requests)
    connector = aiohttp.TCPConnector(limit=max(streams, 1), limit_per_host=0, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=target.request_timeout, sock_connect=30)
    url = target.base_url.rstrip("/") + api_path(target.api)
    progress = progress or Progress()
    progress.total += len(requests)
    mine: list[RequestRecord] = []
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=target.headers, auto_decompress=False
    ) as session:

        async def one(spec: RequestSpec, due: float) -> None:
            record = RequestRecord(
                index=spec.index,
                test_name=test_name,
                run_number=run_number,
                scheduled=due,
                requested_output_tokens=spec.max_tokens,
            )
            body = json.dumps(
                request_body(
                    spec,
                    api=target.api,
                    model=target.model,
                    stream_options=target.stream_options,
                    extra=target.extra_body,
                )
            ).encode()
            try:
                await _stream(session, url, body, record)
            finally:
                mine.append(record)
                sink.append(record)
                progress.done += 1

        start = time.perf_counter()
        if level.kind == "concurrency":
            queue = iter(requests)

            async def worker() -> None:
                for spec in queue:  # a shared iterator: no task per request in closed loop
                    await one(spec, time.perf_counter())

            await asyncio.gather(*(worker() for _ in range(min(streams, len(requests)))))
        else:
            rng = random.Random(f"{seed}:{test_name}:{run_number}:arrivals")
            due, tasks = start, []
            for spec in requests:
                tasks.append(asyncio.ensure_future(_at(due, one, spec)))
                due += rng.expovariate(level.value)
            await asyncio.gather(*tasks)
        end = max((r.end or r.sent or start for r in mine), default=start)
    return start, end


async def _at(due: float, call: Callable[[RequestSpec, float], Any], spec: RequestSpec) -> None:
    delay = due - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    await call(spec, due)


async def _stream(session: Any, url: str, body: bytes, record: RequestRecord) -> None:
    import aiohttp

    lines: list[tuple[float, bytes]] = []
    clock = time.perf_counter
    record.sent = clock()
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            record.status = response.status
            if response.status != 200:
                text = (await response.read())[:300].decode("utf-8", "replace")
                record.error = f"HTTP {response.status}: {' '.join(text.split())}"
                record.end = clock()
                return
            async for line in response.content:
                now = clock()
                if line.startswith(b"data:"):
                    lines.append((now, line))
            record.end = clock()
    except asyncio.CancelledError:
        record.error = "cancelled"
        record.end = clock()
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        record.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        record.end = clock()
    parse_events(lines, record)


def parse_events(lines: list[tuple[float, bytes]], record: RequestRecord) -> None:
    """Turn timestamped ``data:`` lines into token events and usage, after the stream ended.

    A token event carries generated text (``choices[].text`` or ``choices[].delta.content``;
    reasoning text counts too). Role-only deltas, empty deltas, usage-only chunks and ``[DONE]``
    are not token events, so they never start the TTFT clock.
    """
    previous_completion: int | None = None
    event_tokens: list[int] = []
    continuous = True
    for stamp, line in lines:
        payload = line[5:].strip()
        if not payload or payload == b"[DONE]":
            continue
        try:
            chunk = json.loads(payload)
        except ValueError:
            record.error = record.error or f"malformed SSE data: {payload[:80]!r}"
            continue
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk and not chunk.get("choices"):
            record.error = record.error or f"server error in stream: {str(chunk['error'])[:200]}"
            continue
        usage = chunk.get("usage")
        completion = None
        if isinstance(usage, dict):
            completion = usage.get("completion_tokens")
            record.completion_tokens = completion
            record.prompt_tokens = usage.get("prompt_tokens", record.prompt_tokens)
            record.usage_from_server = True
        if _has_text(chunk.get("choices")):
            record.events.append(stamp)
            if isinstance(completion, int):
                event_tokens.append(completion - (previous_completion or 0))
            else:
                continuous = False
        if isinstance(completion, int):
            previous_completion = completion
    if event_tokens and continuous and len(event_tokens) == len(record.events):
        record.event_tokens = event_tokens
    if not record.events and record.error is None:
        record.error = "stream ended without any generated text"


def _has_text(choices: Any) -> bool:
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        if choice.get("text"):
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and (
            delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning")
        ):
            return True
    return False
