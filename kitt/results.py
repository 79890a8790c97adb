"""The result set: the files ``kitt run`` writes and ``kitt ci report`` reads.

A result set is one directory holding:

    metrics.json    per-test, per-repeat flat metrics (readable by upstream KITT consumers)
    samples.jsonl   one line per request with its raw timeline
    hardware.json   what the benchmark ran on, with a stable ``fingerprint``
    config.json     every resolved parameter of the run
    summary.md      a human-readable summary

``metrics.json`` carries ``schema_version``. Files without one are upstream KITT's (the same
``results[]`` shape, flat metrics); files with a newer version than this kitt knows are refused.

Nothing is overwritten unnoticed: a run writes into a fresh staging folder (:func:`staging_dir`)
and :func:`install_result_set` moves it into place when the run ends. A run that ends well
replaces an earlier result set (and says so); a run that fails never does: its results go
beside it (``OUT.failed-RUN_ID``) and the earlier set stays as it was.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from kitt.errors import KittError, ResultsError, UsageError
from kitt.thresholds import metric_direction

SCHEMA_VERSION = 1

METRICS_FILE = "metrics.json"
# A history of baseline jobs on disk: one folder per job, named as kitt's download names them
# (kitt.github.baseline), newest first. Another tool's files in other subfolders are one job's runs.
HISTORY_JOB_FOLDER = re.compile(r"\d+-run\d+")


def history_job_folder(index: int, run_id: int) -> str:
    """The folder name of the ``index``-th newest baseline job (from 1), uploaded by run ``run_id``."""
    return f"{index:02d}-run{run_id}"


SAMPLES_FILE = "samples.jsonl"
HARDWARE_FILE = "hardware.json"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.md"


@dataclass
class TestResult:
    """One repeat of one test at one load level."""

    test_name: str
    run_number: int
    passed: bool
    metrics: dict[str, float | None]
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "test_name": self.test_name,
            "run_number": self.run_number,
            "passed": self.passed,
            "metrics": {k: _finite_or_none(v) for k, v in self.metrics.items()},
            "errors": list(self.errors),
        }


@dataclass
class ResultSet:
    """A parsed result set. ``hardware`` and ``config`` are empty for upstream KITT files."""

    directory: Path
    metrics_path: Path
    schema_version: int | None
    suite_name: str
    timestamp: datetime
    engine: str
    model: str
    passed: bool
    results: list[TestResult]
    hardware: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    # One line per figure whose definition differs from kitt's (another tool's files, kitt.importers).
    definitions: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str | None:
        value = self.hardware.get("fingerprint") or self.raw.get("hardware_fingerprint")
        return str(value) if value else None


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with a ``Z``, the form metrics.json uses."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def metrics_document(
    *,
    suite_name: str,
    engine: str,
    model: str,
    kitt_version: str,
    timestamp: str,
    total_time_seconds: float,
    results: list[TestResult],
    passed: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build metrics.json's top level, upstream KITT's fields first."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kitt_version": kitt_version,
        "suite_name": suite_name,
        "timestamp": timestamp,
        "engine": engine,
        "model": model,
        "passed": passed,
        "total_time_seconds": round(total_time_seconds, 3),
        "results": [r.to_dict() for r in results],
    }
    document.update(extra or {})
    return document


def prepare_output_dir(path: Path, label: str = "output directory") -> Path:
    """Create ``path`` (and its parents) and prove it is writable, before an engine is started:
    an existing file, a folder under a file, a read-only filesystem or a missing permission is a
    UsageError here rather than a traceback after the model has loaded."""
    path = Path(path)
    hint = "Pass a directory kitt can create and write to."
    if path.exists() and not path.is_dir():
        raise UsageError(f"{label} {path} exists and is not a directory", hint=hint)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".kitt-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = (
            "a part of it is a file, not a directory"
            if isinstance(exc, (NotADirectoryError, FileExistsError))
            else (exc.strerror or str(exc))
        )
        raise UsageError(f"{label} {path} cannot be created or written ({why})", hint=hint) from None
    return path


# Everything a run writes into its output folder (an A/B run: its arms' folders).
RESULT_ENTRIES = (
    METRICS_FILE,
    SAMPLES_FILE,
    HARDWARE_FILE,
    CONFIG_FILE,
    SUMMARY_FILE,
    "engine.log",
    "baseline",
    "candidate",
)


def holds_result_set(path: Path) -> bool:
    """Whether ``path`` holds (part of) a result set that a run must not destroy unnoticed."""
    path = Path(path)
    return any((path / name).exists() for name in RESULT_ENTRIES)


def staging_dir(out: Path, run_id: str) -> Path:
    """Where a run writes until it ends: a hidden folder beside ``out`` (same filesystem, so the
    move into place is a rename); inside ``out`` when its parent is not writable."""
    out = Path(out).absolute()
    beside = out.parent / f".{out.name}.kitt-{run_id}"
    try:
        beside.mkdir(parents=True)
        return beside
    except OSError:
        inside = out / f".kitt-{run_id}"
        inside.mkdir(parents=True)
        return inside


def install_result_set(staging: Path, out: Path, *, keep_earlier: bool) -> Path:
    """Move the run's result set from ``staging`` into ``out``; return where it now is.

    ``keep_earlier`` (a failed run) with an earlier result set in ``out``: ``out`` is left as it
    was and the run's files go to ``OUT.failed-<run id>`` beside it. Otherwise the earlier result
    set's files are removed (so two runs never mix) and the new ones renamed into place; other
    files in ``out`` (the action's pull_request.json, say) stay."""
    out = Path(out).absolute()
    if keep_earlier and holds_result_set(out):
        aside = out.parent / f"{out.name}.failed-{staging.name.rpartition('kitt-')[2]}"
        try:
            shutil.move(str(staging), str(aside))
        except OSError:  # no room beside it: the staging folder is where the results are
            return staging
        return aside
    out.mkdir(parents=True, exist_ok=True)
    for name in RESULT_ENTRIES:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    for entry in list(staging.iterdir()):
        os.replace(entry, out / entry.name)
    staging.rmdir()
    return out


def discard_staging(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class SamplesWriter:
    """Appends one JSON line per finished request, so samples survive a crash mid-run."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("w", encoding="utf-8")

    def write_many(self, rows: Iterable[dict[str, Any]]) -> None:
        self._file.writelines(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "SamplesWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- reading


def find_latest_metrics(directory: Path) -> Path:
    """The newest metrics.json under ``directory`` (recursively), by its ``timestamp`` field.

    Every candidate must parse: a corrupt file is an error, never silently skipped, because
    skipping it could turn a failed run into "no regression".
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultsError(
            f"results directory {directory} does not exist",
            hint="Check the path, or run `kitt run -o DIR` first.",
        )
    candidates = sorted(directory.rglob(METRICS_FILE))
    if not candidates:
        raise ResultsError(
            f"no {METRICS_FILE} found under {directory}",
            hint="Point the flag at the folder that `kitt run -o` wrote.",
        )
    dated = [(_parse_timestamp(_read_json(path).get("timestamp"), path), str(path), path) for path in candidates]
    return max(dated)[2]


def load_result_set(directory: Path) -> ResultSet:
    """Load the newest result set under ``directory``; raise ResultsError when it is unusable."""
    metrics_path = find_latest_metrics(directory)
    return load_metrics_file(metrics_path)


def measured_anything(directory: Path) -> bool:
    """Whether ``directory`` holds a readable result set with at least one result (in A/B mode its
    candidate arm's, below it); False when there is none, or it cannot be read."""
    path = directory / METRICS_FILE
    if not path.is_file():
        path = directory / "candidate" / METRICS_FILE
    try:
        return bool(load_metrics_file(path).results)
    except KittError:
        return False


def load_metrics_file(metrics_path: Path) -> ResultSet:
    raw = _read_json(metrics_path)
    version = raw.get("schema_version")
    if version is not None:
        if not isinstance(version, int) or version < 1:
            raise ResultsError(f"{metrics_path}: schema_version must be a positive integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise ResultsError(
                f"{metrics_path} has schema_version {version}, newer than this kitt understands ({SCHEMA_VERSION})",
                hint="Upgrade kitt (or the action) to the version that wrote it.",
            )
    entries = raw.get("results")
    if not isinstance(entries, list):
        raise ResultsError(f"{metrics_path}: 'results' must be a list of test results")
    results = [_parse_result(entry, metrics_path, index) for index, entry in enumerate(entries)]
    _refuse_duplicates(results, metrics_path)
    passed = raw.get("passed", all(r.passed for r in results))
    if not isinstance(passed, bool):
        raise ResultsError(
            f"{metrics_path}: passed must be true or false, got {_shown(passed)}",
            hint="The file is corrupt or was edited; rerun the benchmark.",
        )
    directory = metrics_path.parent
    return ResultSet(
        directory=directory,
        metrics_path=metrics_path,
        schema_version=version,
        suite_name=str(raw.get("suite_name") or raw.get("suite") or "unknown"),
        timestamp=_parse_timestamp(raw.get("timestamp"), metrics_path),
        engine=str(raw.get("engine") or "unknown"),
        model=str(raw.get("model") or "unknown"),
        passed=passed,
        results=results,
        hardware=_read_optional_json(directory / HARDWARE_FILE),
        config=_read_optional_json(directory / CONFIG_FILE),
        raw=raw,
    )


def _parse_result(entry: Any, path: Path, index: int) -> TestResult:
    where = f"{path}: results[{index}]"
    if not isinstance(entry, dict):
        raise ResultsError(f"{where} must be an object")
    name = entry.get("test_name")
    if not isinstance(name, str) or not name:
        raise ResultsError(f"{where}.test_name must be a non-empty string")
    metrics = entry.get("metrics", {})
    if not isinstance(metrics, dict):
        raise ResultsError(f"{where}.metrics must be a flat mapping of names to numbers")
    flat: dict[str, float | None] = {}
    for key, value in metrics.items():
        if value is None:
            flat[str(key)] = None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            # Upstream files may carry strings or nested objects; they are not comparable numbers.
            continue
        else:
            number = _finite_or_none(value)  # NaN, Infinity and ints past a float's range: no number
            if number is not None and number < 0 and metric_direction(str(key)) is not None:
                # No latency, throughput, count or energy is negative: the file is corrupt, and a
                # negative baseline would read as a -200% "improvement".
                raise ResultsError(
                    f"{where}.metrics.{key} is negative ({number:g})",
                    hint="The file is corrupt or was edited; rerun the benchmark.",
                )
            flat[str(key)] = number
    run_number = entry.get("run_number", 1)
    if isinstance(run_number, bool) or not isinstance(run_number, int) or run_number < 1:
        raise ResultsError(f"{where}.run_number must be a positive integer, got {run_number!r}")
    errors = entry.get("errors") or []
    errors = [str(e) for e in errors] if isinstance(errors, list) else [str(errors)]
    passed = entry.get("passed", True)
    if not isinstance(passed, bool):  # "false" is a true string: never read a verdict from text
        raise ResultsError(
            f"{where}.passed must be true or false, got {_shown(passed)}",
            hint="The file is corrupt or was edited; rerun the benchmark.",
        )
    measured = [
        v for k, v in flat.items() if v is not None and metric_direction(k) is not None and k not in _ZERO_IS_GOOD
    ]
    if measured and not any(measured):
        # Zero latency and zero throughput: nothing was measured. Mark it, so it fails the gate
        # as a failed test instead of passing as "unchanged" (or a -100% "improvement").
        passed = False
        errors.insert(0, "every metric is zero: nothing was measured")
    else:
        zeros = [key for key, number in flat.items() if number == 0 and _ZERO_IMPOSSIBLE.fullmatch(key)]
        if zeros:
            # No request gets its first token the instant it is sent: a zero is no measurement. It
            # is dropped (a zero baseline made every change an infinite regression, a zero current
            # value a -100% "improvement"), and the repeat fails, so the gate cannot pass on it.
            for key in zeros:
                flat[key] = None
            passed = False
            errors.insert(
                0,
                f"{', '.join(zeros)} {'is' if len(zeros) == 1 else 'are'} 0, which no measurement "
                "gives: the file is corrupt or was edited; rerun the benchmark",
            )
    return TestResult(test_name=name, run_number=run_number, passed=passed, metrics=flat, errors=errors)


_ZERO_IS_GOOD = frozenset({"failed", "token_count_mismatch", "output_len_mismatch"})
# Latencies from send to a token: never zero. (ITL and TPOT can be: one event may carry every token.)
_ZERO_IMPOSSIBLE = re.compile(r"(mean|median|p\d+(\.\d+)?|min|max)_(ttft|e2el)_ms")


def _refuse_duplicates(results: list[TestResult], path: Path) -> None:
    """One result per (test, repeat): a copied repeat would fake coverage and shrink the spread."""
    seen: dict[tuple[str, int], int] = {}
    for index, result in enumerate(results):
        key = (result.test_name, result.run_number)
        if key in seen:
            raise ResultsError(
                f"{path}: results[{index}] repeats {result.test_name!r} run {result.run_number}, "
                f"already in results[{seen[key]}]",
                hint="Each repeat must appear once; the file is corrupt or was edited, rerun the benchmark.",
            )
        seen[key] = index


def _shown(value: Any) -> str:
    """A value from a file, short and on one line, for a message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _read_json(path: Path) -> dict[str, Any]:
    """A result-set file, read as untrusted: size and nesting capped (kitt.safeload)."""
    from kitt.safeload import load_json

    data = load_json(path, "result file", ResultsError)
    if not isinstance(data, dict):
        raise ResultsError(f"{path} must hold a JSON object")
    return data


def _read_optional_json(path: Path) -> dict[str, Any]:
    return _read_json(path) if path.is_file() else {}


def _parse_timestamp(value: Any, path: Path) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass  # past year 9999, or NaN: not a time
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    raise ResultsError(
        f"{path} has no usable 'timestamp' (got {value!r})",
        hint="metrics.json needs an ISO 8601 timestamp to pick the newest run.",
    )


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None
