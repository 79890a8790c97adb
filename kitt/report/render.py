"""Render comparisons and run summaries to Markdown with the jinja2 templates beside this module.

Python turns finished ``kitt.comparison.Comparison``\\s into views of preformatted strings; the
templates only lay them out. The sentences are in ``kitt.report.sentences``, the words for single
values in ``kitt.report.words``, the tables and charts in ``kitt.report.tables``; this module holds
the views and the fitting, and nothing here computes a statistic. A report is one job (a comparison) or
a matrix of jobs in one comment: a headline over all, then a section per job. It must stay under
GitHub's 65,536-character limit, so ``_fit`` cuts the details first (with a note), then the
charts and notes, and never the verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from kitt import __version__
from kitt.comparison import Comparison
from kitt.platform import COMMENT_LIMIT, comment_size
from kitt.report import sentences, tables
from kitt.report.sentences import hardware_note, problem_lines, regression_line
from kitt.report.words import (
    code,
    commit_link,
    commit_of,
    date_label,
    hardware_label,
    headline,
    legend,
    matrix_headline,
    md,
    plural,
)
from kitt.results import ResultSet

__all__ = [
    "hardware_label",
    "hardware_note",
    "md",
    "problem_lines",
    "regression_line",
    "render_matrix",
    "render_report",
    "render_summary",
]


@dataclass
class _Job:
    """One job's section: its verdict, what changed, and everything else for <details>."""

    name: str
    headline: str
    meta: str
    problems: list[str]
    warnings: list[str]
    key_title: str
    key_tables: list[dict[str, Any]]
    legend: str
    after_key: list[str]
    charts: list[dict[str, Any]]
    details: list[dict[str, Any]]
    notes: list[str]
    curves: list[dict[str, Any]] = field(default_factory=list)  # capacity tests: a chart and a table each
    verdict: str = ""
    history_charts: list[str] = field(default_factory=list)
    sent: str = ""  # one line of what was sent, when it is more than fixed synthetic lengths


@dataclass
class _View:
    marker: str
    headline: str
    overview: list[list[str]]
    jobs: list[_Job]
    footer: str
    cut_notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- views


def _side(result_set: ResultSet, repo_url: str | None) -> str:
    link = commit_link(commit_of(result_set), repo_url)
    return f"{link} ({date_label(result_set)})" if link else date_label(result_set)


def _meta(comparison: Comparison, repo_url: str | None) -> str:
    """One line of what both sides share (a field that differs reads "baseline → current")."""
    cur, base = comparison.current, comparison.baseline

    def both(get: Any) -> str:
        c = md(get(cur))
        b = md(get(base)) if base is not None else c
        return c if b == c else f"{b} → {c}"

    parts = [
        f"**{both(lambda r: r.model)}**",
        both(lambda r: r.engine),
        f"suite {both(lambda r: r.suite_name)}",
        both(hardware_label),
    ]
    repeats = max((t.n_current for t in comparison.tests), default=0)
    if base is None:
        parts.append(plural(repeats, "repeat"))
        parts.append(f"this run {_side(cur, repo_url)}")
    else:
        base_repeats = max((t.n_baseline for t in comparison.tests), default=0)
        parts.append(
            f"{plural(repeats, 'repeat')} a side"
            if base_repeats == repeats
            else f"{base_repeats} vs {plural(repeats, 'repeat')}"
        )
        jobs = len(comparison.history)
        history = f" (newest of {jobs} jobs)" if jobs > 1 else ""
        parts.append(f"baseline {_side(base, repo_url)}{history} → this run {_side(cur, repo_url)}")
    return " · ".join(parts)


def _job(comparison: Comparison, name: str, repo_url: str | None) -> _Job:
    compared = comparison.baseline is not None
    key_tables = tables.changed_tables(comparison) if compared else tables.current_tables(comparison.tests)
    return _Job(
        name=md(name),
        headline=headline(comparison),
        meta=_meta(comparison, repo_url),
        problems=[md(p) for p in problem_lines(comparison)],
        warnings=sentences.warnings(comparison),
        key_title="What changed" if compared else "Key metrics (typical value of the repeats, ± their CV)",
        key_tables=key_tables,
        legend=legend({tables.mark(r, comparison.gating) for r in comparison.rows if r.gated})
        if compared and key_tables
        else "",
        after_key=sentences.after_key(comparison) + sentences.curve_lines(comparison),
        charts=tables.charts(comparison.charts, comparison),
        curves=tables.curves(comparison),
        details=tables.details_tables(comparison) if compared else tables.current_details(comparison.tests),
        notes=[md(n) for n in sentences.notes(comparison)],
        verdict=comparison.verdict,
        history_charts=_history_charts(comparison),
        sent=sentences.sent_line(comparison.current),
    )


# The base branch's recent jobs beside this run, for the first tests of a history comparison.
MAX_HISTORY_CHARTS = 4


def _history_charts(comparison: Comparison) -> list[str]:
    from kitt.report.trend import history_chart
    from kitt.thresholds import metric_direction

    return [
        history_chart(s.metric, metric_direction(s.metric) or "lower", s.jobs, s.current, title_prefix=f"{s.test}: ")
        for s in comparison.history_series[:MAX_HISTORY_CHARTS]
    ]


def _footer(run_url: str | None, comparisons: list[Comparison]) -> str:
    parts = [f"[Workflow run]({run_url})"] if run_url else []
    parts.append(f"kitt {__version__}")
    compared = [c for c in comparisons if c.baseline is not None]
    if compared:
        designs = {"history" if c.design == "history" else "single" for c in compared}
        test = " / ".join(
            {"history": "against the baseline jobs' spread", "single": "moderated t on log values"}[d]
            for d in sorted(designs)
        )
        parts.append(
            f"regression / improvement: beyond the threshold and significant ({test}, Holm-corrected, "
            f"family α = {compared[0].alpha:g})"
        )
    return " · ".join(parts)


# --------------------------------------------------------------------------- rendering


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=False,  # Markdown, not HTML: values are escaped by md() when the view is built
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, view: _View) -> str:
    text = _environment().get_template(template).render(v=view)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_report(
    comparison: Comparison,
    *,
    marker: str,
    run_url: str | None = None,
    repo_url: str | None = None,
    limit: int = COMMENT_LIMIT - 1,
) -> str:
    """The PR comment / job summary for one comparison, at most ``limit`` characters.

    ``marker`` is the hidden first line (``kitt.github.comments.comment_marker(key)``);
    ``repo_url`` (``$GITHUB_SERVER_URL/owner/repo``) links the commits; the default ``limit``
    is GitHub's for a comment.
    """
    job = _job(comparison, "", repo_url)
    view = _View(marker, job.headline, [], [job], _footer(run_url, [comparison]))
    return _fit(view, limit)


def render_matrix(
    jobs: list[tuple[str, Comparison]],
    *,
    marker: str,
    run_url: str | None = None,
    repo_url: str | None = None,
    limit: int = COMMENT_LIMIT - 1,
) -> str:
    """One comment for the jobs of a matrix: a headline over all, a row per job, a section each."""
    if len(jobs) == 1:
        return render_report(jobs[0][1], marker=marker, run_url=run_url, repo_url=repo_url, limit=limit)
    sections = [_job(comparison, name, repo_url) for name, comparison in jobs]
    overview = [[code(name), job.headline] for (name, _), job in zip(jobs, sections)]
    view = _View(
        marker,
        matrix_headline([j.verdict for j in sections]),
        overview,
        sections,
        _footer(run_url, [c for _, c in jobs]),
    )
    return _fit(view, limit)


def _with_details(view: _View, keep: int) -> _View:
    """The view with only the first ``keep`` detail tables, counted across the jobs in order."""
    jobs = []
    for job in view.jobs:
        jobs.append(replace(job, details=job.details[: max(keep, 0)]))
        keep -= len(job.details)
    return replace(view, jobs=jobs)


def _fit(view: _View, limit: int) -> str:
    """The richest rendering within ``limit``: the details go first, then the charts and notes,
    then the key tables; the headlines, problems and warnings stay."""
    text = _render("report.md.j2", view)
    if comment_size(text) <= limit:
        return text
    if limit < COMMENT_LIMIT:
        where = "the full report is in the job summary, and every number in the uploaded metrics.json"
        limit_text = f"to stay under GitHub's {COMMENT_LIMIT:,}-character limit for a comment"
    else:
        where = "every number is in the uploaded metrics.json"
        limit_text = f"to keep this report under {limit:,} characters"
    lighter = replace(view, jobs=[replace(j, charts=[], curves=[], history_charts=[], notes=[]) for j in view.jobs])
    for base, prefix in ((view, ""), (lighter, "Charts and notes were cut, and d")):
        total = sum(len(j.details) for j in base.jobs)

        def attempt(keep: int, base: _View = base, prefix: str = prefix, total: int = total) -> str:
            note = f"{prefix or 'D'}etails were cut to {keep} of {total} tests {limit_text}; {where}."
            return _render("report.md.j2", replace(_with_details(base, keep), cut_notes=[note]))

        if comment_size(attempt(0)) > limit:
            continue
        low, high = 0, total  # the most detail tables that fit
        while low < high:
            middle = (low + high + 1) // 2
            if comment_size(attempt(middle)) <= limit:
                low = middle
            else:
                high = middle - 1
        return attempt(low)
    # Last resort: the verdicts alone. The headlines are never cut; only the longest lists are.
    note = f"Everything but the verdict was cut {limit_text}; {where}."
    bare = replace(_with_details(lighter, 0), cut_notes=[note])
    for keep in (1000, 50, 10):
        candidate = replace(
            bare,
            jobs=[
                replace(j, key_tables=[], legend="", problems=_cut(j.problems, keep), after_key=[]) for j in bare.jobs
            ],
        )
        text = _render("report.md.j2", candidate)
        if comment_size(text) <= limit:
            return text
    return text[: limit - 2] + "…\n"


def _cut(items: list[str], keep: int) -> list[str]:
    return items if len(items) <= keep else [*items[:keep], f"… and {len(items) - keep} more"]


def _strings(value: object) -> list[str]:
    """A list of strings from a metrics.json field that an older or foreign writer may lack."""
    return [str(item) for item in value] if isinstance(value, list) else []


def render_summary(comparison: Comparison, *, run_url: str | None = None) -> str:
    """The summary.md of one run: a current-only comparison (``compare_result_sets(rs, None)``)
    as what ran, key metrics, charts and all metrics. The run's own notes (no GPU, say) go in
    the details, never first."""
    result_set = comparison.current
    failed = [t.name for t in comparison.incomplete.failed_tests]
    job = _job(comparison, "", None)
    # "all passed" only when the run says so: a cancelled run's summary must not read as a pass.
    if failed:
        status = f", {len(failed)} failed"
    elif comparison.incomplete.run_failed:
        status = ", the run did not finish"
    elif not comparison.tests:
        status = ", nothing measured"
    else:
        status = ", incomplete" if comparison.incomplete else ", all passed"
    lead = f"{plural(len(comparison.tests), 'test')}{status}"
    job = replace(
        job,
        headline=f"kitt benchmark: {md(result_set.model)} on {md(result_set.engine)}",
        meta=f"{job.meta} · {lead}",
        problems=[f"{code(name)} failed" for name in failed]
        + [md(f) for f in _strings(result_set.raw.get("failures"))],
        notes=[md(note) for note in _strings(result_set.raw.get("notes"))],
    )
    return _render("summary.md.j2", _View("", job.headline, [], [job], _footer(run_url, [])))
