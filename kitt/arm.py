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
from kitt.bench.metrics import compute_metrics
from kitt.bench.records import RequestRecord
from kitt.bench.workload import build_requests
from kitt.config import Level, RunConfig, TestSpec, suite_to_dict
from kitt.engines import choose_mode, create_runner, get_engine
from kitt.engines.base import EngineSpec, Runner, ServerHandle
from kitt.engines.readiness import wait_until_ready
from kitt.errors import EngineDied, EngineNotReady
from kitt.progress import Reporter
from kitt.provenance import source_revision

COUNTER_SETTLE_SECONDS = 3.0
CLIENT_SATURATION_PCT = 90.0


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
        self.handle: ServerHandle | None = None
        self._written = 0

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
        )
        self.samples = rs.SamplesWriter(self.out / rs.SAMPLES_FILE)
        self.sampler = telemetry.GpuSampler(nvml, gpu_note)
        if gpu_note:
            self.notes.append(gpu_note)

    # ------------------------------------------------------------------ engine

    def start(self, started_at: str, ab: dict[str, Any] | None) -> None:
        if self.mode in ("docker", "native"):
            self.reporter.line(f"Starting {self.spec.name} in {self.mode} mode for {self.config.model}"
                               + (f" ({self.label})" if self.name else ""))
        handle = self.runner.start()
        timeout = self.ready_timeout()
        proxy = self.config.net.proxy_for(handle.base_url)
        if proxy is not None:
            self._note(f"requests to {redact_url(handle.base_url)} go through the proxy {proxy.url} "
                       "(from the environment; NO_PROXY bypasses it): its latency is in every figure")
        try:
            wait_until_ready(self.runner, handle, api=self.api, timeout=timeout, net=self.config.net,
                             on_stage=lambda stage: self.reporter.line(f"  waiting for {stage}"))
        except EngineNotReady as exc:
            if not self.name:
                raise
            raise EngineNotReady(f"the {self.label}: {exc.message}", hint=exc.hint, log_tail=exc.log_tail) from None
        self.handle = handle
        self.reporter.line(f"{self.spec.name} is ready at {handle.base_url}" + (f" ({self.label})" if self.name else ""))
        self.write_config(started_at, ab)

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
        return Target(base_url=self.handle.base_url, model=self.handle.served_model, api=self.api,
                      stream_options=dict(self.spec.stream_options), extra_body=extra, net=self.config.net,
                      request_timeout=timeout)

    # ------------------------------------------------------------------ measuring

    def warm_up(self, test: TestSpec, level: Level) -> None:
        if not self.suite.warmup:
            return
        name = test.test_name(level)
        warm = build_requests(self.suite.warmup, test.input_len, test.output_len, self.suite.seed, f"{name}:warmup")
        warm_level = level if level.kind == "concurrency" else Level("concurrency", min(4, len(warm)))
        self._measure(warm, warm_level, name, 0)
        self.flush_samples()

    def repeat(self, test: TestSpec, level: Level, run_number: int, position: int | None = None) -> None:
        """One measured repeat; ``position`` is this arm's place in its A/B pair."""
        name = test.test_name(level)
        if test.capacity is not None:
            self.capacity_repeat(test, run_number, position)
            return
        requests = self.test_requests(test, f"{name}:{run_number}")
        before = self._scrape()
        cpu_before = _cpu_seconds()
        self.sampler.start()
        try:
            start, end, records = self._measure(requests, level, name, run_number)
        finally:
            self.sampler.stop()
            self.flush_samples()
        cpu = _cpu_seconds() - cpu_before
        after = self._scrape()
        result = self._result(name, run_number, level, records, end - start, cpu, before, after)
        self.results.append(result)
        if position is not None:
            self.positions.setdefault(name, []).append(position)
        self.reporter.line(_one_line(result) + (f" ({self.label})" if self.name else ""))
        if not result.passed:
            self.failures.append(f"{name} run {run_number}{' of the ' + self.label if self.name else ''}: "
                                 f"{result.errors[0]}")

    def test_requests(self, test: TestSpec, tag: str) -> list[Any]:
        """The test's requests for one measured level (fresh prompts per ``tag``)."""
        return build_requests(test.num_requests, test.input_len, test.output_len, self.suite.seed, tag)

    def capacity_repeat(self, test: TestSpec, run_number: int, position: int | None = None) -> None:
        """One repeat of a capacity test: a search over the test's load (kitt.capacity)."""
        assert test.capacity is not None
        result, curve = capacity.search(self, test, run_number, self.suite.max_error_rate)
        self.results.append(result)
        self.curves.append({"test_name": result.test_name, "run_number": run_number,
                            "over": test.capacity.over, "slo": dict(test.capacity.slo),
                            "probes": [p.to_dict() for p in curve]})
        if position is not None:
            self.positions.setdefault(result.test_name, []).append(position)
        self.reporter.line(f"  run {run_number}: " + capacity.describe(test.capacity, result.metrics)
                           + (f" ({self.label})" if self.name else ""))

    def probe(self, test: TestSpec, level: Level, run_number: int, tag: str) -> dict[str, float | None]:
        """One level of a capacity search: measured like a repeat, kept only in the search's curve."""
        name = test.test_name(Level("capacity", 0))
        requests = self.test_requests(test, f"{name}.{level.label}:{run_number}:{tag}")
        cpu_before = _cpu_seconds()
        try:
            # One name for every probe of a repeat: open-loop arrivals are seeded by it, so each probe
            # sends the same arrival pattern scaled to its rate (common random numbers, kitt.capacity).
            start, end, records = self._measure(requests, level, name, run_number)
        finally:
            self.flush_samples()
        return self._result(name, run_number, level, records, end - start, _cpu_seconds() - cpu_before,
                            None, None).metrics

    def _measure(self, requests: list[Any], level: Level, name: str,
                 run_number: int) -> tuple[float, float, list[RequestRecord]]:
        first = len(self.records)
        progress = Progress()
        phase = f"{name} " + ("warm-up" if run_number == 0 else f"run {run_number}")
        if self.name:
            phase += f" of the {self.label}"

        def died(status: int) -> EngineDied:
            return EngineDied(
                f"{self.spec.name} exited with status {status} during {phase}",
                hint="See the engine log; the samples measured so far are kept.",
                log_tail=self.runner.log_tail(50),
            )

        async def measured() -> tuple[float, float]:
            task = asyncio.current_task()
            assert task is not None
            with _EngineWatch(self.runner, asyncio.get_running_loop(), task) as watch:
                try:
                    return await run_level(self._target(requests), requests, level, test_name=name, run_number=run_number,
                                           seed=self.suite.seed, sink=self.records, progress=progress)
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

    def _result(self, name: str, run_number: int, level: Level, records: list[RequestRecord], duration: float,
                cpu: float, before: dict[str, float] | None, after: dict[str, float] | None) -> rs.TestResult:
        metrics: dict[str, float | None] = {level.kind if level.kind == "concurrency" else "request_rate": level.value}
        metrics.update(compute_metrics(records, duration, self.suite.slo or None, cpu_seconds=cpu,
                                       exact_length=self.spec.exact_length_fields is not None))
        client_tokens = sum(r.output_tokens for r in records)
        metrics.update(self.sampler.summary(metrics["total_output_tokens"] or 0))
        server_tokens = telemetry.counter_delta(before, after, self.spec.generation_tokens_metric)
        if server_tokens is not None and server_tokens != client_tokens:
            after = self._settle(before, client_tokens) or after
            server_tokens = telemetry.counter_delta(before, after, self.spec.generation_tokens_metric)
        if server_tokens is not None:
            metrics["server_generation_tokens"] = server_tokens
            metrics["token_count_mismatch"] = abs(server_tokens - client_tokens)
        prompt_delta = telemetry.counter_delta(before, after, self.spec.prompt_tokens_metric)
        if prompt_delta is not None:
            metrics["server_prompt_tokens"] = prompt_delta
        errors = []
        total = len(records)
        failed = int(metrics["failed"] or 0)
        if total and failed / total > self.suite.max_error_rate:
            first_error = next((r.error for r in records if r.error), "unknown error")
            errors.append(f"{failed} of {total} requests failed (max_error_rate {self.suite.max_error_rate:g}); "
                          f"first error: {first_error}")
        if metrics.get("token_count_mismatch"):
            self._note(f"{name} run {run_number}: the server counted {server_tokens:.0f} generated tokens, the client "
                       f"{client_tokens}; see token_count_mismatch")
        if (metrics["client_cpu_util_pct"] or 0) > CLIENT_SATURATION_PCT:
            self._note(f"{name} run {run_number}: the load generator used {metrics['client_cpu_util_pct']:.0f}% of a "
                       "CPU core; latencies may include client overhead")
        return rs.TestResult(test_name=name, run_number=run_number, passed=not errors, metrics=metrics, errors=errors)

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
            "engine_image": (handle.image if handle else None) or (self.config.engine_image if self.mode == "docker" else None),
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
            "hardware_fingerprint": self.hw.get("fingerprint"),
            **source_revision(self.config.commit, self.config.branch),
        }
        if ab is not None:
            config["ab"] = {**ab, "arm": self.name, "positions": self.positions}
        rs.write_json(self.out / rs.CONFIG_FILE, config)

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
            extra={"hardware_fingerprint": self.hw.get("fingerprint"), "notes": self.notes, "failures": self.failures,
                   **({"capacity_curves": self.curves} if self.curves else {})},
        )
        rs.write_json(self.out / rs.METRICS_FILE, document)


def ready_timeout(given: float | None, mode: str) -> float:
    """--ready-timeout as given, never capped; unset: 30 s for an endpoint (already running), else 900 s."""
    if given is not None:
        return given
    return 30.0 if mode == "endpoint" else 900.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one_line(result: rs.TestResult) -> str:
    m = result.metrics

    def fmt(key: str, unit: str = "ms") -> str:
        value = m.get(key)
        return "n/a" if value is None else f"{value:.1f}{unit}"

    status = "ok" if result.passed else "FAILED"
    return (f"  run {result.run_number}: {status} · {m.get('completed', 0):.0f} done, {m.get('failed', 0):.0f} failed"
            f" · TTFT p50 {fmt('median_ttft_ms')} · TPOT p50 {fmt('median_tpot_ms')}"
            f" · {fmt('output_throughput', ' tok/s')}")


def redact_url(url: str) -> str:
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(url)
    if parsed.username or parsed.password:
        parsed = parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else ""))
    return urlunparse(parsed)
