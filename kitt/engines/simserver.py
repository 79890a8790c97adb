"""The ``sim`` engine: a lean simulated OpenAI-compatible streaming server that serves like an engine.

``kitt run -e sim`` starts it as ``python -m kitt.engines.simserver``, so the whole pipeline can
be tried, and tested, without a GPU; set its options with ``--engine-arg``, e.g.
``--engine-arg=--ttft-ms=80 --engine-arg=--itl-ms=12``. The harness-accuracy benchmark uses the
same server with no noise and no serving model as its yardstick (``benchmarks/reference_server.py``).

Schedule, per request starting at ``s``: the first event is due at ``s + TTFT (+ prefill)``, each
later one an ITL after the one before; an event carries ``--tokens-per-event`` tokens (fewer in
the last). TTFT and each ITL are drawn from log-normal distributions with the given mean and
coefficient of variation, seeded per request (``--ttft-cv 0 --itl-cv 0`` gives an exact
schedule). Per-request overrides go in the body: ``ref_ttft_ms``, ``ref_itl_ms``,
``ref_tokens_per_event``. ``--slowdown`` and ``--drift-pct`` scale every time of a request (base
TTFT, prefill, ITL and its per-request growth) by one factor taken at its arrival.

The serving model (``kitt/engines/simmodel.py``, every part off unless asked for): with
``--max-num-seqs N`` at most N requests run and later ones queue in arrival order, so ``s`` is a
request's arrival or the moment a slot frees (the queue wait is part of its TTFT);
``--prefill-ms-per-token`` adds a cost per prompt token not served from the prefix cache;
``--itl-ms-per-seq`` grows each gap per running request; ``--step-ms S`` sends events only at the
ends of S-ms decode steps, as a batching engine sends a step's tokens for every running request
together (each event waits for the end of the step its plan falls in); ``--kv-cache-tokens`` (with
``--block-size``, 16) holds a block-hashed prefix cache with LRU eviction, off with
``--no-enable-prefix-caching``; ``--enable-prompt-tokens-details`` reports
``usage.prompt_tokens_details.cached_tokens``. With all of it off (the default here) every request
starts at its arrival and the schedule is exactly the one above. The ``sim`` engine spec
(``kitt/engines/specs.py``) turns it on as a small GPU deployment, so that ``kitt run -e sim``
with no engine arguments shows queueing and cache hits:

    --max-num-seqs 8              8 running requests, the rest queue
    --prefill-ms-per-token 0.1    prefill at 10,000 prompt tokens/s
    --itl-ms-per-seq 0.5          8 ms between tokens alone, 12 ms with 8 running
    --kv-cache-tokens 65536       a 64 Ki-token prefix cache in 16-token blocks

Any of them can be overridden with ``--engine-arg``, or all turned off with
``--engine-arg=--no-serving-model``.

Why it is lean: no web framework, non-blocking sockets watched by the event loop, responses
built from pre-made byte strings, and one timer for all streams. On Linux that timer is a
``timerfd`` armed at an absolute CLOCK_MONOTONIC deadline with 1 ns timer slack, so events leave
within microseconds of their deadline instead of up to 1 ms late (epoll's timeout is in ms).
With the serving model off, the model is never called.

Tokens are words (``kitt/engines/simtokens.py``): a prompt counts one token per
whitespace-separated word, and a chat request's messages are rendered with a ChatML template that
adds 3 tokens per message and 2 for the generation prompt. ``POST /tokenize`` (``{"prompt"}`` or
``{"messages", "add_generation_prompt"}``) and ``POST /detokenize`` (``{"tokens"}``) answer in
vLLM's shapes, and a completions prompt may be a list of token ids. The usage's ``prompt_tokens``
counts the same way. A prompt longer than ``--max-model-len`` (default 32768) gets vLLM's HTTP 400
(``{"error": {"message", "type", "param", "code"}}``), and a longer output is shortened to fit.

``/metrics`` has vLLM's names and labels (``engine="0"``, ``model_name``):
``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total``, ``vllm:request_success_total``,
``vllm:prefix_cache_queries_total`` and ``vllm:prefix_cache_hits_total`` (in tokens), and the
gauges ``vllm:num_requests_running`` and ``vllm:num_requests_waiting``.

With ``--log FILE`` it writes the truth on SIGTERM/SIGINT: per request, its arrival (the kernel's
receive stamp, SO_TIMESTAMPNS), its prompt length, when it started (``start``), its queue wait,
cached tokens and prefill (``queue_ms``, ``cached_tokens``, ``prefill_ms``), its base TTFT, the
clock reading right before each event's ``send``, and the most any of its events left late
against its plan, or with ``--step-ms`` its plan's step end (``lag_ms``; steps end at
``step_origin`` plus a whole number of steps).

Fault injection for tests: ``--never-ready``, ``--startup-delay S``, ``--die-after N`` (exit
abruptly in the middle of request N+1), ``--fail-every N`` (every Nth request gets HTTP 500) and
``--miscount N`` (/metrics counts N generated tokens more per request than it sent). For the
network tests: ``--api-key KEY`` (everything but /health needs ``Authorization: Bearer KEY``),
``--stall`` (a stream's request is never answered; it holds its slot until its client goes),
``--endless-line MB`` (a stream sends one SSE line of MB MiB with no newline, then closes).
``--host ::1`` listens on IPv6.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import math
import os
import random
import signal
import socket
import time
from typing import Any, Callable

from kitt.engines.simmodel import Request, ServingConfig, ServingModel
from kitt.engines.simnet import RawSocket, clock
from kitt.stamps import TimerFd
from kitt.engines.simtokens import UnknownToken, Vocabulary, chat_token_count, chat_words, message_text

_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_END = b"data: [DONE]\n\n"


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _response(status: str, body: bytes, content_type: bytes = b"application/json", close: bool = False) -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + (b"\r\nConnection: close" if close else b"")
        + b"\r\n\r\n"
        + body
    )


def _bad_request(message: str, param: str | None = None, close: bool = False) -> bytes:
    """vLLM's 400: ``{"error": {"message", "type": "BadRequestError", "param", "code": 400}}``."""
    error = {"error": {"message": message, "type": "BadRequestError", "param": param, "code": 400}}
    return _response("400 Bad Request", json.dumps(error).encode(), close=close)


def _usage(prompt: int, completion: int, details: bytes = b"") -> bytes:
    return b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d%s}' % (
        prompt,
        completion,
        prompt + completion,
        details,
    )


def lognormal(rng: random.Random, mean: float, cv: float) -> float:
    """A log-normal draw with the given mean and coefficient of variation (cv 0: the mean itself)."""
    if cv <= 0:
        return mean
    sigma = math.sqrt(math.log1p(cv * cv))
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def speed_factor(options: argparse.Namespace, wall_time: float) -> float:
    """How much slower than configured a request arriving at ``wall_time`` is served: the arm's
    slowdown times the drift. The drift follows the wall clock, so two sims on one host (the two
    arms of an A/B run) drift together, as two servers on one runner do."""
    drift = 1.0 + options.drift_pct / 100.0 * math.sin(2 * math.pi * wall_time / options.drift_period_s)
    return options.slowdown * drift


class Stream:
    """One response, streamed or whole: its schedule, its pre-built bytes and its truth record.

    A whole (non-streaming) response runs the same schedule without writing its events, and
    writes everything at its last one."""

    __slots__ = (
        "chat",
        "conn",
        "continuous",
        "dead",
        "deadline",
        "due",
        "details",
        "head",
        "held",
        "lag",
        "log",
        "next_gap",
        "per_event",
        "prompt_tokens",
        "remaining",
        "request",
        "rid",
        "sent_tokens",
        "server",
        "speed",
        "streaming",
        "ttft",
        "usage",
        "withheld",
    )

    def __init__(
        self,
        conn: Connection,
        rid: int,
        chat: bool,
        streaming: bool,
        ttft: float,
        next_gap: Callable[[], float],
        per_event: int,
        tokens: int,
        prompt_tokens: int,
        stream_options: dict[str, Any],
        log: dict[str, Any],
        speed: float,
    ):
        self.conn, self.server, self.rid, self.chat, self.streaming = conn, conn.server, rid, chat, streaming
        self.ttft, self.next_gap, self.per_event, self.speed = ttft, next_gap, per_event, speed
        self.deadline = self.due = self.lag = 0.0  # due: when it is sent (its plan, or its step's end)
        self.remaining, self.sent_tokens, self.prompt_tokens = tokens, 0, prompt_tokens
        self.continuous = bool(stream_options.get("continuous_usage_stats"))
        self.usage = bool(stream_options.get("include_usage")) or self.continuous
        kind = b"chat.completion.chunk" if chat else b"text_completion"
        self.head = b'data: {"id":"cmpl-%d","object":"%s","created":%d,"model":%s,"choices":[{"index":0,' % (
            rid,
            kind,
            int(time.time()),
            json.dumps(self.server.o.model).encode(),
        )
        self.log, self.dead, self.held = log, False, False
        self.request: Request | None = None
        self.details = b""  # usage.prompt_tokens_details, with --enable-prompt-tokens-details
        # --withhold-text: this stream's events carry no text (llama.cpp holds back incomplete UTF-8).
        withhold = self.server.o.withhold_text
        self.withheld = bool(withhold) and (rid + 1) % withhold == 0

    def _event(self, text: bytes, last: bool) -> bytes:
        finish = b'"length"' if last else b"null"
        if self.chat:
            body = self.head + b'"delta":{"content":"' + text + b'"},"finish_reason":' + finish + b"}]"
        else:
            body = self.head + b'"text":"' + text + b'","logprobs":null,"finish_reason":' + finish + b"}]"
        if self.continuous:
            body += b',"usage":' + _usage(self.prompt_tokens, self.sent_tokens, self.details)
        return _chunk(body + b"}\n\n")

    def role_delta(self) -> bytes:
        """Chat streams open with a role-only delta, as real servers send; it carries no token."""
        return _chunk(self.head + b'"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n')

    def emit(self) -> bool:
        """Write the next event now; True while more events remain."""
        server = self.server
        die_after = server.o.die_after
        if die_after and self.streaming and self.rid >= die_after and self.sent_tokens >= 2 * self.per_event:
            os._exit(3)  # a crash: no goodbye, no final chunk
        count = min(self.per_event, self.remaining)
        first = self.sent_tokens == 0
        self.sent_tokens += count
        self.remaining -= count
        server.generation_tokens += count
        if first and self.request is not None:
            server.model.prefill_done(self.request)  # type: ignore[union-attr]
        transport = self.conn.transport
        if self.streaming:
            text = (b" r%d" % self.rid + b" tok" * (count - 1)) if first else b" tok" * count
            data = self._event(b"" if self.withheld else text, last=self.remaining == 0)
            now = clock()
            transport.write(data)
            self.log["events"].append(now)
            self.log["tokens"].append(count)
            if now - self.due > self.lag:
                self.lag = now - self.due
        if self.remaining:
            self.deadline += self.next_gap()
            return True
        if self.streaming:
            tail = b""
            if self.usage:
                usage = _usage(self.prompt_tokens, self.sent_tokens, self.details)
                if server.o.usage_completion is not None:  # a server whose usage cannot be trusted
                    usage = b'{"prompt_tokens":%d,"completion_tokens":%s}' % (
                        self.prompt_tokens,
                        server.o.usage_completion.encode(),
                    )
                tail = _chunk(self.head[: self.head.index(b'"choices"')] + b'"choices":[],"usage":' + usage + b"}\n\n")
            transport.write(tail + _chunk(_END) + b"0\r\n\r\n")
            self.log["end"] = clock()
        else:
            self._write_whole(transport)
        self.log["lag_ms"] = self.lag * 1e3
        server.finish(self)
        self.conn.finished()
        return False

    def _write_whole(self, transport: RawSocket) -> None:
        text = " r%d" % self.rid + " tok" * (self.sent_tokens - 1)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
        choice.update({"message": {"role": "assistant", "content": text}} if self.chat else {"text": text})
        body = {
            "id": f"cmpl-{self.rid}",
            "object": "chat.completion" if self.chat else "text_completion",
            "model": self.server.o.model,
            "choices": [choice],
            "usage": json.loads(_usage(self.prompt_tokens, self.sent_tokens, self.details)),
        }
        now = clock()
        transport.write(_response("200 OK", json.dumps(body).encode(), close=self.conn.close_after))
        self.lag = now - self.due
        self.log["events"].append(now)
        self.log["tokens"].append(self.sent_tokens)
        self.log["end"] = now


class Scheduler:
    """Every stream's next deadline in one heap, served by a single timer.

    With ``step`` (seconds), an event leaves at the end of the decode step its deadline falls in
    (steps counted from the scheduler's start), as a batching engine sends the tokens of every
    running request together once a step ends; the deadlines themselves keep their plan."""

    def __init__(self, loop: asyncio.AbstractEventLoop, step: float = 0.0) -> None:
        self.loop, self.step, self.origin = loop, step, clock()
        self.heap: list[tuple[float, int, Stream]] = []
        self.seq = 0
        self.armed = float("inf")
        self.handle: asyncio.TimerHandle | None = None
        self.timerfd = TimerFd.create(tight_slack=True)
        if self.timerfd is not None:
            loop.add_reader(self.timerfd.fd, self._on_timerfd)

    def add(self, stream: Stream) -> None:
        self._push(stream)
        if stream.due < self.armed:
            self._arm(stream.due)

    def _push(self, stream: Stream) -> None:
        due = stream.deadline
        if self.step:  # (a plan on a step's end, give or take rounding, is sent at that end)
            due = self.origin + math.ceil((due - self.origin) / self.step - 1e-9) * self.step
        stream.due = due
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, stream))

    def _arm(self, deadline: float) -> None:
        self.armed = deadline
        if self.timerfd is not None:
            self.timerfd.arm(deadline)
        else:
            if self.handle is not None:
                self.handle.cancel()
            # call_at wakes up to 1 ms late (epoll's timeout is in ms): aim half of that early.
            self.handle = self.loop.call_at(deadline - 0.0005 - clock() + self.loop.time(), self._run_due)

    def _on_timerfd(self) -> None:
        assert self.timerfd is not None
        self.timerfd.drain()
        self._run_due()

    def _run_due(self) -> None:
        heap, slack = self.heap, (5e-6 if self.timerfd is not None else 0.0005)
        self.armed = float("inf")
        horizon = clock() + slack
        while heap and heap[0][0] <= horizon:
            _, _, stream = heapq.heappop(heap)
            if not stream.dead and stream.emit():
                self._push(stream)
            if heap and heap[0][0] > horizon:
                horizon = clock() + slack
        if heap:
            self._arm(heap[0][0])


class Server:
    def __init__(self, options: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> None:
        self.o = options
        self.started = clock()
        self.scheduler = Scheduler(loop, options.step_ms / 1e3)
        self.requests: list[dict[str, Any]] = []
        self.generation_tokens = self.prompt_tokens = self.running = self.succeeded = 0
        models = {"object": "list", "data": [{"id": options.model, "object": "model", "owned_by": "kitt-sim"}]}
        self.models = _response("200 OK", json.dumps(models).encode())
        self.vocabulary = Vocabulary()
        config = serving_config(options)
        # None when nothing is modelled: then every request starts at its arrival, as before.
        self.model = ServingModel(config) if config.active else None

    def ready(self) -> bool:
        return not self.o.never_ready and clock() - self.started >= self.o.startup_delay

    def begin(self, stream: Stream, start: float) -> None:
        """``stream`` takes a slot at ``start``: its first event is due a TTFT (and a prefill) later."""
        self.prompt_tokens += stream.prompt_tokens
        request = stream.request
        if request is None:
            stream.deadline = start + stream.ttft
        else:
            prefill = self.model.begin(request, start) * stream.speed  # type: ignore[union-attr]
            stream.deadline = start + stream.ttft + prefill
            log = stream.log
            log["start"] = start
            log["queue_ms"] = (start - request.arrival) * 1e3
            log["cached_tokens"] = request.cached
            log["prefill_ms"] = prefill * 1e3
            if self.o.enable_prompt_tokens_details:
                stream.details = b',"prompt_tokens_details":{"cached_tokens":%d}' % request.cached
        if not stream.held:
            self.scheduler.add(stream)

    def finish(self, stream: Stream) -> None:
        """``stream`` sent its last token (at its due time, in the plan): its slot frees."""
        self.succeeded += 1
        self.release(stream, stream.due)

    def release(self, stream: Stream, now: float) -> None:
        if stream.request is None:
            self.running -= 1
            return
        for request in self.model.release(stream.request):  # type: ignore[union-attr]
            self.begin(request.owner, now)

    def abort(self, stream: Stream) -> None:
        """``stream``'s client went away: a running request frees its slot, a waiting one leaves the queue."""
        stream.dead = True
        stream.log["aborted"] = True
        if stream.request is not None and stream.request.start is None:
            self.model.withdraw(stream.request)  # type: ignore[union-attr]
        else:
            self.release(stream, clock())

    def metrics(self) -> bytes:
        """vLLM's counters, names and labels, so the scrape that reads vLLM reads the sim."""
        label = '{engine="0",model_name="%s"}' % self.o.model
        model = self.model
        cache = model.cache if model is not None else None
        values = (
            ("num_requests_running", "gauge", model.running if model is not None else self.running, label),
            ("num_requests_waiting", "gauge", len(model.waiting) if model is not None else 0, label),
            ("prompt_tokens_total", "counter", self.prompt_tokens, label),
            ("generation_tokens_total", "counter", self.generation_tokens, label),
            (
                "request_success_total",
                "counter",
                self.succeeded,
                '{engine="0",finished_reason="length",model_name="%s"}' % self.o.model,
            ),
            ("prefix_cache_queries_total", "counter", cache.queries if cache is not None else 0, label),
            ("prefix_cache_hits_total", "counter", cache.hits if cache is not None else 0, label),
        )
        lines = []
        for name, kind, value, labels in values:
            lines.append(f"# TYPE vllm:{name} {kind}")
            lines.append(f"vllm:{name}{labels} {float(value)!r}")
        return ("\n".join(lines) + "\n").encode()

    def log_payload(self) -> dict[str, Any]:
        return {
            "clock": "time.perf_counter (CLOCK_MONOTONIC on Linux), seconds",
            "settings": {k: v for k, v in vars(self.o).items() if k != "log"},
            "timer": "timerfd" if self.scheduler.timerfd is not None else "call_at",
            "step_origin": self.scheduler.origin,  # with --step-ms, decode steps end at origin + k * step
            "requests": self.requests,
        }


def serving_config(options: argparse.Namespace) -> ServingConfig:
    return ServingConfig(
        max_num_seqs=options.max_num_seqs,
        prefill_ms_per_token=options.prefill_ms_per_token,
        itl_ms_per_seq=options.itl_ms_per_seq,
        block_size=options.block_size,
        kv_cache_tokens=options.kv_cache_tokens,
        prefix_caching=options.enable_prefix_caching,
    )


class Connection:
    """One client connection: parses requests (keep-alive, one at a time) and answers them."""

    __slots__ = ("server", "transport", "buffer", "busy", "close_after", "stream")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = b""
        self.busy = self.close_after = False
        self.transport: RawSocket = None  # type: ignore[assignment]
        self.stream: Stream | None = None

    def data_received(self, data: bytes, now: float) -> None:
        self.buffer += data
        if not self.busy:
            self._next_request(now)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream is not None and not self.stream.dead:
            self.server.abort(self.stream)

    def finished(self) -> None:
        self.busy, self.stream = False, None
        if self.close_after:
            self.transport.close()
        elif self.buffer:
            self._next_request(clock())

    def _reply(self, reply: bytes) -> None:
        self.transport.write(reply)
        self.busy = True
        self.finished()

    def _next_request(self, arrival: float) -> None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = buffer[:end].decode("latin-1").split("\r\n")
        try:
            method, path, version = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
            length = int(headers.get("content-length", "0"))
        except ValueError:
            self.transport.write(_response("400 Bad Request", b'{"error":"malformed request"}', close=True))
            self.transport.close()
            return
        if len(buffer) < end + 4 + length:
            return
        body = buffer[end + 4 : end + 4 + length]
        self.buffer = buffer[end + 4 + length :]
        self.close_after = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        path = path.split("?", 1)[0]
        server = self.server
        if server.o.api_key and path != "/health" and headers.get("authorization") != f"Bearer {server.o.api_key}":
            self._reply(
                _response("401 Unauthorized", b'{"error":{"message":"invalid API key"}}', close=self.close_after)
            )
        elif method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            self._generate(arrival, path.endswith("chat/completions"), body)
        elif method == "POST" and path in ("/tokenize", "/detokenize") and not server.o.no_tokenize:
            self._tokens(path == "/tokenize", body)
        elif method == "GET" and path == "/health":
            ready = server.ready()
            self._reply(
                _response(
                    "200 OK" if ready else "503 Service Unavailable",
                    b"ok" if ready else b"loading",
                    b"text/plain",
                    self.close_after,
                )
            )
        elif method == "GET" and path == "/v1/models":
            self._reply(server.models)
        elif method == "GET" and path == "/metrics":
            self._reply(_response("200 OK", server.metrics(), b"text/plain; version=0.0.4", self.close_after))
        else:
            self._reply(_response("404 Not Found", b'{"error":"not found"}', close=self.close_after))

    def _tokens(self, tokenize: bool, raw: bytes) -> None:
        """vLLM's ``POST /tokenize`` (a prompt, or chat messages) and ``POST /detokenize``."""
        vocabulary, o = self.server.vocabulary, self.server.o
        try:
            body = json.loads(raw)
            if not tokenize:
                answer: dict[str, Any] = {"prompt": " ".join(vocabulary.decode(body["tokens"]))}
            else:
                if "messages" in body:
                    words = chat_words(body["messages"], bool(body.get("add_generation_prompt", True)))
                elif isinstance(body.get("prompt"), str):
                    words = body["prompt"].split()
                else:
                    raise TypeError("no prompt")
                answer = {
                    "count": len(words),
                    "max_model_len": o.max_model_len,
                    "tokens": vocabulary.encode(words),
                    "token_strs": words if body.get("return_token_strs") else None,
                }
        except UnknownToken as exc:
            self._reply(_bad_request(str(exc), "tokens", self.close_after))
            return
        except (
            ValueError,
            TypeError,
            AttributeError,
            KeyError,
            RecursionError,
        ):  # RecursionError: JSON nested too deep
            what = "a prompt string or chat messages" if tokenize else "a list of token ids"
            self._reply(_bad_request(f"the body must be JSON with {what}", None, self.close_after))
            return
        self._reply(_response("200 OK", json.dumps(answer).encode(), close=self.close_after))

    def _generate(self, arrival: float, chat: bool, raw: bytes) -> None:
        server, o = self.server, self.server.o
        try:
            body = json.loads(raw)
            tokens = max(int(body.get("max_tokens") or body.get("max_completion_tokens") or 16), 1)
            ttft_ms = float(body.get("ref_ttft_ms", o.ttft_ms))
            itl_ms = float(body.get("ref_itl_ms", o.itl_ms))
            per_event = max(int(body.get("ref_tokens_per_event", o.tokens_per_event)), 1)
            words: list[str] | None = None
            if chat:
                messages = body.get("messages") or []
                prompt_tokens = chat_token_count(messages)
                prompt = " ".join(message_text(m.get("content")) for m in messages)
            else:
                prompt = body.get("prompt", "")
                if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
                    prompt = prompt[0]  # a batch of one
                if isinstance(prompt, str):
                    words = prompt.split()
                elif isinstance(prompt, list) and all(type(t) is int for t in prompt):
                    words = server.vocabulary.decode(prompt)  # token ids
                    prompt = " ".join(words)
                else:
                    raise TypeError("prompt")
                prompt_tokens = len(words)
        except UnknownToken as exc:
            self._reply(_bad_request(str(exc), "prompt", self.close_after))
            return
        except (ValueError, TypeError, AttributeError, RecursionError):
            self.transport.write(_response("400 Bad Request", b'{"error":"bad JSON body"}', close=True))
            self.transport.close()
            return
        limit = o.max_model_len
        if prompt_tokens > limit:
            self._reply(
                _bad_request(
                    f"This model's maximum context length is {limit} tokens. However, your prompt contains "
                    f"{prompt_tokens} input tokens, which exceeds this limit even without any output tokens. "
                    "Please reduce the length of the input prompt.",
                    "input_tokens",
                    self.close_after,
                )
            )
            return
        if tokens > limit:
            self._reply(
                _bad_request(
                    f"max_tokens={tokens} cannot be greater than max_model_len={limit}. "
                    "Please request fewer output tokens.",
                    "max_tokens",
                    self.close_after,
                )
            )
            return
        tokens = max(min(tokens, limit - prompt_tokens), 1)  # vLLM shortens what does not fit
        rid = len(server.requests)
        rng = random.Random(f"{o.seed}:{rid}")
        speed = speed_factor(o, time.time())
        ttft_ms, itl_ms = ttft_ms * speed, itl_ms * speed
        ttft = lognormal(rng, ttft_ms, o.ttft_cv) / 1e3
        log: dict[str, Any] = {
            "rid": rid,
            "arrival": arrival,
            "prompt_head": prompt[:48],
            "chat": chat,
            "prompt_tokens": prompt_tokens,
            "start": arrival,
            "queue_ms": 0.0,
            "cached_tokens": 0,
            "prefill_ms": 0.0,
            "ttft_ms": ttft * 1e3,
            "itl_ms": itl_ms,
            "max_tokens": tokens,
            "events": [],
            "tokens": [],
            "end": None,
        }
        server.requests.append(log)
        if o.fail_every and (rid + 1) % o.fail_every == 0:
            self._reply(
                _response(
                    "500 Internal Server Error", b'{"error":{"message":"simulated failure"}}', close=self.close_after
                )
            )
            return
        model = server.model
        if model is None:

            def next_gap() -> float:
                return lognormal(rng, itl_ms, o.itl_cv) / 1e3
        else:
            per_seq_ms = model.config.itl_ms_per_seq * speed

            def next_gap() -> float:
                return lognormal(rng, itl_ms + per_seq_ms * model.running, o.itl_cv) / 1e3

        streaming = bool(body.get("stream"))
        stream = Stream(
            self,
            rid,
            chat,
            streaming,
            ttft,
            next_gap,
            per_event,
            tokens,
            prompt_tokens,
            body.get("stream_options") or {},
            log,
            speed,
        )
        server.generation_tokens += o.miscount
        self.busy, self.stream = True, stream
        if streaming and (o.stall or o.endless_line):
            stream.held = True  # it takes a slot, but no event is ever due
            if o.endless_line:
                self.transport.write(_SSE_HEAD + _chunk(b"data: "))
                self._endless(o.endless_line)
            # --stall: never a byte back
        elif streaming:
            self.transport.write(_SSE_HEAD + (stream.role_delta() if chat else b""))
        if model is None:
            server.running += 1
            server.begin(stream, arrival)
            return
        if model.cache is not None and words is None:
            words = chat_words(messages)
        stream.request = Request(arrival, prompt_tokens, model.keys(words or ()), stream)
        if model.arrive(stream.request):
            server.begin(stream, arrival)

    def _endless(self, left: int) -> None:
        """--endless-line: 1 MiB more of one SSE line whenever the socket has room, ``left`` times, then close."""
        transport = self.transport
        if transport.closed or left <= 0:
            transport.close()
            return
        if not transport.unsent:
            transport.write(_chunk(b"x" * 2**20))
            left -= 1
        asyncio.get_running_loop().call_later(0.001, self._endless, left)


def _finite(text: str) -> float:
    """A float option: a finite number (NaN or infinity would poison every delay the sim draws)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parse_args(argv: list[str] | None = None, **defaults: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kitt.engines.simserver", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sim-model")
    # vLLM's name for it: with it the sim takes vLLM's server arguments, so an image with the sim
    # inside stands in for vLLM's image (the Podman tests of Docker mode).
    parser.add_argument("--served-model-name", help="the name requests use (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--ttft-ms", type=_finite, default=40.0, help="mean time from arrival to the first event")
    parser.add_argument("--ttft-cv", type=_finite, default=0.05, help="coefficient of variation of TTFT (0: exact)")
    parser.add_argument("--itl-ms", type=_finite, default=8.0, help="mean gap between consecutive events")
    parser.add_argument("--itl-cv", type=_finite, default=0.05, help="coefficient of variation of each gap (0: exact)")
    parser.add_argument("--tokens-per-event", type=int, default=1, help="tokens carried by each SSE event")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-model-len",
        type=int,
        default=32768,
        help="longest prompt plus output, in tokens (words); a longer prompt gets vLLM's HTTP 400",
    )
    parser.add_argument("--startup-delay", type=_finite, default=0.0, help="seconds before /health answers 200")
    parser.add_argument("--never-ready", action="store_true", help="/health never answers 200")
    parser.add_argument("--die-after", type=int, default=0, help="exit abruptly during request N+1")
    parser.add_argument("--fail-every", type=int, default=0, help="answer every Nth request with HTTP 500")
    parser.add_argument("--miscount", type=int, default=0, help="/metrics over-counts N tokens per request")
    parser.add_argument(
        "--no-tokenize",
        action="store_true",
        help="no /tokenize or /detokenize (404), like an OpenAI-compatible endpoint without them",
    )
    model = parser.add_argument_group(
        "serving model",
        "what a serving engine does under load (see kitt/engines/simmodel.py); all off by default, "
        "which keeps the exact schedule of --ttft-ms and --itl-ms",
    )
    model.add_argument(
        "--max-num-seqs",
        type=int,
        default=0,
        help="at most N requests run at once, later ones queue in arrival order (0: no limit)",
    )
    model.add_argument(
        "--prefill-ms-per-token",
        type=_finite,
        default=0.0,
        help="added to TTFT for each prompt token not served from the prefix cache",
    )
    model.add_argument(
        "--itl-ms-per-seq", type=_finite, default=0.0, help="added to each gap between events per running request"
    )
    model.add_argument(
        "--step-ms",
        type=_finite,
        default=0.0,
        help="send events at the ends of decode steps this long, as a batching engine sends a step's "
        "tokens together; each event waits for the end of the step it falls in (0: at its own time)",
    )
    model.add_argument(
        "--kv-cache-tokens",
        type=int,
        default=0,
        help="the prefix cache's budget in tokens, least recently used blocks evicted (0: no cache)",
    )
    model.add_argument("--block-size", type=int, default=16, help="tokens per prefix-cache block")
    model.add_argument(
        "--enable-prefix-caching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="cache prompt prefixes within --kv-cache-tokens (vLLM's flag)",
    )
    model.add_argument(
        "--enable-prompt-tokens-details",
        action="store_true",
        help="report usage.prompt_tokens_details.cached_tokens, as vLLM does with this flag",
    )
    model.add_argument(
        "--no-serving-model",
        action="store_true",
        help="turn every part of the serving model off, whatever the flags before it say",
    )
    parser.add_argument("--log", help="write the truth log here (JSON) on SIGTERM/SIGINT")
    parser.add_argument("--backlog", type=int, default=1024)
    parser.add_argument("--api-key", help="require Authorization: Bearer KEY on everything but /health")
    parser.add_argument("--stall", action="store_true", help="never answer a streaming request")
    parser.add_argument(
        "--withhold-text",
        type=int,
        default=0,
        metavar="N",
        help="every Nth stream's events carry no text, its usage still counts the tokens",
    )
    parser.add_argument(
        "--usage-completion",
        metavar="JSON",
        help='send this JSON value as every stream\'s usage.completion_tokens (e.g. -5, "32", 1e9)',
    )
    parser.add_argument(
        "--endless-line",
        type=int,
        default=0,
        metavar="MB",
        help="answer a streaming request with one SSE line of MB MiB and no newline",
    )
    parser.add_argument(
        "--slowdown",
        type=_finite,
        default=1.0,
        help="multiply every TTFT and gap by this factor (an A/B arm made slower, say 1.1)",
    )
    parser.add_argument(
        "--drift-pct",
        type=_finite,
        default=0.0,
        help="a slow drift of the whole server's speed: TTFT and gaps scaled by "
        "1 + P/100 * sin(2 pi * wall-clock time / period), the same for every sim on the host",
    )
    parser.add_argument("--drift-period-s", type=_finite, default=60.0, help="the drift's period in seconds")
    parser.set_defaults(**defaults)
    options = parser.parse_args(argv)
    options.model = options.served_model_name or options.model
    if options.no_serving_model:
        options.max_num_seqs = options.kv_cache_tokens = 0
        options.prefill_ms_per_token = options.itl_ms_per_seq = options.step_ms = 0.0
    if (
        options.max_num_seqs < 0
        or options.prefill_ms_per_token < 0
        or options.itl_ms_per_seq < 0
        or options.step_ms < 0
        or options.kv_cache_tokens < 0
        or options.block_size < 1
    ):
        parser.error(
            "--max-num-seqs, --prefill-ms-per-token, --itl-ms-per-seq, --step-ms and --kv-cache-tokens must be at "
            "least 0, --block-size at least 1"
        )
    if options.ttft_cv < 0 or options.itl_cv < 0 or not 0 <= options.port <= 65535:
        parser.error("--ttft-cv and --itl-cv must be at least 0, --port from 0 to 65535")
    if options.ttft_ms <= 0 or options.itl_ms <= 0 or options.tokens_per_event < 1 or options.max_model_len < 1:
        parser.error("--ttft-ms and --itl-ms must be greater than 0, --tokens-per-event and --max-model-len at least 1")
    if not (options.slowdown > 0 and 0 <= options.drift_pct < 100 and options.drift_period_s > 0):
        parser.error("--slowdown and --drift-period-s must be greater than 0, --drift-pct from 0 to under 100")
    return options


async def serve(options: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    server = Server(options, loop)
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    listener = socket.create_server((options.host, options.port), family=family, backlog=options.backlog)
    listener.setblocking(False)

    def accept() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:  # nothing pending, or e.g. EMFILE: try again on the next wake-up
                return
            conn = Connection(server)
            conn.transport = RawSocket(loop, sock, conn)

    loop.add_reader(listener.fileno(), accept)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    port = listener.getsockname()[1]
    modelled = ""
    if server.model is not None:
        config = server.model.config
        modelled = (
            f"; {config.max_num_seqs or 'unlimited'} slots, prefill {config.prefill_ms_per_token:g} ms/token, "
            f"+{config.itl_ms_per_seq:g} ms ITL per running request, prefix cache "
            + (f"{config.kv_cache_tokens} tokens" if config.caching else "off")
        )
    if options.step_ms:
        modelled += f"; events at the ends of {options.step_ms:g} ms decode steps"
    print(
        f"listening {port} (kitt sim: {options.model} on http://{options.host}:{port}, "
        f"TTFT {options.ttft_ms:g} ms, ITL {options.itl_ms:g} ms{modelled})",
        flush=True,
    )
    await stop.wait()
    loop.remove_reader(listener.fileno())
    listener.close()
    if options.log:
        with open(options.log, "w", encoding="utf-8") as handle:
            json.dump(server.log_payload(), handle)


def main(argv: list[str] | None = None, **defaults: Any) -> None:
    asyncio.run(serve(parse_args(argv, **defaults)))


if __name__ == "__main__":
    main()
