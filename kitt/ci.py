"""``kitt ci report``: load, compare, render, publish and gate, as library calls.

The CLI and the GitHub Action both call these functions. Nothing here reads the environment:
the shell layer passes ``summary_path`` (``$GITHUB_STEP_SUMMARY``), ``api_url`` and ``run_url``.
Warnings and notices come back as ``Notice`` data for the caller to print (as ``::warning::``
under Actions). The gate decision is made before publishing, so a failed comment can never
hide a regression.

    fetch_run_results(...)  -> [Notice]        report mode: the benchmark run's results artifact(s)
    fetch_baselines(...)    -> Baselines       the base branch's artifacts, one job or one per job
    base_branch_trend(...)  -> [Notice]        a push's trend of the base branch's history
    build_report(options)   -> Report          load, compare, render; raises KittError
    publish_report(report)  -> ReportOutcome   file / stdout / step summary / PR comment
    execute_ci_report(...)  -> ReportOutcome   both, errors while publishing kept as data
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from kitt.compare import compare_result_sets
from kitt.comparison import Comparison, MetricRow
from kitt.errors import GitHubError, KittError, ResultsError, UsageError
from kitt.github.actions_io import ActionsContext
from kitt.platform import COMMENT_LIMIT, SUMMARY_LIMIT, comment_size
from kitt.importers import has_results, load_baseline_history, load_results
from kitt.redact import neutralise
from kitt.results import METRICS_FILE
from kitt.thresholds import load_thresholds


@dataclass
class ReportOptions:
    """Everything ``kitt ci report`` takes; the CLI maps each flag to the field of the same name."""

    results_dir: Path
    baseline_dir: Path | None = None
    # A matrix in one comment: more result sets (one job each), or ``results_dir`` holds one result
    # set per subfolder. A job is named after its folder; its baseline is ``baseline_dir/<name>``.
    more_results: tuple[Path, ...] = ()
    results_are_jobs: bool = False
    github_token: str | None = None
    repo: str | None = None
    pr: int | None = None
    output: Path | None = None
    threshold: float = 5.0
    thresholds_file: Path | None = None
    fail_on_regression: bool = False
    comment_key: str | None = None
    summary: bool = False
    allow_hardware_mismatch: bool = False
    allow_mismatch: bool = False  # gate even when model, engine or suite differ
    baseline_history: int = 10  # at most this many baseline jobs (newest first) from baseline_dir
    upstream_failure: str | None = None  # the benchmark job's conclusion when not a success (report mode)
    require_comment: bool = False
    # always: create or update the comment; on-regression: create it only when the gate fails
    # (a clean run still corrects an earlier one); never.
    comment_policy: str = "always"
    report_file: Path | None = None  # also keep a copy of the report here (the action's report.md)
    print_report: bool = True  # print the report when it goes nowhere else (the CLI; not the action)
    # Passed in by the shell layer (from GITHUB_STEP_SUMMARY, GITHUB_API_URL, GITHUB_SERVER_URL...).
    summary_path: Path | None = None
    api_url: str | None = None
    run_url: str | None = None
    repo_url: str | None = None  # $GITHUB_SERVER_URL/owner/repo, to link the commits


@dataclass(frozen=True)
class Notice:
    """Something to tell the user; under Actions ``level`` becomes the annotation kind."""

    level: Literal["notice", "warning", "error"]
    message: str


@dataclass
class Report:
    """Rendered comparisons (one per job; a matrix has several) and the gate's decision.

    ``markdown`` fits a PR comment (65,536 characters) and is what is posted, printed or written
    with --output; ``full_markdown`` is cut only at SUMMARY_LIMIT and goes to the step summary.
    """

    comparison: Comparison  # the first job's (the only one outside a matrix)
    markdown: str
    exit_code: int
    notices: list[Notice] = field(default_factory=list)
    full_markdown: str = ""
    jobs: list[tuple[str, Comparison]] = field(default_factory=list)  # (name, comparison) per job

    @property
    def comparisons(self) -> list[Comparison]:
        return [c for _, c in self.jobs] or [self.comparison]

    @property
    def regressions(self) -> int:
        return sum(len(c.regressions) for c in self.comparisons if c.gating)

    @property
    def gate_failed(self) -> bool:
        return any(c.gate_failed for c in self.comparisons)

    @property
    def verdict(self) -> str:
        """The report's one word: the worst job's verdict."""
        from kitt.report.words import worst_verdict

        return worst_verdict(c.verdict for c in self.comparisons)

    @property
    def key_metrics(self) -> dict[str, Any]:
        """Gated metrics per test: baseline, current, change_pct, ci_pct, p_value, verdict; in a
        matrix, per job name first."""
        if len(self.jobs) > 1:
            return {name: _key_metrics(comparison) for name, comparison in self.jobs}
        return _key_metrics(self.comparison)


def _key_metrics(comparison: Comparison) -> dict[str, dict[str, dict[str, Any]]]:
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for row in comparison.rows:
        if row.gated:
            table.setdefault(row.test, {})[row.metric] = row_as_dict(row)
    return table


@dataclass
class ReportOutcome:
    """What happened, for the caller's outputs and exit code."""

    exit_code: int
    report: Report | None = None
    comment_url: str | None = None
    comment_action: str | None = None
    output_path: Path | None = None
    summary_written: bool = False
    printed: bool = False
    notices: list[Notice] = field(default_factory=list)
    error: KittError | None = None

    @property
    def outputs(self) -> dict[str, str]:
        """The report's step outputs, the same for the action and ``kitt ci report``: verdict (the
        report's one word), regressions, comment-url and metrics (JSON, :func:`compact_metrics`)."""
        if self.report is None:
            return {"verdict": "error", "regressions": "0", "comment-url": "", "metrics": "{}"}
        return {
            "verdict": self.report.verdict,
            "regressions": str(self.report.regressions),
            "comment-url": self.comment_url or "",
            "metrics": compact_metrics(self.report.key_metrics),
        }


METRICS_OUTPUT_LIMIT = 64 * 1024  # a job's outputs share 1 MB; a huge sweep must not take it all


def compact_metrics(key_metrics: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The ``metrics`` output: every key metric's numbers, or only current values when that is too long."""
    full = json.dumps(key_metrics, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if len(full) <= METRICS_OUTPUT_LIMIT:
        return full
    current = {test: {name: row.get("current") for name, row in rows.items()} for test, rows in key_metrics.items()}
    short = json.dumps(current, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return short if len(short) <= METRICS_OUTPUT_LIMIT else "{}"


def row_as_dict(row: MetricRow) -> dict[str, Any]:
    """A JSON-ready summary of a row (non-finite numbers become None)."""

    def num(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    return {
        "baseline": num(row.baseline),
        "current": num(row.current),
        "change_pct": num(row.change_pct),
        "ci_pct": [num(row.ci_low_pct), num(row.ci_high_pct)] if row.ci_low_pct is not None else None,
        "p_value": num(row.p_value),
        "verdict": row.verdict.value,
        "threshold_pct": row.threshold_pct,
    }


# --------------------------------------------------------------------------- building


def build_report(options: ReportOptions) -> Report:
    """Load every job's result sets, compare, render and decide the exit code. Raises KittError."""
    from kitt.github.comments import comment_marker
    from kitt.report.render import render_matrix

    thresholds = load_thresholds(options.thresholds_file, options.threshold)
    marker = comment_marker(options.comment_key)
    jobs = []
    notices: list[Notice] = []
    for name, directory in result_jobs(options):
        baseline_dir = options.baseline_dir
        arms = ab_layout(directory)
        if arms is not None and baseline_dir is None:  # an A/B run's folder: its arms are the two sides
            directory, baseline_dir = arms
        current = load_results(directory)
        if not current.results:
            raise ResultsError(
                f"{current.metrics_path} holds no test results",
                hint="The benchmark produced nothing to report; check the run's log.",
            )
        if baseline_dir is not None and name is not None and arms is None:
            baseline_dir = Path(baseline_dir) / name  # each job of a matrix has its own baseline
        history = load_baseline_history(baseline_dir, options.baseline_history)
        comparison = compare_result_sets(
            current,
            history or None,
            thresholds,
            allow_hardware_mismatch=options.allow_hardware_mismatch,
            allow_mismatch=options.allow_mismatch,
            upstream_failure=options.upstream_failure,
        )
        jobs.append((name or "", comparison))
        notices += [
            Notice(n.level, f"{name}: {n.message}" if name else n.message)
            for n in _comparison_notices(comparison, options, baseline_dir)
        ]
    links = dict(marker=marker, run_url=options.run_url, repo_url=options.repo_url)
    full = render_matrix(jobs, limit=SUMMARY_LIMIT, **links)
    markdown = full if comment_size(full) < COMMENT_LIMIT else render_matrix(jobs, **links)
    report = Report(jobs[0][1], markdown, 0, notices, full_markdown=full, jobs=jobs)
    report.exit_code = 1 if options.fail_on_regression and report.gate_failed else 0
    return report


def result_jobs(options: ReportOptions) -> list[tuple[str | None, Path]]:
    """(job name, folder) of each result set to report on; the name is None outside a matrix."""
    folders = [Path(options.results_dir), *(Path(p) for p in options.more_results)]
    if options.results_are_jobs:
        root = folders[0]
        if not root.is_dir():
            raise ResultsError(f"results directory {root} does not exist", hint="Check the path.")
        folders = sorted(p for p in root.iterdir() if p.is_dir() and has_results(p))
        if not folders:
            raise ResultsError(
                f"no result sets under {root}",
                hint="Each job's result set goes in its own subfolder (as download-artifact's `pattern:` writes them).",
            )
    if len(folders) == 1:
        return [(None if not options.results_are_jobs else folders[0].name, folders[0])]
    names = [p.name for p in folders]
    if len(set(names)) != len(names):
        raise UsageError(
            "two result folders have the same name, so their jobs cannot be told apart",
            hint="Give each job's result set a folder of its own name (its artifact name).",
        )
    return list(zip(names, folders))


@dataclass(frozen=True)
class Baselines:
    """What :func:`fetch_baselines` found: the folder to pass as ``ReportOptions.baseline_dir``
    (None: no baseline), the jobs that have none yet, and the API errors it was told to keep."""

    path: Path | None
    notices: tuple[Notice, ...] = ()
    errors: tuple[GitHubError, ...] = ()


def fetch_baselines(
    *,
    token: str,
    repo: str,
    artifact: str,
    jobs: list[str] | None,
    base_branch: str | None,
    api_url: str | None,
    history: int,
    temp_dir: Path | None = None,
    keep_errors: bool = False,
) -> Baselines:
    """Download the baseline for ``kitt ci report``, for the CLI and the action alike.

    One job (``jobs`` None): the base branch's newest artifact named ``artifact`` (with up to
    ``history`` baseline jobs). A matrix (``jobs``: the job folders' names): ``artifact`` is a
    pattern, and each job whose name it matches gets the base branch's artifact of its own name,
    in a subfolder of that name. A job with no baseline yet is a notice, not an error. An API error
    raises, unless ``keep_errors`` (the action: the report still goes out, uncompared, and the
    error fails the step), when that job goes without and the error comes back in ``errors``.
    """
    import fnmatch
    import tempfile

    from kitt.github.baseline import download_baseline

    scratch = Path(tempfile.mkdtemp(prefix="kitt-baseline-", dir=temp_dir)) / "baseline"
    notices: list[Notice] = []
    errors: list[GitHubError] = []

    def one(name: str, dest: Path) -> Path | None:
        try:
            found = download_baseline(
                token=token, repo=repo, name=name, dest=dest, base_branch=base_branch, api_url=api_url, history=history
            )
        except GitHubError as error:
            if not keep_errors:
                raise
            errors.append(error)
            return None
        if not found:
            notices.append(
                Notice("notice", f"No baseline{f' for {name}' if jobs is not None else ''}: {found.reason}.")
            )
            return None
        return found.path

    if jobs is None:
        path = one(artifact, scratch)
    else:
        for job in sorted(jobs):
            if fnmatch.fnmatchcase(job, artifact):
                one(job, scratch / job)
        path = scratch
    return Baselines(path, tuple(notices), tuple(errors))


def ab_layout(directory: Path) -> tuple[Path, Path] | None:
    """(candidate, baseline) when ``directory`` is what ``kitt run`` writes in A/B mode, else None."""
    candidate, baseline = Path(directory) / "candidate", Path(directory) / "baseline"
    if (candidate / METRICS_FILE).is_file() and (baseline / METRICS_FILE).is_file():
        return candidate, baseline
    return None


def _comparison_notices(comparison: Comparison, options: ReportOptions, baseline_dir: Path | None) -> list[Notice]:
    from kitt.report.render import hardware_note, problem_lines, regression_line

    notices: list[Notice] = []
    if comparison.baseline is None:
        where = f" under {baseline_dir}" if baseline_dir else ""
        notices.append(Notice("notice", f"No baseline yet{where}: the report shows this run without a comparison."))
    if comparison.hardware_mismatch:
        level: Literal["notice", "warning"] = "notice" if comparison.gating else "warning"
        notices.append(Notice(level, hardware_note(comparison) or "Hardware differs."))
    level_for_gate: Literal["error", "warning"] = "error" if options.fail_on_regression else "warning"
    notices += [Notice(level_for_gate, line) for line in problem_lines(comparison)]
    if comparison.nothing_compared and not comparison.incomplete:
        notices.append(
            Notice(
                level_for_gate,
                "Nothing was compared: no gated metric of this run has a value in "
                "the baseline (another suite, or renamed metrics?), so this is a mismatch, not a pass.",
            )
        )
    notices += [
        Notice(level_for_gate if comparison.gating else "warning", regression_line(row, comparison.gating))
        for row in comparison.regressions
    ]
    return notices


# --------------------------------------------------------------------------- publishing


Upsert = Callable[..., Any]


def publish_report(
    report: Report,
    options: ReportOptions,
    *,
    stdout: TextIO | None = None,
    upsert: Upsert | None = None,
) -> ReportOutcome:
    """Deliver the report where the options say, and settle the exit code. Both shells use it.

    ``--output`` writes a file instead of posting. Token, repo and PR together post (or update)
    the PR comment, as ``comment_policy`` allows. With neither, the report is printed. ``summary`` appends it to
    ``summary_path``; so does a failed comment (or, without a summary file, the report is printed),
    so the report is never lost. A comment failure sets exit code 1 (a 403 only with
    ``require_comment``) and never clears a gate failure.
    """
    out = stdout or sys.stdout
    outcome = ReportOutcome(exit_code=report.exit_code, report=report, notices=list(report.notices))
    for path in (options.output, options.report_file):
        if path is not None:
            write_text(Path(path), report.markdown)
    outcome.output_path = Path(options.output) if options.output is not None else None
    if options.summary:
        _append_summary(outcome, options, report.full_markdown or report.markdown)
    can_comment = options.output is None and all((options.github_token, options.repo, options.pr))
    want_comment = can_comment and options.comment_policy != "never"
    if options.output is None and not can_comment and options.print_report:
        missing = [
            n
            for n, v in (("--github-token", options.github_token), ("--repo", options.repo), ("--pr", options.pr))
            if not v
        ]
        if len(missing) < 3:
            outcome.notices.append(Notice("warning", f"Not posting a PR comment: {', '.join(missing)} not given."))
        out.write(neutralise(report.markdown))  # results may be a fork's: no workflow command in the log
        out.flush()
        outcome.printed = True
    if options.pr and options.comment_policy != "never" and not options.print_report and not can_comment:
        outcome.notices.append(Notice("warning", "No comment: GITHUB_REPOSITORY or the github-token input is missing."))
    if options.require_comment and not want_comment:
        _fail(
            outcome,
            UsageError(
                "--require-comment needs --github-token, --repo and --pr (and no --output)",
                hint="On push events there is no pull request to comment on; drop --require-comment there.",
            ),
        )
    if want_comment:
        _comment(outcome, report, options, upsert, out)
    return outcome


def write_text(path: Path, text: str, what: str = "the report") -> None:
    """Write a report file, creating its folder; an OSError becomes one KittError line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KittError(f"could not write {what} to {path} ({exc.strerror or exc})") from None


def _comment(
    outcome: ReportOutcome, report: Report, options: ReportOptions, upsert: Upsert | None, out: TextIO
) -> None:
    from kitt.github.comments import CommentForbidden, upsert_pr_comment

    post = upsert or upsert_pr_comment
    try:
        result = post(
            token=str(options.github_token),
            repo=str(options.repo),
            pr=int(options.pr or 0),
            body=report.markdown,
            key=options.comment_key or None,
            api_url=options.api_url,
            create=options.comment_policy == "always" or report.gate_failed,
        )
    except GitHubError as exc:
        if isinstance(exc, CommentForbidden) and not options.require_comment:
            outcome.notices.append(Notice("warning", f"The PR comment was not posted: {exc}"))
        else:
            _fail(outcome, exc)
        _keep_report(outcome, options, report, out)
        return
    if result is None:  # on-regression, a clean run and no earlier comment: nothing to correct
        return
    outcome.comment_url = str(result.url)
    outcome.comment_action = str(result.action)
    outcome.notices.append(Notice("notice", f"PR comment {result.action}: {result.url}"))


def _keep_report(outcome: ReportOutcome, options: ReportOptions, report: Report, out: TextIO) -> None:
    """The comment failed: the report goes to the step summary, or else to the log."""
    if outcome.summary_written:
        return
    if options.summary_path is not None:
        _append_summary(outcome, options, report.full_markdown or report.markdown)
    if not outcome.summary_written:
        out.write(neutralise(report.markdown))
        out.flush()
        outcome.printed = True


def _fail(outcome: ReportOutcome, error: KittError) -> None:
    outcome.error = outcome.error or error
    outcome.exit_code = max(outcome.exit_code, error.exit_code)
    outcome.notices.append(Notice("error", str(error)))


def _append_summary(outcome: ReportOutcome, options: ReportOptions, markdown: str) -> None:
    from kitt.github.actions_io import append_summary

    if options.summary_path is None:
        outcome.notices.append(Notice("warning", "--summary was given but there is no step summary file to append to."))
        return
    try:
        outcome.summary_written = append_summary(
            markdown if markdown.endswith("\n") else markdown + "\n", Path(options.summary_path)
        )
    except OSError as exc:
        outcome.notices.append(Notice("warning", f"Could not append to the step summary {options.summary_path}: {exc}"))


def fetch_run_results(
    *, token: str, repo: str, run_id: int, artifact: str, dest: Path, api_url: str | None = None
) -> list[Notice]:
    """Unpack the results artifact (or, for a pattern, every match: one folder per job) that the
    benchmark workflow run ``run_id`` uploaded into ``dest``; for a pattern, a notice of how many
    jobs. Raises ResultsError when the run uploaded none."""
    from kitt.github.baseline import download_run_artifact, is_pattern

    found = download_run_artifact(token=token, repo=repo, run_id=run_id, name=artifact, dest=dest, api_url=api_url)
    if not found:
        raise ResultsError(
            f"no results to report on: {found.reason}",
            hint="Check that the benchmark workflow uploads `results-artifact` under this name.",
        )
    if not is_pattern(artifact):
        return []
    return [Notice("notice", f"Reporting on {found.jobs} results artifacts matching {artifact!r} in one comment.")]


def base_branch_trend(
    results_dir: Path, history_dir: Path, thresholds_file: Path | None, threshold: float, context: ActionsContext
) -> list[Notice]:
    """On a push to the default branch (``context``'s event): the history's trend with this job
    appended goes into the step summary, and each new change point that made serving slower is a
    warning naming its commit; on any other event, nothing: the history is the default branch's
    (a push has no base ref), and only its own pushes extend it. A history that cannot be analysed
    is a warning, never a failure of the push's job."""
    default_branch = context.event_object("repository").get("default_branch")  # untrusted: any type
    if context.event_name != "push" or context.ref_name != default_branch:
        return []
    from kitt.github.actions_io import append_summary
    from kitt.report.trend import render_trend, warning_lines
    from kitt.results import load_result_set
    from kitt.trend import load_history, trend_with_newest

    try:
        jobs = [*load_history(history_dir), load_result_set(results_dir)]
        update = trend_with_newest(jobs, load_thresholds(thresholds_file, threshold))
    except KittError as error:
        return [Notice("warning", f"No trend of the base branch: {error}")]
    append_summary(render_trend(update.trend, new=update.new), context.summary_path)
    return [Notice("warning", line) for line in warning_lines(update.new, update.trend)]


# --------------------------------------------------------------------------- whole flow


def execute_ci_report(
    options: ReportOptions,
    *,
    stdout: TextIO | None = None,
    upsert: Upsert | None = None,
) -> ReportOutcome:
    """Build and publish. Errors while building (unreadable results, bad thresholds) propagate
    as KittError; errors while publishing are recorded in the outcome (the gate still stands)."""
    report = build_report(options)
    return publish_report(report, options, stdout=stdout, upsert=upsert)
