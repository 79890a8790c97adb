"""``kitt run``: start an engine, benchmark it over a suite, write the result set, tear down.

For each test and load level: warm-up requests (recorded in samples.jsonl, excluded from
metrics), then ``repeats`` measured repeats, each its own result with run_number 1..N and fresh
prompts (identical prompts would hit the engine's prefix cache). Around each repeat the engine's
Prometheus counters are scraped and the GPUs sampled.

Teardown always happens: on success, on error, on Ctrl-C and on SIGTERM (a cancelled CI job).
Whatever was measured before a failure is still written: samples.jsonl keeps every finished
request, and metrics.json records the failure with ``passed: false``.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from kitt import __version__
from kitt.bench.loadgen import Progress, Target, run_level
from kitt.bench.metrics import compute_metrics
from kitt.bench.records import RequestRecord
from kitt.bench.workload import build_requests
from kitt.config import Level, RunConfig, TestSpec, check_run_config, suite_to_dict
from kitt.engines import choose_mode, create_runner, get_engine
from kitt.engines.base import EngineSpec, Runner, ServerHandle
from kitt.engines.readiness import wait_until_ready
from kitt.errors import BenchmarkError, Cancelled, EngineDied, KittError
from kitt.progress import Reporter
from kitt import results as rs
from kitt import telemetry, hardware

COUNTER_SETTLE_SECONDS = 3.0
CLIENT_SATURATION_PCT = 90.0


@dataclass
class RunOutcome:
    output: Path
    passed: bool
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@contextmanager
def cancel_on_signals() -> Iterator[None]:
    """Turn the first SIGTERM or SIGINT into a Cancelled error; ignore repeats during teardown."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        raise Cancelled(f"received {signal.Signals(signum).name}: the run was stopped and the engine torn down")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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


class BenchmarkRun:
    def __init__(self, config: RunConfig, reporter: Reporter) -> None:
        self.config = config
        self.reporter = reporter
        self.spec: EngineSpec = get_engine(config.engine)
        self.mode = choose_mode(self.spec, native=config.native, endpoint=config.endpoint)
        self.suite = config.suite
        self.api = self.suite.api or self.spec.api
        self.run_id = time.strftime("%Y%m%d%H%M%S") + "-" + os.urandom(3).hex()
        self.out = config.output
        self.records: list[RequestRecord] = []
        self.results: list[rs.TestResult] = []
        self.notes: list[str] = []
        self.failures: list[str] = []
        self._written = 0

    # ------------------------------------------------------------------ orchestration

    def execute(self) -> RunOutcome:
        self.out.mkdir(parents=True, exist_ok=True)
        started_at = rs.utc_timestamp()
        started = time.monotonic()
        nvml, gpu_note = telemetry.load_nvml()
        if gpu_note:
            self.notes.append(gpu_note)
        hw = hardware.collect(nvml, gpu_note)
        rs.write_json(self.out / rs.HARDWARE_FILE, hw)
        runner = create_runner(
            self.spec,
            mode=self.mode,
            model=self.config.model,
            port=self.config.port,
            extra_args=self.config.engine_args,
            image=self.config.engine_image,
            endpoint=self.config.endpoint,
            run_id=self.run_id,
            log_path=self.out / "engine.log",
        )
        handle: ServerHandle | None = None
        samples = rs.SamplesWriter(self.out / rs.SAMPLES_FILE)
        self.sampler = telemetry.GpuSampler(nvml, gpu_note)
        try:
            with cancel_on_signals():
                try:
                    handle = self._start(runner)
                    self._write_config(handle, started_at, hw)
                    for test in self.suite.tests:
                        for level in test.levels:
                            self._run_level(runner, handle, test, level, samples)
                finally:
                    self.reporter.line(f"Stopping {self.spec.name} ({self.mode})")
                    runner.stop()
        except KittError as exc:
            self.failures.append(str(exc))
            raise
        finally:
            self._flush_samples(samples)
            samples.close()
            if handle is None:
                self._write_config(None, started_at, hw)
            self._write_metrics(started_at, time.monotonic() - started, hw)
        if self.failures:
            raise BenchmarkError(self.failures[0], hint=f"Results so far are in {self.out}.")
        return RunOutcome(self.out, passed=True, notes=self.notes)

    def _start(self, runner: Runner) -> ServerHandle:
        if self.mode in ("docker", "native"):
            self.reporter.line(f"Starting {self.spec.name} in {self.mode} mode for {self.config.model}")
        handle = runner.start()
        timeout = min(self.config.ready_timeout, 30.0) if self.mode == "endpoint" else self.config.ready_timeout
        wait_until_ready(
            runner,
            handle,
            api=self.api,
            timeout=timeout,
            on_stage=lambda stage: self.reporter.line(f"  waiting for {stage}"),
            timeout_capped=self.mode == "endpoint",
        )
        self.reporter.line(f"{self.spec.name} is ready at {handle.base_url}")
        return handle

    def _target(self, handle: ServerHandle) -> Target:
        extra = dict(self.spec.exact_length_fields or {})
        return Target(base_url=handle.base_url, model=handle.served_model, api=self.api,
                      stream_options=dict(self.spec.stream_options), extra_body=extra)

    def _run_level(self, runner: Runner, handle: ServerHandle, test: TestSpec, level: Level,
                   samples: rs.SamplesWriter) -> None:
        name = test.test_name(level)
        target = self._target(handle)
        seed = self.suite.seed
        with self.reporter.group(f"{name}: {test.num_requests} requests x {self.suite.repeats} repeats"):
            if self.suite.warmup:
                warm = build_requests(self.suite.warmup, test.input_len, test.output_len, seed, f"{name}:warmup")
                warm_level = level if level.kind == "concurrency" else Level("concurrency", min(4, len(warm)))
                self._measure(runner, target, warm, warm_level, name, 0)
                self._flush_samples(samples)
            for run_number in range(1, self.suite.repeats + 1):
                requests = build_requests(test.num_requests, test.input_len, test.output_len, seed, f"{name}:{run_number}")
                before = self._scrape(handle)
                cpu_before = _cpu_seconds()
                self.sampler.start()
                try:
                    start, end, records = self._measure(runner, target, requests, level, name, run_number)
                finally:
                    self.sampler.stop()
                    self._flush_samples(samples)
                cpu = _cpu_seconds() - cpu_before
                after = self._scrape(handle)
                result = self._result(name, run_number, level, records, end - start, cpu, before, after, handle)
                self.results.append(result)
                self.reporter.line(_one_line(result))
                if not result.passed:
                    self.failures.append(f"{name} run {run_number}: {result.errors[0]}")

    def _measure(self, runner: Runner, target: Target, requests: list[Any], level: Level, name: str,
                 run_number: int) -> tuple[float, float, list[RequestRecord]]:
        first = len(self.records)
        progress = Progress()

        phase = f"{name} " + ("warm-up" if run_number == 0 else f"run {run_number}")

        def died(status: int) -> EngineDied:
            return EngineDied(
                f"{self.spec.name} exited with status {status} during {phase}",
                hint="See the engine log; the samples measured so far are kept.",
                log_tail=runner.log_tail(50),
            )

        async def measured() -> tuple[float, float]:
            task = asyncio.current_task()
            assert task is not None
            with _EngineWatch(runner, asyncio.get_running_loop(), task) as watch:
                try:
                    return await run_level(target, requests, level, test_name=name, run_number=run_number,
                                           seed=self.suite.seed, sink=self.records, progress=progress)
                except asyncio.CancelledError:
                    if watch.status is not None:
                        raise died(watch.status) from None
                    raise

        label = f"{name} " + ("warm-up" if run_number == 0 else f"run {run_number}/{self.suite.repeats}")
        with self.reporter.track(label, progress):
            start, end = asyncio.run(measured())
        # Requests to a dead engine fail fast, so the level can end before the watch looks.
        status = runner.exit_status()
        if status is not None:
            raise died(status)
        return start, end, self.records[first:]

    # ------------------------------------------------------------------ results

    def _result(self, name: str, run_number: int, level: Level, records: list[RequestRecord], duration: float,
                cpu: float, before: dict[str, float] | None, after: dict[str, float] | None,
                handle: ServerHandle) -> rs.TestResult:
        metrics: dict[str, float | None] = {level.kind if level.kind == "concurrency" else "request_rate": level.value}
        metrics.update(compute_metrics(records, duration, self.suite.slo or None))
        client_tokens = sum(r.output_tokens for r in records)
        metrics.update(self.sampler.summary(metrics["total_output_tokens"] or 0))
        metrics["client_cpu_seconds"] = cpu
        metrics["client_cpu_util_pct"] = 100.0 * cpu / duration if duration > 0 else None
        if self.spec.exact_length_fields is not None:
            metrics["output_len_mismatch"] = float(
                sum(1 for r in records if r.ok and r.output_tokens != r.requested_output_tokens)
            )
        server_tokens = telemetry.counter_delta(before, after, self.spec.generation_tokens_metric)
        if server_tokens is not None and server_tokens != client_tokens:
            after = self._settle(handle, before, client_tokens) or after
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

    def _scrape(self, handle: ServerHandle) -> dict[str, float] | None:
        if not self.spec.metrics_path:
            return None
        return telemetry.scrape(handle.base_url.rstrip("/") + self.spec.metrics_path)

    def _settle(self, handle: ServerHandle, before: dict[str, float] | None, expected: int) -> dict[str, float] | None:
        """Counters can trail the last response by a logging interval: scrape again for a moment."""
        deadline = time.monotonic() + COUNTER_SETTLE_SECONDS
        latest = None
        while time.monotonic() < deadline:
            time.sleep(0.2)
            latest = self._scrape(handle)
            if telemetry.counter_delta(before, latest, self.spec.generation_tokens_metric) == expected:
                break
        return latest

    def _flush_samples(self, samples: rs.SamplesWriter) -> None:
        if self._written < len(self.records):
            origin = self.records[0].scheduled if self.records else 0.0
            samples.write_many(r.to_sample(origin) for r in self.records[self._written :])
            self._written = len(self.records)

    def _write_config(self, handle: ServerHandle | None, started_at: str, hw: dict[str, Any]) -> None:
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
            "endpoint": _redact_url(handle.base_url) if handle else None,
            "api": self.api,
            "stream_options": dict(self.spec.stream_options),
            "exact_output_len": self.spec.exact_length_fields is not None,
            "exact_length_fields": dict(self.spec.exact_length_fields or {}),
            "ready_timeout_s": self.config.ready_timeout,
            "seed": self.suite.seed,
            "suite": suite_to_dict(self.suite),
            "hardware_fingerprint": hw.get("fingerprint"),
        }
        rs.write_json(self.out / rs.CONFIG_FILE, config)

    def _write_metrics(self, started_at: str, elapsed: float, hw: dict[str, Any]) -> None:
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
            extra={"hardware_fingerprint": hw.get("fingerprint"), "notes": self.notes, "failures": self.failures},
        )
        rs.write_json(self.out / rs.METRICS_FILE, document)
        from kitt.compare import compare_result_sets
        from kitt.report import render_summary

        written = rs.load_metrics_file(self.out / rs.METRICS_FILE)
        (self.out / rs.SUMMARY_FILE).write_text(render_summary(compare_result_sets(written, None)), encoding="utf-8")


def run_benchmark(config: RunConfig, reporter: Reporter | None = None) -> RunOutcome:
    # Bad values and an unusable output folder fail here, before an engine loads a model.
    check_run_config(config)
    rs.prepare_output_dir(config.output)
    return BenchmarkRun(config, reporter or Reporter()).execute()


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


def _redact_url(url: str) -> str:
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(url)
    if parsed.username or parsed.password:
        parsed = parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else ""))
    return urlunparse(parsed)
