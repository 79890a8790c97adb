"""``kitt run``: start an engine, benchmark it over a suite, write the result set, tear down.

For each test and load level: warm-up requests (recorded in samples.jsonl, excluded from
metrics), then ``repeats`` measured repeats, each its own result with run_number 1..N and fresh
prompts (identical prompts would hit the engine's prefix cache). An A/B run (``RunConfig.baseline``)
holds two arms (``kitt.arm``) and runs each repeat as a pair, one repeat of each arm back to back,
in balanced shuffled order (or in ABBA blocks), writing OUT/baseline and OUT/candidate. With
``repeats: auto`` each level stops as soon as every gated metric is decided (``kitt.sequential``):
in an A/B run after a pair whose order keeps the two orders balanced, in a single-arm run
(``RunConfig.history_dir``) after a repeat, against the baseline jobs' prediction interval.

Teardown always happens: on success, on error, on Ctrl-C and on SIGTERM (a cancelled CI job).
Whatever was measured before a failure is still written: samples.jsonl keeps every finished
request, and metrics.json records the failure with ``passed: false``.

The result set is written into a staging folder and moved into OUT when the run ends
(``kitt.results.install_result_set``): a failed run never replaces an earlier result set in OUT,
and a run stopped by a usage error before anything was measured leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from kitt import hardware, sequential, telemetry
from kitt import results as rs
from kitt.arm import Arm
from kitt.comparison import MIN_HISTORY
from kitt.compare import compare_result_sets
from kitt.config import Level, RunConfig, TestSpec, check_run_config
from kitt.engines import check_port_free, choose_mode, get_engine
from kitt.errors import BenchmarkError, Cancelled, KittError, UsageError
from kitt.progress import Reporter
from kitt.redact import redact_url
from kitt.report import render_summary
from kitt.thresholds import DEFAULT_GATED, LOWER, Thresholds, metric_direction


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


class BenchmarkRun:
    """``kitt run``: one arm, or the two arms of an A/B run scheduled in balanced pairs."""

    def __init__(self, config: RunConfig, reporter: Reporter, history: list[rs.ResultSet] | None = None) -> None:
        self.config = config
        self.reporter = reporter
        self.run_id = time.strftime("%Y%m%d%H%M%S") + "-" + os.urandom(3).hex()
        self.out = config.output
        self.suite = config.suite
        self.history = history  # the baseline jobs a single-arm repeats auto decides against
        if self.suite.auto_repeats is not None:
            low, high = self.suite.auto_repeats
            levels = sum(len(test.levels) for test in self.suite.tests)
            # The metrics the default thresholds gate, at their threshold (kitt run takes no thresholds file),
            # less capacity: only a capacity search measures it, and those refuse repeats auto, so
            # judging it would leave every level undecided until max_repeats.
            self.gated = {
                name: pct
                for name in DEFAULT_GATED
                if name != "capacity" and (pct := Thresholds().for_metric(name)) is not None
            }
            self.lower = {metric: metric_direction(metric) == LOWER for metric in self.gated}
            self.design = sequential.Design(low, high, family_size=max(1, levels * len(self.gated)))
        if config.baseline is None:
            self.arms = [Arm(None, config, self.out, self.run_id, reporter)]
            self.ab: dict[str, Any] | None = None
            if history is not None and self.suite.auto_repeats is not None:
                self.arms[0].repeats_auto = {
                    "mode": "auto",
                    "against": "history",
                    "history_jobs": len(history),
                    "history_runs": [str(job.config.get("run_id") or job.directory.name) for job in history],
                    "min_repeats": self.design.min_pairs,
                    "max_repeats": self.design.max_pairs,
                    "gated": dict(self.gated),
                    "levels": {},
                }
        else:
            base, notes = ab_arm_configs(config)
            self.arms = [
                Arm("baseline", base, self.out / "baseline", self.run_id, reporter),
                Arm("candidate", config, self.out / "candidate", self.run_id, reporter),
            ]
            self.ab = {
                "run_id": self.run_id,
                "schedule": config.ab_schedule,
                "order_seed": self.suite.seed,
                "differs": ab_differences(base, config),
            }
            for note in notes:
                for arm in self.arms:
                    arm.notes.append(note)
                reporter.warn(note)
            if self.suite.auto_repeats is not None:
                self.ab["repeats"] = {
                    "mode": "auto",
                    "min_repeats": self.design.min_pairs,
                    "max_repeats": self.design.max_pairs,
                    "gated": dict(self.gated),
                    "levels": {},
                }

    def execute(self) -> RunOutcome:
        """Run into a fresh staging folder, then move the result set into place (module docstring)."""
        stage = rs.staging_dir(self.out, self.run_id)
        for arm in self.arms:  # each arm writes into the staging folder until the run ends
            arm.out = stage / arm.name if arm.name else stage
        try:
            outcome = self._execute()
        except BaseException as exc:
            measured = any(arm.records or arm.results for arm in self.arms)
            if isinstance(exc, UsageError) and not measured:
                rs.discard_staging(stage)  # nothing measured: nothing to keep, no debris
                raise
            where = rs.install_result_set(stage, self.out, keep_earlier=True)
            if isinstance(exc, KittError) and where != self.out.absolute():
                exc.hint = (
                    f"This run's results are in {where}; the earlier result set in {self.out} was left as it was."
                )
                exc.results_dir = where
            raise
        earlier = rs.holds_result_set(self.out)
        rs.install_result_set(stage, self.out, keep_earlier=False)
        if earlier:
            self.reporter.line(f"Replaced the earlier result set in {self.out}")
        return outcome

    def _execute(self) -> RunOutcome:
        started_at = rs.utc_timestamp()
        started = time.monotonic()
        nvml, gpu_note = telemetry.load_nvml()
        hw = hardware.collect(nvml, gpu_note)
        for arm in self.arms:
            arm.prepare(nvml, gpu_note, hw)
        try:
            with cancel_on_signals():
                try:
                    if self.ab is not None and self.config.ab_schedule == "blocks":
                        self._blocks(started_at)
                    else:
                        for arm in self.arms:
                            arm.start(started_at, self.ab)
                        for test in self.suite.tests:
                            for level in test.levels:
                                self._level(test, level)
                finally:
                    for arm in self.arms:
                        arm.stop()
        except KittError as exc:
            for arm in self.arms:
                arm.failures.append(str(exc))
            raise
        finally:
            for arm in self.arms:
                arm.finish(started_at, time.monotonic() - started, self.ab)
                write_summary(arm.out)
        failures = [f for arm in self.arms for f in arm.failures]
        if failures:
            raise BenchmarkError(failures[0], hint=f"Results so far are in {self.out}.")
        return RunOutcome(self.out, passed=True, notes=[n for arm in self.arms for n in arm.notes])

    def _level(self, test: TestSpec, level: Level) -> None:
        name = test.test_name(level)
        if self.ab is not None and self.suite.auto_repeats is not None:
            pairs = f" x {self.suite.auto_repeats[0]}-{self.suite.auto_repeats[1]} pairs (A/B, until decided)"
        elif self.history is not None and self.suite.auto_repeats is not None:
            low, high = self.suite.auto_repeats
            pairs = f" x {low}-{high} repeats (against {len(self.history)} baseline jobs, until decided)"
        elif self.ab is not None:
            pairs = f" x {self.suite.repeats} pairs (A/B)"
        else:
            pairs = f" x {self.suite.repeats} repeats"
        unit = "sessions" if test.turns is not None else "requests"
        size = (
            f"{test.duration_s:g} s, at most {test.num_requests} {unit}"
            if test.duration_s
            else f"{test.num_requests} {unit}"
        )
        with self.reporter.group(f"{name}: {size}{pairs}"):
            for arm in self.arms:
                arm.warm_up(test, level)
            if self.ab is None:
                for run_number in range(1, self.suite.repeats + 1):
                    self.arms[0].repeat(test, level, run_number)
                    if self.arms[0].repeats_auto is not None and self._stop_against_history(name, run_number):
                        break
                return
            baseline, candidate = self.arms
            auto = self.suite.auto_repeats is not None
            orders = (sequential.pair_orders if auto else pair_orders)(self.suite.repeats, f"{self.suite.seed}:{name}")
            for run_number, baseline_first in enumerate(orders, 1):
                order = (baseline, candidate) if baseline_first else (candidate, baseline)
                for position, arm in enumerate(order):
                    arm.repeat(test, level, run_number, position)
                if auto and self._stop_level(name, run_number):
                    break

    def _stop_level(self, name: str, pairs_run: int) -> bool:
        """``repeats: auto``: judge the level's pairs so far; record and say why it stops."""
        if pairs_run < self.design.min_pairs:
            return False
        baseline, candidate = self.arms
        runs = {r.run_number: r for r in baseline.results if r.test_name == name and r.passed}
        both = [
            (runs[r.run_number], r)
            for r in candidate.results
            if r.test_name == name and r.passed and r.run_number in runs
        ]
        values = {
            metric: [
                (float(b), float(c))
                for base, cur in both
                if (b := base.metrics.get(metric)) is not None and (c := cur.metrics.get(metric)) is not None
            ]
            for metric in self.gated
        }
        look = sequential.look(values, self.lower, self.gated, self.design, pairs_run)
        assert self.ab is not None
        return self._record_look(name, look, self.ab["repeats"])

    def _stop_against_history(self, name: str, repeats_run: int) -> bool:
        """``repeats: auto`` on one arm: judge the level's repeats so far against the history."""
        if repeats_run < self.design.min_pairs:
            return False
        arm = self.arms[0]
        assert self.history is not None and arm.repeats_auto is not None
        current = [r for r in arm.results if r.test_name == name and r.passed]
        jobs = [[r for r in job.results if r.test_name == name] for job in self.history]
        values = {
            metric: [float(v) for r in current if (v := r.metrics.get(metric)) is not None] for metric in self.gated
        }
        history = {
            metric: [[float(v) for r in job if (v := r.metrics.get(metric)) is not None] for job in jobs]
            for metric in self.gated
        }
        look = sequential.look_history(history, values, self.lower, self.gated, self.design, repeats_run)
        return self._record_look(name, look, arm.repeats_auto)

    def _record_look(self, name: str, look: sequential.Look, record: dict[str, Any]) -> bool:
        """Say how the level stands; when it stops, record why (config.json) and say it in the notes."""
        if not look.stop:
            self.reporter.line(f"  {name}: {look.reason()}")
            return False
        record["levels"][name] = {
            look.unit: look.pairs,
            "stopped": look.why,
            "reason": look.reason(),
            "decisions": {metric: decision.name.lower() for metric, decision in look.decisions.items()},
        }
        note = (
            f"{name}: {look.reason()} (repeats: auto, {self.design.min_pairs} to {self.design.max_pairs} {look.unit})."
        )
        for arm in self.arms:
            arm.notes.append(note)
        self.reporter.line(f"  {note}")
        return True

    def _blocks(self, started_at: str) -> None:
        """ABBA blocks, for models that fit only once: A runs the first half of every level's repeats,
        then B the first half and (without a restart) the second, then A the second half. Pair i is
        A's and B's repeat i; the first half has A first, the second B first."""
        baseline, candidate = self.arms
        half = (self.suite.repeats + 1) // 2
        plan = [
            (baseline, range(1, half + 1), 0),
            (candidate, range(1, half + 1), 1),
            (candidate, range(half + 1, self.suite.repeats + 1), 0),
            (baseline, range(half + 1, self.suite.repeats + 1), 1),
        ]
        running: Arm | None = None
        for arm, runs, position in plan:
            if not runs:
                continue
            if arm is not running:
                if running is not None:
                    running.stop()
                arm.start(started_at, self.ab)
                running, warmed = arm, False
            for test in self.suite.tests:
                for level in test.levels:
                    if not warmed:
                        arm.warm_up(test, level)
                    for run_number in runs:
                        arm.repeat(test, level, run_number, position)
            warmed = True


def write_summary(out: Path) -> None:
    """summary.md beside the metrics.json just written: the result set as the report shows it alone."""
    written = rs.load_metrics_file(out / rs.METRICS_FILE)
    (out / rs.SUMMARY_FILE).write_text(render_summary(compare_result_sets(written, None)), encoding="utf-8")


def pair_orders(pairs: int, seed: str) -> list[bool]:
    """Seeded, shuffled pair orders (True: baseline first) with as many of each as can be: the
    halves differ by one at most, so drift that grows through the level biases neither arm."""
    import random

    orders = [index % 2 == 0 for index in range(pairs)]
    random.Random(seed).shuffle(orders)
    return orders


def ab_arm_configs(config: RunConfig) -> tuple[RunConfig, list[str]]:
    """The baseline arm's configuration, checked against the engine's mode; and notes to show."""
    from kitt.config import AB_SCHEDULES

    arm = config.baseline
    assert arm is not None
    spec = get_engine(config.engine)
    mode = choose_mode(spec, native=config.native, endpoint=config.endpoint)
    if config.ab_schedule not in AB_SCHEDULES:
        raise UsageError(f"--ab-schedule must be one of {', '.join(AB_SCHEDULES)}, got {config.ab_schedule!r}")
    if arm.endpoint is not None and mode != "endpoint":
        raise UsageError(
            "--baseline-endpoint needs -e openai and --endpoint (the candidate)",
            hint="For an engine kitt starts, use --baseline-engine-image, --baseline-engine-arg or --baseline-model.",
        )
    if mode == "endpoint" and (arm.model or arm.engine_image or arm.engine_args is not None):
        raise UsageError(
            "--baseline-model, --baseline-engine-image and --baseline-engine-arg need an engine kitt starts",
            hint="Against running servers, give --baseline-endpoint (and --endpoint for the candidate).",
        )
    if arm.engine_image is not None and mode != "docker":
        raise UsageError(
            f"--baseline-engine-image needs Docker mode; {spec.name} runs in {mode} mode here",
            hint="Drop --native, or compare arguments or models instead.",
        )
    if mode == "endpoint" and config.ab_schedule == "blocks":
        raise UsageError(
            "--ab-schedule blocks starts and stops engines; running endpoints cannot be",
            hint="Use the default, interleaved.",
        )
    base = replace(
        config,
        model=arm.model or config.model,
        engine_image=arm.engine_image or config.engine_image,
        engine_args=arm.engine_args if arm.engine_args is not None else config.engine_args,
        endpoint=arm.endpoint or config.endpoint,
        port=None,  # both arms are up at once: the baseline takes a free port
        baseline=None,
    )
    notes = []
    if not ab_differences(base, config):
        notes.append("Both arms of this A/B run are identical, so it is an A/A run: any difference is noise.")
    if config.ab_schedule == "blocks":
        notes.append(
            "ABBA blocks: the engines start 3 times (baseline, candidate, baseline), and pairs are "
            "further apart in time than interleaved ones, so slow drift cancels less well."
        )
    return base, notes


def ab_differences(baseline: RunConfig, candidate: RunConfig) -> dict[str, list[Any]]:
    """What differs between the arms, as {field: [baseline, candidate]} (no secrets: URLs redacted)."""
    fields = {
        "model": (baseline.model, candidate.model),
        "engine_image": (baseline.engine_image, candidate.engine_image),
        "engine_args": (list(baseline.engine_args), list(candidate.engine_args)),
        "endpoint": (redact_url(baseline.endpoint or ""), redact_url(candidate.endpoint or "")),
    }
    return {name: list(pair) for name, pair in fields.items() if pair[0] != pair[1]}


def run_benchmark(
    config: RunConfig, reporter: Reporter | None = None, history: list[rs.ResultSet] | None = None
) -> RunOutcome:
    """Run ``config``. ``history``: the baseline jobs under ``config.history_dir``, when the caller
    has loaded them already (:func:`against_history`); else they are loaded here."""
    # Bad values, a busy port and an unusable output folder fail here, before an engine loads a
    # model and before anything is created on disk.
    check_run_config(config)
    if config.baseline is not None:
        ab_arm_configs(config)  # A/B flags an engine cannot take
    if history is None and config.history_dir is not None:
        history = load_run_history(config)
    run = BenchmarkRun(config, reporter or Reporter(), history)  # an unknown engine or a missing --endpoint
    if config.port is not None and run.arms[-1].mode != "endpoint":
        check_port_free(config.port)
    created = [p for p in (config.output.absolute(), *config.output.absolute().parents) if not p.exists()]
    rs.prepare_output_dir(config.output)
    try:
        return run.execute()
    except UsageError:
        for folder in created:  # a usage error leaves no empty folder behind, parents included
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def against_history(
    config: RunConfig, folder: Path | None, limit: int, artifact: str
) -> tuple[RunConfig, list[rs.ResultSet] | None, str | None]:
    """A single-arm ``repeats: auto`` run of the action, to be decided against the baseline history
    downloaded into ``folder``: the config with that history and the jobs loaded from it, or, when
    the run cannot use it (none yet, fewer than 3 jobs in a new workflow, another suite's), the
    config measuring max_repeats per level, no jobs, and a warning that says why: the report still
    compares what it can."""
    source = f"the baseline history (baseline-artifact {artifact!r})"
    if folder is None:
        why = f"the base branch has no {artifact!r} artifact yet"
    else:
        with_history = replace(config, history_dir=folder, history_limit=limit)
        try:
            return with_history, load_run_history(with_history, source), None
        except UsageError as error:
            why = error.message
    assert config.suite.auto_repeats is not None
    _, high = config.suite.auto_repeats
    warning = (
        f"repeats auto has nothing to decide against: {why}. This run measures {high} repeats per level "
        "(max_repeats); each push to the base branch adds a baseline job."
    )
    return replace(config, suite=replace(config.suite, auto_repeats=None)), None, warning


def load_run_history(config: RunConfig, source: str | None = None) -> list[rs.ResultSet]:
    """The baseline jobs under ``config.history_dir`` for a single-arm ``repeats: auto`` run, checked
    before any engine starts: there, readable, at least the gate's MIN_HISTORY jobs of this model,
    engine and suite (jobs that measured something else are left out, as the report leaves them
    out), and every level of the suite in MIN_HISTORY of them (the history test needs that many).
    ``source`` names the history in the errors (default: ``--history-dir DIR``)."""
    from kitt.errors import ResultsError
    from kitt.importers import load_baseline_history

    folder = config.history_dir
    assert folder is not None
    where = source or f"--history-dir {folder}"
    fix = "Pass the folder of the baseline jobs' result sets, one per subfolder (as `kitt ci report --baseline-dir` takes them)."
    if not folder.is_dir():
        raise UsageError(f"{where} does not exist or is not a folder", hint=fix)
    try:
        jobs = load_baseline_history(folder, config.history_limit)
    except ResultsError as exc:
        raise UsageError(f"{where}: {exc.message}", hint=exc.hint or fix) from None
    if not jobs:
        raise UsageError(f"{where} holds no result sets", hint=fix)
    # As the report pools a history (kitt.compare): only jobs that measured this model, engine and suite.
    this = {"model": config.model, "engine": get_engine(config.engine).name, "suite": config.suite.name}
    same = [job for job in jobs if not _differs(job, this)]
    if len(same) < MIN_HISTORY <= len(jobs):
        other = sorted({", ".join(found) for job in jobs if (found := _differs(job, this))})
        raise UsageError(
            f"{where}: only {len(same)} of its {len(jobs)} jobs measured this run's "
            f"{', '.join(f'{k} {v}' for k, v in this.items())}; the others measured {'; '.join(other)[:300]}",
            hint="Pass the history of this model, engine and suite, or run what the history ran.",
        )
    jobs = same if len(same) >= MIN_HISTORY else jobs
    if len(jobs) < MIN_HISTORY:
        raise UsageError(
            f"{where} holds {len(jobs)} baseline job{'s' if len(jobs) != 1 else ''}; "
            f"the history test needs at least {MIN_HISTORY}",
            hint="Run more baseline jobs first, or give a number of repeats.",
        )
    levels = [test.test_name(level) for test in config.suite.tests for level in test.levels]
    held = {name: sum(any(r.test_name == name for r in job.results) for job in jobs) for name in levels}
    missing = [name for name, count in held.items() if count < MIN_HISTORY]
    if missing:
        have = sorted({r.test_name for job in jobs for r in job.results})
        raise UsageError(
            f"{where}: suite {config.suite.name}'s {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} in fewer than {MIN_HISTORY} of the history's {len(jobs)} jobs, "
            f"which hold {', '.join(have[:8])}{', ...' if len(have) > 8 else ''}",
            hint="Give the suite the baseline jobs ran, or a history of this suite's jobs.",
        )
    return jobs


def _differs(job: rs.ResultSet, this: dict[str, str]) -> list[str]:
    """What a baseline job measured that this run does not ("engine vllm"); "unknown" matches anything."""
    seen = {"model": job.model, "engine": job.engine, "suite": job.suite_name}
    return [
        f"{key} {seen[key]}"
        for key, value in this.items()
        if seen[key] != value and "unknown" not in (seen[key], value)
    ]
