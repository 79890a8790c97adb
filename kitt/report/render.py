"""Render comparisons and run summaries to Markdown with the jinja2 templates beside this module.

Python turns finished ``kitt.comparison.Comparison``\\s into views of preformatted strings; the
templates only lay them out. The words are in ``kitt.report.words``, the tables and charts in
``kitt.report.tables``; nothing here computes a statistic. A report is one job (a comparison) or
a matrix of jobs in one comment: a headline over all, then a section per job. It must stay under
GitHub's 65,536-character limit, so ``_fit`` cuts the details first (with a note), then the
charts and notes, and never the verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from kitt import __version__
from kitt.comparison import Comparison, MetricRow, Verdict
from kitt.gate import MIN_HISTORY
from kitt.github.platform import COMMENT_LIMIT, comment_size
from kitt.report import tables
from kitt.report.words import (
    code, commit_link, commit_of, date_label, hardware_label, headline, legend, matrix_headline, md, plural,
)  # fmt: skip
from kitt.results import ResultSet

__all__ = ["hardware_label", "hardware_note", "md", "problem_lines", "regression_line", "render_matrix",
           "render_report", "render_summary"]  # fmt: skip


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


# --------------------------------------------------------------------------- sentences


def hardware_note(comparison: Comparison) -> str | None:
    """The sentence about the hardware of the two sides, when there is something to say."""
    if comparison.hardware_mismatch:
        base, cur = comparison.baseline, comparison.current
        assert base is not None
        described = (f"baseline {hardware_label(base)} ({base.fingerprint}), "
                     f"current {hardware_label(cur)} ({cur.fingerprint})")  # fmt: skip
        if comparison.gating:
            return f"Hardware differs ({described}); gated anyway because of --allow-hardware-mismatch."
        return (
            f"Hardware differs ({described}), so the comparison is shown but not gated: "
            "numbers from different machines are not comparable. Pass --allow-hardware-mismatch to gate anyway."
        )
    side = comparison.unknown_fingerprint
    if side:
        side = "current run" if side == "current" else side
        return f"The {side} has no hardware fingerprint (hardware.json), so the hardware could not be checked."
    return None


def problem_lines(comparison: Comparison) -> list[str]:
    """Why the results are incomplete (which fails the gate), one sentence each (plain text)."""
    gap = comparison.incomplete
    lines = []
    if gap.upstream:
        lines.append(f"The benchmark job did not succeed (its conclusion: {gap.upstream}), so these results cannot pass.")
    if gap.run_failed:
        lines.append("The current run did not finish cleanly (metrics.json says passed: false), so it cannot pass.")
    lines += [f"{t.name} failed in the current run" + (f": {t.error}" if t.error else "") for t in gap.failed_tests]
    lines += [f"{name} is in the baseline but missing from the current run." for name in gap.missing_tests]
    lines += [f"{name} ran {ran} of {want} repeats." for name, ran, want in gap.missing_repeats]
    lines += [
        f"{test}: gated metrics missing from the current run (present in the baseline): {', '.join(names)}."
        for test, names in gap.missing_metrics
    ]
    return lines


def regression_line(row: MetricRow, gating: bool) -> str:
    """One regression as an annotation (plain text)."""
    change = f"{row.change_pct:+.1f}%" if row.change_pct is not None else "changed"
    prefix = "" if gating else "not gated (hardware differs): "
    return f"{prefix}{row.test} {row.metric} regressed {change} (threshold {row.threshold_pct:g}%)"


def _identity_notes(comparison: Comparison) -> list[str]:
    differs = comparison.identity.differs
    if not differs:
        return []
    described = "; ".join(f"{name}: baseline {b}, current {c}" for name, b, c in differs)
    if comparison.allow_mismatch:
        return [f"The two sides measured different things ({described}); gated anyway because of --allow-mismatch."]
    return [f"The two sides measured different things ({described}), so the comparison is shown but not gated. "
            "Pass --allow-mismatch to gate anyway."]


def _design_note(comparison: Comparison) -> str:
    jobs = len(comparison.history)
    if comparison.design == "paired":
        pairs = max((r.n_current for r in comparison.rows if r.method == "paired t"), default=0)
        ab = comparison.current.config.get("ab") or {}
        differs = ab.get("differs") if isinstance(ab.get("differs"), dict) else {}
        what = "; ".join(f"{name}: {code(values[0])} → {code(values[1])}" for name, values in differs.items()
                         if isinstance(values, list) and len(values) == 2)
        note = (f"A/B in one job ({md(ab.get('schedule', 'interleaved'))}): baseline and candidate ran as up to "
                f"{plural(pairs, 'back-to-back pair')} per test, in balanced order, so the runner's shift and slow "
                "drift cancel; each metric is judged on its per-pair differences.")
        note += f" The arms differ in {what}." if what else " The arms are identical (an A/A run)."
        dropped = comparison.pairs_dropped
        if dropped:
            note += " Pairs dropped to keep the order balanced after failed repeats: " + ", ".join(
                f"{md(test)} {count}" for test, count in dropped.items()) + "."
        return note
    if comparison.design == "history":
        dates = sorted(r.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d") for r in comparison.history)
        return (f"Compared with {jobs} baseline jobs ({dates[0]} to {dates[-1]}): the gate measures how much a "
                "whole job shifts from run to run and judges this run against that spread.")
    few = f"Only {plural(jobs, 'baseline job')}, so compared with the newest: " if jobs > 1 else "One baseline job: "
    return (few + "run-to-run drift was not measured, so a shift of the whole runner (clocks, thermals, "
            "neighbours) can look like a change. For a verdict that holds under CI noise, keep a history of "
            f"baseline jobs (`baseline-history`, at least {MIN_HISTORY}; the default downloads the last 10).")


def _settle(rows: list[MetricRow]) -> list[str]:
    """What would decide the inconclusive rows: one clause per kind of advice, the repeat counts as a range."""
    advice: dict[str, None] = {}
    counts = sorted({r.repeats_to_settle for r in rows if r.method != "history t" and r.repeats_to_settle})
    if counts:
        span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        them = "it" if len(rows) == 1 else "them"
        advice[f"about {span} repeats a side would settle {them}, if the changes are real"] = None
    for row in rows:
        if row.method == "history t":
            advice["the change is within this runner's job-to-job spread; rerun the job, or judge it "
                   "against more baseline jobs"] = None
        elif not row.repeats_to_settle:
            advice["more repeats, or a history of baseline jobs, would settle it"] = None
    return list(advice)


def _notes(comparison: Comparison) -> list[str]:
    if comparison.baseline is None:
        return ["No baseline yet: nothing to compare against, so nothing is gated. This run can become the baseline.",
                *comparison.current.definitions]
    notes = list(dict.fromkeys(comparison.current.definitions + comparison.baseline.definitions))
    notes.append(_design_note(comparison))
    notes += [f"Test {name} is only in the baseline, so it is not compared." for name in comparison.tests_only_in_baseline]
    notes += [f"Test {name} is only in the current run, so it is not compared." for name in comparison.tests_only_in_current]
    single = [r for r in comparison.rows if r.method == "threshold only"]
    if single:
        notes.append(
            f"{len(single)} gated metrics have a single repeat on a side, so only the plain threshold "
            "applies: the significance test needs repeats (set `repeats: 5` in the suite)."
        )
    few = min((min(r.n_baseline, r.n_current) for r in comparison.rows if r.method == "moderated t"), default=5)
    if few < 5:
        notes.append(
            f"Some gated metrics have only {few} repeats on a side, so the significance test is weak: by simulation, "
            "a 10% regression of one metric is caught about 2 times in 3 with 3 repeats, 95% of the time with 5."
        )
    for side, verdict in (("baseline", Verdict.ONLY_BASELINE), ("current run", Verdict.ONLY_CURRENT)):
        if names := comparison.metrics_only_in(verdict):
            notes.append(f"Only in the {side}, so not compared: {', '.join(names)}.")
    return notes


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

    parts = [f"**{both(lambda r: r.model)}**", both(lambda r: r.engine), f"suite {both(lambda r: r.suite_name)}",
             both(hardware_label)]  # fmt: skip
    repeats = max((t.n_current for t in comparison.tests), default=0)
    if base is None:
        parts.append(plural(repeats, "repeat"))
        parts.append(f"this run {_side(cur, repo_url)}")
    else:
        base_repeats = max((t.n_baseline for t in comparison.tests), default=0)
        parts.append(f"{plural(repeats, 'repeat')} a side" if base_repeats == repeats
                     else f"{base_repeats} vs {plural(repeats, 'repeat')}")  # fmt: skip
        jobs = len(comparison.history)
        history = f" (newest of {jobs} jobs)" if jobs > 1 else ""
        parts.append(f"baseline {_side(base, repo_url)}{history} → this run {_side(cur, repo_url)}")
    return " · ".join(parts)


_DATASET_NAMES = {"openai-chat": "OpenAI chat", "sharegpt": "ShareGPT", "prompts": "Prompts"}


def sent_line(result_set: ResultSet) -> str:
    """``Sent: ShareGPT sample (sha 1a2b3c), 512 requests, input 12–1,830 tokens (median 210, exact),
    output ≤ 256, gamma 4 req/s (burstiness 0.5)``, from config.json's workload; empty for the
    plain fixed-length synthetic workload (and for result sets written before it was recorded)."""
    workload = result_set.config.get("workload")
    if not isinstance(workload, dict) or workload.get("plain", True) or not isinstance(workload.get("tests"), dict):
        return ""
    method = str(workload.get("length_method") or "")
    exactness = "exact" if method.startswith("exact") else method or "approximate"
    tests = workload["tests"]
    described = []
    for name, test in tests.items():
        if not isinstance(test, dict):
            continue
        parts = []
        dataset = test.get("dataset")
        if isinstance(dataset, dict):
            sha = str(dataset.get("sha256") or "")[:6]
            parts.append(f"{_DATASET_NAMES.get(str(dataset.get('format')), 'dataset')} sample (sha {sha})")
        else:
            parts.append("synthetic prompts")
        parts.append(plural(int(test.get("requests") or 0), "request"))
        for key, label, unit in (("input_tokens", "input", " tokens"), ("output_tokens", "output", "")):
            stats = test.get(key)
            if not isinstance(stats, dict):
                continue
            low, high, median = stats.get("min"), stats.get("max"), stats.get("median")
            if label == "input":
                spread = f"{low:,}{unit}" if low == high else f"{low:,}–{high:,}{unit}"
                middle = "" if low == high else f"median {median:,.0f}, "
                parts.append(f"input {spread} ({middle}{exactness})")
            else:
                parts.append(f"output {high:,}" if low == high else f"output ≤ {high:,}")
        rates, arrival = test.get("rates") or [], test.get("arrival")
        if rates and isinstance(arrival, dict):
            text = f"{arrival.get('kind')} {', '.join(f'{r:g}' for r in rates)} req/s"
            if arrival.get("kind") == "gamma":
                text += f" (burstiness {arrival.get('burstiness'):g})"
            if arrival.get("ramp_up_s"):
                text += f", ramp-up {arrival.get('ramp_up_s'):g} s"
            parts.append(text)
        if test.get("duration_s"):
            parts.append(f"levels of at most {test['duration_s']:g} s")
        if test.get("skipped"):
            parts.append(f"{plural(int(test['skipped']), 'prompt')} skipped (past the context)")
        described.append((f"{code(name)}: " if len(tests) > 1 else "") + md(", ".join(parts)))
    return "Sent: " + "; ".join(described) if described else ""


def _warnings(comparison: Comparison) -> list[str]:
    """What changes how to read the verdict: another machine, model, engine or suite."""
    if comparison.baseline is None:
        return []
    warnings = [note] if (note := hardware_note(comparison)) else []
    return [md(w) for w in warnings + _identity_notes(comparison)]


def _after_key(comparison: Comparison) -> list[str]:
    lines = []
    if comparison.inconclusive:
        lines.append("🟡 To settle the inconclusive ones: " + "; ".join(_settle(comparison.inconclusive)) + ".")
    unchanged = len(comparison.unchanged)
    if unchanged and comparison.baseline is not None and (comparison.regressions or comparison.improvements
                                                          or comparison.inconclusive):  # fmt: skip
        lines.append(f"{plural(unchanged, 'other gated metric')} unchanged (within the threshold).")
    return lines


def _job(comparison: Comparison, name: str, repo_url: str | None) -> _Job:
    compared = comparison.baseline is not None
    key_tables = tables.changed_tables(comparison) if compared else tables.current_tables(comparison.tests)
    return _Job(
        name=md(name),
        headline=headline(comparison),
        meta=_meta(comparison, repo_url),
        problems=[md(p) for p in problem_lines(comparison)],
        warnings=_warnings(comparison),
        key_title="What changed" if compared else "Key metrics (typical value of the repeats, ± their CV)",
        key_tables=key_tables,
        legend=legend({tables.mark(r, comparison.gating) for r in comparison.rows if r.gated}) if compared and key_tables
        else "",
        after_key=_after_key(comparison),
        charts=tables.charts(comparison.charts, comparison),
        details=tables.details_tables(comparison) if compared else tables.current_details(comparison.tests),
        notes=[md(n) for n in _notes(comparison)],
        verdict=comparison.verdict,
        history_charts=_history_charts(comparison),
        sent=sent_line(comparison.current),
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
        test = " / ".join({"history": "against the baseline jobs' spread", "single": "moderated t on log values"}[d]
                          for d in sorted(designs))  # fmt: skip
        parts.append(f"regression / improvement: beyond the threshold and significant ({test}, Holm-corrected, "
                     f"family α = {compared[0].alpha:g})")  # fmt: skip
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
    view = _View(marker, matrix_headline([j.verdict for j in sections]), overview, sections,
                 _footer(run_url, [c for _, c in jobs]))  # fmt: skip
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
    lighter = replace(view, jobs=[replace(j, charts=[], history_charts=[], notes=[]) for j in view.jobs])
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
        candidate = replace(bare, jobs=[replace(j, key_tables=[], legend="", problems=_cut(j.problems, keep),
                                                  after_key=[]) for j in bare.jobs])  # fmt: skip
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
    lead = f"{plural(len(comparison.tests), 'test')}" + (f", {len(failed)} failed" if failed else ", all passed")
    job = replace(
        job,
        headline=f"kitt benchmark: {md(result_set.model)} on {md(result_set.engine)}",
        meta=f"{job.meta} · {lead}",
        problems=[f"{code(name)} failed" for name in failed] + [md(f) for f in _strings(result_set.raw.get("failures"))],
        notes=[md(note) for note in _strings(result_set.raw.get("notes"))],
    )
    return _render("summary.md.j2", _View("", job.headline, [], [job], _footer(run_url, [])))
