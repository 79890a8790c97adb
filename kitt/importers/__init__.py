"""Other benchmark tools' result files, read as kitt result sets: bring your own harness.

``kitt ci report`` gates and comments on the files these tools write, as they are, beside
kitt's own ``metrics.json``. A file is recognised by its content, never by its name; each tool
has one reader module here, registered by name in :data:`READERS`:

    vllm_bench      ``vllm bench serve --save-result`` JSON (one file: one repeat of one level)
    guidellm        GuideLLM's JSON report (``benchmarks[]``: one load level each)
    nvidia          AIPerf's ``profile_export_aiperf.json`` and genai-perf's ``*_genai_perf.json``
    inference_perf  inference-perf's ``stage_N_lifecycle_metrics.json`` (one level each; the
                    whole-run ``summary_lifecycle_metrics.json`` only when alone; seconds)
    llmperf         LLMPerf's ``*_summary.json`` (``results_ttft_s_*``, seconds)

Every reader maps the tool's figures to kitt's (vLLM's) metric names and definitions, or gives
a figure that means something else a name of its own, so it is shown and never gated as a
kitt metric; a one-line note per such difference travels on the result set
(``ResultSet.definitions``) into the report. The tool is the result set's suite, so a baseline
from one tool and a current run from another (or from kitt) is an identity mismatch: shown,
not gated.

A folder of files is one job: files of one tool, each file one repeat of the load levels it
holds; repeats get ``run_number`` 1..N in the order of the files' own timestamps. A folder of
baseline jobs (a history) is read by :func:`load_baseline_history`, here below ``kitt.ci`` (its
report) and ``kitt.run`` (``--repeats auto`` against a history) so both read it alike.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from kitt.errors import ResultsError
from kitt.importers import guidellm, inference_perf, llmperf, nvidia, vllm_bench
from kitt.importers.base import Reader
from kitt.results import HISTORY_JOB_FOLDER, METRICS_FILE, ResultSet, TestResult, load_result_set

MAX_FILE_BYTES = 512 * 1024 * 1024  # genai-perf's raw profile_export.json can be large; beyond this, skip


def _registry() -> dict[str, Reader]:
    readers = [vllm_bench.READER, guidellm.READER, *nvidia.READERS, inference_perf.READER, llmperf.READER]
    return {reader.name: reader for reader in readers}


READERS: dict[str, Reader] = {}


def readers() -> dict[str, Reader]:
    if not READERS:
        READERS.update(_registry())
    return READERS


def recognise(data: Any) -> Reader | None:
    """The reader for a parsed JSON document, or None when no tool wrote it."""
    if not isinstance(data, dict) or isinstance(data.get("results"), list) and "schema_version" in data:
        return None
    return next((r for r in readers().values() if _safe(r.recognise, data)), None)


def _safe(check: Callable[[dict[str, Any]], bool], data: dict[str, Any]) -> bool:
    try:
        return bool(check(data))
    except (KeyError, TypeError, AttributeError, IndexError):
        return False


def _json_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*.json")
        if p.is_file() and p.name != METRICS_FILE and not p.name.startswith(".") and p.stat().st_size <= MAX_FILE_BYTES
    )


def _parse(path: Path) -> list[Any]:
    """The JSON documents in ``path``: one, or one a line (``vllm bench serve --append-result``)."""
    try:
        text = path.read_text(encoding="utf-8")
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            lines = [line for line in text.splitlines() if line.strip()]
            if len(lines) < 2:
                raise exc from None
            return [json.loads(line) for line in lines]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(
            f"{path} is not valid JSON ({exc})",
            hint="The tool that wrote it probably failed or was cut off; rerun the benchmark.",
        ) from None


def tool_files(directory: Path) -> list[tuple[Path, Reader, dict[str, Any]]]:
    """Every recognised tool document under ``directory``: (path, reader, parsed document)."""
    found = []
    for path in _json_files(directory):
        for data in _parse(path):
            reader = recognise(data)
            if reader is not None:
                found.append((path, reader, data))
    return found


def has_results(directory: Path) -> bool:
    """True when ``directory`` holds a kitt metrics.json or a file another tool wrote."""
    directory = Path(directory)
    if next(directory.rglob(METRICS_FILE), None) is not None:
        return True
    return any(recognise(data) for path in _json_files(directory) for data in _parse(path))


def has_results_file(path: Path) -> bool:
    """True when the JSON file at ``path`` is one that another tool wrote."""
    if not path.is_file() or path.name == METRICS_FILE or path.name.startswith("."):
        return False
    if path.stat().st_size > MAX_FILE_BYTES:
        return False
    return any(recognise(data) is not None for data in _parse(path))


def load_results(directory: Path) -> ResultSet:
    """kitt's newest result set under ``directory`` if there is one, else the other tool's files."""
    directory = Path(directory)
    if not directory.is_dir() or next(directory.rglob(METRICS_FILE), None) is not None:
        return load_result_set(directory)
    found = tool_files(directory)
    if not found:
        names = ", ".join(sorted(readers()))
        raise ResultsError(
            f"no {METRICS_FILE} and no other benchmark tool's result file found under {directory}",
            hint=f"Point the flag at the folder that `kitt run -o` or your tool wrote (known tools: {names}).",
        )
    return result_set_from(directory, found)


def result_set_from(directory: Path, found: list[tuple[Path, Reader, dict[str, Any]]]) -> ResultSet:
    files = [(path, reader.read(data, path)) for path, reader, data in found]
    tools = sorted({tool_file.tool for _, tool_file in files})
    if len(tools) > 1:
        raise ResultsError(
            f"{directory} mixes result files of {', '.join(tools)}",
            hint="Keep each tool's files (and each job's) in a folder of their own.",
        )
    files.sort(key=lambda item: (item[1].timestamp or _mtime(item[0]), str(item[0])))
    results: list[TestResult] = []
    runs: dict[str, int] = {}
    for _, tool_file in files:
        for level in tool_file.levels:
            runs[level.test_name] = runs.get(level.test_name, 0) + 1
            results.append(
                TestResult(level.test_name, runs[level.test_name], level.passed, level.metrics, level.errors)
            )
    newest_path, newest = files[-1]
    definitions = list(dict.fromkeys(line for _, tool_file in files for line in tool_file.definitions))
    return ResultSet(
        directory=directory,
        metrics_path=newest_path,
        schema_version=None,
        suite_name=tools[0],
        timestamp=newest.timestamp or _mtime(newest_path),
        engine=_one({f.engine for _, f in files}),
        model=_one({f.model for _, f in files}),
        passed=all(r.passed for r in results),
        results=results,
        raw={"tool": tools[0], "files": [str(p) for p, _ in files], "notes": definitions},
        definitions=definitions,
    )


def _one(values: set[str]) -> str:
    return values.pop() if len(values) == 1 else "unknown"


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def load_baseline_history(directory: Path | None, limit: int = 10) -> list[ResultSet]:
    """The baseline jobs under ``directory``, newest first, at most ``limit``; [] when there are none yet.

    ``directory`` holds one result set (its own metrics.json, or one subfolder), or several, one
    per subfolder (each a baseline job, as downloaded). Another tool's files count as a result
    set (``kitt.importers``): wherever they sit under ``directory`` they are one job's runs (every
    tool but vllm bench serve writes a folder per run), unless the subfolders are jobs as kitt's
    history download names them (``01-run<id>``, :data:`kitt.results.HISTORY_JOB_FOLDER`) or
    hold kitt result sets. A baseline that exists but cannot be read is an error, never "no baseline".
    """
    if directory is None:
        return []
    directory = Path(directory)
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise ResultsError(
            f"baseline path {directory} is not a directory", hint="Pass the folder holding metrics.json."
        )
    top_level = (directory / METRICS_FILE).is_file() or any(has_results_file(p) for p in directory.glob("*.json"))
    if top_level:
        jobs = [directory]
    else:
        found = sorted(p for p in directory.iterdir() if p.is_dir() and has_results(p))
        jobs = [p for p in found if HISTORY_JOB_FOLDER.fullmatch(p.name) or next(p.rglob(METRICS_FILE), None)]
        if not jobs and found:
            jobs = [directory]  # another tool's runs, a folder each: one job
    sets = [result_set for job in jobs if (result_set := load_results(job)).results]
    return sorted(sets, key=lambda r: r.timestamp, reverse=True)[: max(1, limit)]
