"""One engine under test: start it, warm it up, measure repeats on it, write its result set.

A plain ``kitt run`` has one :class:`Arm`; an A/B run has two (``kitt.run`` schedules them).
Around each repeat the engine's Prometheus counters are scraped and the GPUs sampled; whatever
was measured before a failure is still written (samples.jsonl keeps every finished request, and
metrics.json records the failure with ``passed: false``).
"""

from __future__ import annotations

import asyncio
import resource
import threading
import time
from pathlib import Path
from typing import Any

from kitt import __version__
from kitt import results as rs
from kitt import capacity, telemetry
from kitt.bench.loadgen import Progress, Target, run_level
from kitt.bench.records import RequestRecord
from kitt.workload import arrivals, identity, plan, prefixes, sessions, tokens, traces
from kitt.workload.spec import Session
from kitt.config import Level, RunConfig, TestSpec, suite_to_dict
from kitt.engines import choose_mode, create_runner, get_engine
from kitt.engines.base import EngineSpec, Runner, ServerHandle
from kitt.engines.readiness import wait_until_ready
from kitt.engines.tokenize import engine_tokenizer
from kitt.errors import BenchmarkError, EngineDied, EngineNotReady
from kitt.progress import Reporter
from kitt.provenance import source_revision
from kitt.redact import redact_url
from kitt.repeat_result import build_result

COUNTER_SETTLE_SECONDS = 3.0


class _EngineWatch:
    """Polls the engine from a thread (docker inspect takes milliseconds; the event loop must not)."""

    def __init__(self, runner: Runner, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self.runner, self.loop, self.task = runner, loop, task
        self.status: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kitt-engine-watch", daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.25):
            status = self.runner.exit_status()
            if status is not None:
                self.status = status
                self.loop.call_soon_threadsafe(self.task.cancel)
                return

    def __enter__(self) -> "_EngineWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Arm:
    """One engine under test and everything measured on it: its own result set in ``out``.

    A plain run has one arm. An A/B run has two, ``baseline`` and ``candidate``, that differ
    only in what the baseline arm's options change (image, arguments, model or endpoint).
    """

    def __init__(self, name: str | None, config: RunConfig, out: Path, run_id: str, reporter: Reporter) -> None:
        self.name, self.config, self.out, self.run_id, self.reporter = name, config, out, run_id, reporter
        self.spec: EngineSpec = get_engine(config.engine)
        self.mode = choose_mode(self.spec, native=config.native, endpoint=config.endpoint)
        self.suite = config.suite
        self.api = self.suite.api or self.spec.api
        self.label = f"{name} arm" if name else self.spec.name
        self.records: list[RequestRecord] = []
        self.results: list[rs.TestResult] = []
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.curves: list[dict[str, Any]] = []  # capacity searches: every probed level (kitt.capacity)
        self.positions: dict[str, list[int]] = {}  # A/B: per test, this arm's place in each pair (0 first)
        # repeats auto against a history (one arm): the record kitt.run keeps, written as config.json's repeats_auto
        self.repeats_auto: dict[str, Any] | None = None
        self.handle: ServerHandle | None = None
        self.startups: list[dict[str, Any]] = []  # one per engine start (ABBA blocks start the baseline twice)
        self._written = 0
        self.counter: tokens.Counter | None = None  # how prompt lengths are made exact; None: approximate
        self.sent: dict[str, dict[str, Any]] = {}  # per test: the lengths its measured requests asked for
        self.requested_input: dict[tuple[str, int, int], int] = {}  # (level, run, index) -> prompt length asked
        self.prefix_texts: dict[str, list[str]] = {}  # per test with a prefix: its shared prefixes, fitted once
        self._sources: set[str] = set()  # the notes already given on where the cache metrics came from

    def prepare(self, nvml: Any, gpu_note: str | None, hw: dict[str, Any]) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.hw = hw
        rs.write_json(self.out / rs.HARDWARE_FILE, hw)
        self.runner = create_runner(
            self.spec,
            mode=self.mode,
            model=self.config.model,
            port=self.config.port,
            extra_args=self.config.engine_args,
            image=self.config.engine_image,
            endpoint=self.config.endpoint,
            run_id=self.run_id,
            log_path=self.out / "engine.log",
            container_cli=self.config.container_cli,
            gpus=self.config.gpus,
            engine_cache=self.config.engine_cache,
        )
        self.samples = rs.SamplesWriter(self.out / rs.SAMPLES_FILE)
        self.sampler = telemetry.GpuSampler(nvml, gpu_note)
        if gpu_note:
            self.notes.append(gpu_note)

    # ------------------------------------------------------------------ engine

    def start(self, started_at: str, ab: dict[str, Any] | None) -> None:
        if self.mode in ("docker", "native"):
            self.reporter.line(
                f"Starting {self.spec.name} in {self.mode} mode for {self.config.model}"
                + (f" ({self.label})" if self.name else "")
            )
        began = time.monotonic()
        handle = self.runner.start()
        launched = time.monotonic()
        timeout = self.ready_timeout()
        proxy = self.config.net.proxy_for(handle.base_url)
        if proxy is not None:
            self._note(
                f"requests to {redact_url(handle.base_url)} go through the proxy {proxy.url} "
                "(from the environment; NO_PROXY bypasses it): its latency is in every figure"
            )
        stages: list[tuple[str, float]] = []

        def on_stage(stage: str) -> None:
            stages.append((stage, time.monotonic()))
            self.reporter.line(f"  waiting for {stage}")

        try:
            wait_until_ready(
                self.runner,
                handle,
                api=self.api,
                timeout=timeout,
                net=self.config.net,
                on_stage=on_stage,
                endpoint_flag="--baseline-endpoint" if self.name == "baseline" else "--endpoint",
            )
        except EngineNotReady as exc:
            if not self.name:
                raise
            raise EngineNotReady(f"the {self.label}: {exc.message}", hint=exc.hint, log_tail=exc.log_tail) from None
        self.handle = handle
        self._record_startup(handle, began, launched, stages)
        self.reporter.line(
            f"{self.spec.name} is ready at {redact_url(handle.base_url)}" + (f" ({self.label})" if self.name else "")
        )
        self.counter = self._counter(handle)
        self.write_config(started_at, ab)

    def _record_startup(
        self, handle: ServerHandle, began: float, launched: float, stages: list[tuple[str, float]]
    ) -> None:
        """The engine's start-up, from launch to ready: what the runner timed (pull, start), the
        readiness wait, and each readiness stage, for config.json and the summary's notes."""
        ready = time.monotonic()
        marks = [at for _, at in stages] + [ready]
        record: dict[str, Any] = {
            "mode": self.mode,
            "total_s": round(ready - began, 3),
            **handle.startup,
            "launch_s": round(launched - began, 3),
            "ready_s": round(ready - launched, 3),
            "stages": {stage: round(marks[i + 1] - at, 3) for i, (stage, at) in enumerate(stages)},
        }
        self.startups.append(record)
        parts = [f"{key[:-2]} {record[key]:.1f} s" for key in ("pull_s", "start_s") if key in record]
        parts.append(f"readiness {record['ready_s']:.1f} s")
        self.notes.append(
            f"Engine start-up{' of the ' + self.label if self.name else ''}: {record['total_s']:.1f} s "
            f"({', '.join(parts)})."
        )

    def _counter(self, handle: ServerHandle) -> tokens.Counter | None:
        """The engine's /tokenize, else the model's local tokenizer.json (completions only), else None."""
        counter: tokens.Counter | None = engine_tokenizer(
            self.spec, handle.base_url, handle.served_model, self.api, self.config.net
        )
        if counter is not None:
            try:
                counter.count(["kitt"])  # one call: an engine build without /tokenize falls back, and says so
            except BenchmarkError as exc:
                self._note(f"prompt lengths are approximate: {exc.message}")
                counter = None
        if counter is None and self.api != "chat":
            counter = tokens.LocalTokenizer.for_model(self.config.model)
        return counter

    @property
    def length_method(self) -> str:
        if self.counter is not None:
            return self.counter.method
        return tokens.APPROXIMATE

    def ready_timeout(self) -> float:
        return ready_timeout(self.config.ready_timeout, self.mode)

    def stop(self) -> None:
        self.reporter.line(f"Stopping {self.spec.name} ({self.mode})" + (f", {self.label}" if self.name else ""))
        self.runner.stop()

    def _target(self, requests: list[Any]) -> Target:
        """Where the requests go; the request timeout is --request-timeout, else derived from the longest output."""
        assert self.handle is not None
        timeout = self.config.net.timeout_for(max((r.max_tokens for r in requests), default=1))
        extra = dict(self.spec.exact_length_fields or {})
        return Target(
            base_url=self.handle.base_url,
            model=self.handle.served_model,
            api=self.api,
            stream_options=dict(self.spec.stream_options),
            extra_body=extra,
            net=self.config.net,
            request_timeout=timeout,
        )

    # ------------------------------------------------------------------ measuring

    def warm_up(self, test: TestSpec, level: Level) -> None:
        if not self.suite.warmup:
            return
        name = test.test_name(level)
        fitted, conversations = self._requests(test, self.suite.warmup, name, 0)
        warm = [s.turns[0] for s in conversations] if conversations is not None else fitted.requests
        warm_level = level if level.kind == "concurrency" else Level("concurrency", min(4, len(warm)))
        self._measure(warm, warm_level, name, 0, conversations=conversations)
        self.flush_samples()

    def repeat(self, test: TestSpec, level: Level, run_number: int, position: int | None = None) -> None:
        """One measured repeat; ``position`` is this arm's place in its A/B pair."""
        name = test.test_name(level)
        if test.capacity is not None:
            self.capacity_repeat(test, run_number, position)
            return
        schedule = None
        count = test.num_requests
        if level.kind == "rate":
            # The same key as kitt has always drawn Poisson gaps from, so stored runs stay comparable.
            schedule = arrivals.schedule(
                test.arrival, level.value, count, f"{self.suite.seed}:{name}:{run_number}:arrivals", test.duration_s
            )
            count = len(schedule)  # a time-boxed level builds only the requests that can arrive
        elif level.kind == "trace":
            assert test.trace is not None
            schedule = test.trace.offsets(count, test.duration_s)  # the trace's timestamps over its speedup
            count = len(schedule)
        fitted, conversations = self._requests(test, count, name, run_number)
        requests = fitted.requests
        self._account(test, name, run_number, fitted)
        if conversations is not None:
            requests = [s.turns[0] for s in conversations]  # each opens its session
        before = self._scrape()
        # The client's CPU share is its CPU time over the wall time of the same window (not the
        # level's duration, which starts later: bodies are encoded and streams connected first).
        cpu_before, wall_before = _cpu_seconds(), time.perf_counter()
        self.sampler.start()
        try:
            start, end, records = self._measure(
                requests, level, name, run_number, schedule, test.duration_s, conversations
            )
        finally:
            self.sampler.stop()
            self.flush_samples()
        cpu, window = _cpu_seconds() - cpu_before, time.perf_counter() - wall_before
        after = self._scrape()
        result = self._result(name, run_number, level, records, end - start, (cpu, window), before, after)
        self.results.append(result)
        if position is not None:
            self.positions.setdefault(name, []).append(position)
        self.reporter.line(_one_line(result) + (f" ({self.label})" if self.name else ""))
        if not result.passed:
            self.failures.append(
                f"{name} run {run_number}{' of the ' + self.label if self.name else ''}: {result.errors[0]}"
            )

    def capacity_repeat(self, test: TestSpec, run_number: int, position: int | None = None) -> None:
        """One repeat of a capacity test: a search over the test's load (kitt.capacity)."""
        assert test.capacity is not None
        result, curve = capacity.search(self, test, run_number, self.suite.max_error_rate)
        self.results.append(result)
        self.curves.append(
            {
                "test_name": result.test_name,
                "run_number": run_number,
                "over": test.capacity.over,
                "slo": dict(test.capacity.slo),
                "probes": [p.to_dict() for p in curve],
            }
        )
        if position is not None:
            self.positions.setdefault(result.test_name, []).append(position)
        self.reporter.line(
            f"  run {run_number}: "
            + capacity.describe(test.capacity, result.metrics)
            + (f" ({self.label})" if self.name else "")
        )

    def probe(self, test: TestSpec, level: Level, run_number: int, tag: str) -> dict[str, float | None]:
        """One level of a capacity search: the test's workload built as for any level (lengths, mix,
        dataset, exact tokenization), measured like a repeat, kept only in the search's curve."""
        name = test.test_name(Level("capacity", 0))
        schedule = None
        count = test.num_requests
        if level.kind == "rate":
            schedule = capacity.probe_schedule(test, level.value, self.suite.seed, name, run_number)
            count = len(schedule)
        # Fresh prompts per probe (its own salt): a re-measure must not hit the prompts' prefix cache.
        fitted, _ = self._requests(test, count, f"{name}.{level.label}.{tag}", run_number)  # no turns with capacity
        self._account(test, name, run_number, fitted)
        cpu_before, wall_before = _cpu_seconds(), time.perf_counter()
        try:
            start, end, records = self._measure(fitted.requests, level, name, run_number, schedule, test.duration_s)
        finally:
            self.flush_samples()
        cpu = (_cpu_seconds() - cpu_before, time.perf_counter() - wall_before)
        return self._result(name, run_number, level, records, end - start, cpu, None, None).metrics

    def _requests(
        self, test: TestSpec, count: int, name: str, run_number: int
    ) -> tuple[tokens.Fitted, list[Session] | None]:
        """The level's requests (run 0: the warm-up), built and with a tokenizer fitted to exact lengths
        before its clock starts; the same for both arms of an A/B run that share a tokenizer. A
        multi-turn test's are its sessions' turns (``count`` sessions), also returned as sessions."""
        salt = f"{name}:warmup" if run_number == 0 else f"{name}:{run_number}"
        counter = self.counter
        answers = counter.count if counter is not None and self.api != "chat" else None
        counts = None
        try:
            if test.trace is not None:
                return traces.build_requests(test.trace, count, self.suite.seed, salt, counter), None
            if test.turns is not None:
                requests, counts = plan.build_sessions(
                    count,
                    test.turns,
                    input_len=test.input_len,
                    output_len=test.output_len,
                    mix=test.mix,
                    dataset=test.dataset,
                    seed=self.suite.seed,
                    salt=salt,
                    count_tokens=answers,
                    prefix=test.prefix,
                    prefix_texts=self._prefixes(test),
                )
            else:
                requests = plan.build_level(
                    count,
                    input_len=test.input_len,
                    output_len=test.output_len,
                    mix=test.mix,
                    dataset=test.dataset,
                    seed=self.suite.seed,
                    salt=salt,
                    count_tokens=answers,
                    prefix=test.prefix,
                    prefix_texts=self._prefixes(test),
                )
            if counter is None:
                fitted = tokens.Fitted(requests)
            else:
                fitted = tokens.fit(requests, counter, self.suite.seed, salt, synthetic=test.dataset is None)
            if test.turns is None or counts is None:
                return fitted, None
            return fitted, sessions.group(requests, fitted.requests, counts, test.turns, self.suite.seed, salt)
        except BenchmarkError:
            # The tokenizer stopped answering: if the engine died, say that, as a level would.
            deadline = time.monotonic() + 2.0
            while (status := self.runner.exit_status()) is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if status is not None:
                raise self._died(status, self._phase(name, run_number)) from None
            raise

    def _prefixes(self, test: TestSpec) -> list[str] | None:
        """The test's shared prefixes, built and fitted to their length once (the same for every
        level, repeat and warm-up, so the engine's cache can hold them)."""
        if test.prefix is None:
            return None
        if test.name not in self.prefix_texts:
            specs = prefixes.build_prefixes(test.prefix, self.suite.seed, test.name)
            if self.counter is not None:
                fitted = tokens.fit(specs, self.counter, self.suite.seed, f"{test.name}:prefixes", synthetic=True)
                specs = fitted.requests
                if fitted.inexact:
                    self._note(
                        f"{test.name}: {fitted.inexact} of {len(specs)} shared prefixes are not exactly "
                        f"{test.prefix.length} tokens (no word sequence hits it with this tokenizer)"
                    )
            self.prefix_texts[test.name] = [spec.prompt for spec in specs]
        return self.prefix_texts[test.name]

    def _phase(self, name: str, run_number: int) -> str:
        phase = f"{name} " + ("warm-up" if run_number == 0 else f"run {run_number}")
        return phase + (f" of the {self.label}" if self.name else "")

    def _died(self, status: int, phase: str) -> EngineDied:
        return EngineDied(
            f"{self.spec.name} exited with status {status} during {phase}",
            hint="See the engine log; the samples measured so far are kept.",
            log_tail=self.runner.log_tail(50),
        )

    def _account(self, test: TestSpec, name: str, run_number: int, fitted: tokens.Fitted) -> None:
        """Remember what a measured repeat asked for: the report's line of what was sent."""
        sent = self.sent.setdefault(test.name, {"inputs": [], "outputs": [], "skipped": 0, "inexact": 0})
        for spec in fitted.requests:
            self.requested_input[(name, run_number, spec.index)] = spec.input_len
            if spec.input_len:
                sent["inputs"].append(spec.input_len)
            sent["outputs"].append(spec.max_tokens)
        sent["skipped"] += fitted.skipped
        sent["inexact"] += fitted.inexact
        if fitted.skipped:
            limit = self.counter.max_model_len if self.counter else None
            self._note(
                f"{name} run {run_number}: {fitted.skipped} dataset prompts were skipped: with their output "
                f"they do not fit the engine's context ({limit} tokens)"
            )

    def _measure(
        self,
        requests: list[Any],
        level: Level,
        name: str,
        run_number: int,
        schedule: list[float] | None = None,
        duration: float | None = None,
        conversations: list[Session] | None = None,
    ) -> tuple[float, float, list[RequestRecord]]:
        first = len(self.records)
        progress = Progress()
        phase = self._phase(name, run_number)

        def died(status: int) -> EngineDied:
            return self._died(status, phase)

        async def measured() -> tuple[float, float]:
            task = asyncio.current_task()
            assert task is not None
            with _EngineWatch(self.runner, asyncio.get_running_loop(), task) as watch:
                try:
                    return await run_level(
                        self._target(requests),
                        requests,
                        level,
                        test_name=name,
                        run_number=run_number,
                        sink=self.records,
                        progress=progress,
                        schedule=schedule,
                        duration=duration,
                        sessions=conversations,
                        max_model_len=self.counter.max_model_len if self.counter else None,
                    )
                except asyncio.CancelledError:
                    if watch.status is not None:
                        raise died(watch.status) from None
                    raise

        label = f"{name} " + ("warm-up" if run_number == 0 else f"run {run_number}/{self.suite.repeats}")
        with self.reporter.track(label + (f" ({self.label})" if self.name else ""), progress):
            start, end = asyncio.run(measured())
        # Requests to a dead engine fail fast, so the level can end before the watch looks.
        status = self.runner.exit_status()
        if status is not None:
            raise died(status)
        return start, end, self.records[first:]

    # ------------------------------------------------------------------ results

    def _result(
        self,
        name: str,
        run_number: int,
        level: Level,
        records: list[RequestRecord],
        duration: float,
        cpu: tuple[float, float],
        before: dict[str, float] | None,
        after: dict[str, float] | None,
    ) -> rs.TestResult:
        """The repeat's result (``kitt.repeat_result``), once the engine's counters have caught up."""
        server_tokens = telemetry.counter_delta(before, after, self.spec.generation_tokens_metric)
        client_tokens = sum(r.output_tokens for r in records)
        if server_tokens is not None and server_tokens != client_tokens:
            after = self._settle(before, client_tokens) or after
        test = name.rsplit("-", 1)[0]
        built = build_result(
            name,
            run_number,
            level,
            records,
            duration=duration,
            cpu=cpu,
            before=before,
            after=after,
            spec=self.spec,
            suite=self.suite,
            gpu_summary=self.sampler.summary,
            prefixed=any(t.prefix for t in self.suite.tests if t.name == test),
        )
        for key, text in built.sources.items():
            self._source(key, text)
        for text in built.warnings:
            self._note(text)
        return built.result

    def _source(self, key: str, text: str) -> None:
        if key not in self._sources:
            self._sources.add(key)
            self.notes.append(text + ".")

    def _note(self, text: str) -> None:
        self.notes.append(text)
        self.reporter.warn(text)

    def _scrape(self) -> dict[str, float] | None:
        if not self.spec.metrics_path or self.handle is None:
            return None
        return telemetry.scrape(self.handle.base_url.rstrip("/") + self.spec.metrics_path, net=self.config.net)

    def _settle(self, before: dict[str, float] | None, expected: int) -> dict[str, float] | None:
        """Counters can trail the last response by a logging interval: scrape again for a moment."""
        deadline = time.monotonic() + COUNTER_SETTLE_SECONDS
        latest = None
        while time.monotonic() < deadline:
            time.sleep(0.2)
            latest = self._scrape()
            if telemetry.counter_delta(before, latest, self.spec.generation_tokens_metric) == expected:
                break
        return latest

    def flush_samples(self) -> None:
        if self._written < len(self.records):
            origin = self.records[0].scheduled if self.records else 0.0
            self.samples.write_many(r.to_sample(origin) for r in self.records[self._written :])
            self._written = len(self.records)

    def write_config(self, started_at: str, ab: dict[str, Any] | None) -> None:
        handle = self.handle
        config = {
            "kitt_version": __version__,
            "run_id": self.run_id,
            "started_at": started_at,
            "model": self.config.model,
            "served_model": handle.served_model if handle else None,
            "engine": self.spec.name,
            "mode": self.mode,
            "engine_image": (handle.image if handle else None)
            or (self.config.engine_image if self.mode == "docker" else None),
            "engine_image_digest": handle.image_digest if handle else None,
            "engine_args": list(self.config.engine_args),
            "server_command": handle.command if handle else [],
            "endpoint": redact_url(handle.base_url) if handle else None,
            "api": self.api,
            "stream_options": dict(self.spec.stream_options),
            "exact_output_len": self.spec.exact_length_fields is not None,
            "exact_length_fields": dict(self.spec.exact_length_fields or {}),
            "ready_timeout_s": self.ready_timeout(),
            "network": self.config.net.describe(handle.base_url if handle else self.config.endpoint or ""),
            "seed": self.suite.seed,
            "suite": suite_to_dict(self.suite),
            "workload": self._workload(),
            "hardware_fingerprint": self.hw.get("fingerprint"),
            "startup": list(self.startups),
            **source_revision(self.config.commit, self.config.branch),
        }
        if ab is not None:
            config["ab"] = {**ab, "arm": self.name, "positions": self.positions}
        if self.repeats_auto is not None:
            config["repeats_auto"] = self.repeats_auto
        rs.write_json(self.out / rs.CONFIG_FILE, config)

    def _workload(self) -> dict[str, Any]:
        """What was sent (kitt.workload.identity): without a tokenizer, the method says how far the
        lengths asked for were from what the server counted."""
        method = self.length_method
        if self.counter is None:
            counted = [
                (self.requested_input.get((r.test_name, r.run_number, r.index), 0), r.prompt_tokens)
                for r in self.records
                if r.run_number and r.ok and r.usage_from_server
            ]
            method = tokens.approximation([a for a, _ in counted], [c for _, c in counted])
        return identity.workload_record(suite_to_dict(self.suite), api=self.api, method=method, sent=self.sent)

    def finish(self, started_at: str, elapsed: float, ab: dict[str, Any] | None) -> None:
        """Write everything measured, whatever happened: samples, config and metrics (the run adds summary.md)."""
        self.flush_samples()
        self.samples.close()
        self.write_config(started_at, ab)
        passed = not self.failures and bool(self.results) and all(r.passed for r in self.results)
        document = rs.metrics_document(
            suite_name=self.suite.name,
            engine=self.spec.name,
            model=self.config.model,
            kitt_version=__version__,
            timestamp=started_at,
            total_time_seconds=elapsed,
            results=self.results,
            passed=passed,
            extra={
                "hardware_fingerprint": self.hw.get("fingerprint"),
                "notes": self.notes,
                "failures": self.failures,
                **({"capacity_curves": self.curves} if self.curves else {}),
            },
        )
        rs.write_json(self.out / rs.METRICS_FILE, document)


def ready_timeout(given: float | None, mode: str) -> float:
    """--ready-timeout as given, never capped; unset: 30 s for an endpoint (already running), else 900 s."""
    if given is not None:
        return given
    return 30.0 if mode == "endpoint" else 900.0


def _cpu_seconds() -> float:
    """kitt's whole process, every thread: the load generator's and the watch, sampler and progress
    threads beside it, which take CPU from the same cores while the level runs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one_line(result: rs.TestResult) -> str:
    m = result.metrics

    def fmt(key: str, unit: str = "ms") -> str:
        value = m.get(key)
        return "n/a" if value is None else f"{value:.1f}{unit}"

    status = "ok" if result.passed else "FAILED"
    return (
        f"  run {result.run_number}: {status} · {m.get('completed', 0):.0f} done, {m.get('failed', 0):.0f} failed"
        f" · TTFT p50 {fmt('median_ttft_ms')} · TPOT p50 {fmt('median_tpot_ms')}"
        f" · {fmt('output_throughput', ' tok/s')}"
    )
