"""The report's sentences: every note, warning, problem and piece of advice, from a finished comparison.

Each function reads fields of a ``kitt.comparison.Comparison`` (or a row) and returns plain
sentences; ``kitt.report.render`` escapes them where they go into Markdown (``md``) and lays them
out. The words for single values (units, metric names, headlines) are ``kitt.report.words``'s.
"""

from __future__ import annotations

from datetime import timezone

from kitt.comparison import MIN_HISTORY, CapacityCurve, Comparison, MetricRow, Verdict
from kitt.report.words import code, curve_unit, fmt_value, hardware_label, md, plural, slo_words
from kitt.results import ResultSet


def hardware_note(comparison: Comparison) -> str | None:
    """The sentence about the hardware of the two sides, when there is something to say."""
    if comparison.hardware_mismatch:
        base, cur = comparison.baseline, comparison.current
        assert base is not None
        described = (
            f"baseline {hardware_label(base)} ({base.fingerprint}), current {hardware_label(cur)} ({cur.fingerprint})"
        )
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
        lines.append(
            f"The benchmark job did not succeed (its conclusion: {gap.upstream}), so these results cannot pass."
        )
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


def identity_notes(comparison: Comparison) -> list[str]:
    differs = comparison.identity.differs
    notes = []
    if comparison.history_excluded:
        left = "; ".join(f"{when} ({what})" for when, what in comparison.history_excluded[:5])
        more = f" and {len(comparison.history_excluded) - 5} more" if len(comparison.history_excluded) > 5 else ""
        notes.append(
            f"{plural(len(comparison.history_excluded), 'older baseline job')} measured something else and "
            f"{'was' if len(comparison.history_excluded) == 1 else 'were'} left out of the history: {left}{more}."
        )
    if not differs:
        return notes
    described = "; ".join(f"{name}: baseline {b}, current {c}" for name, b, c in differs)
    if comparison.allow_mismatch:
        return notes + [
            f"The two sides measured different things ({described}); gated anyway because of --allow-mismatch."
        ]
    return notes + [
        f"The two sides measured different things ({described}), so the comparison is shown but not gated. "
        "Pass --allow-mismatch to gate anyway."
    ]


def design_note(comparison: Comparison) -> str:
    jobs = len(comparison.history)
    if comparison.design == "paired":
        pairs = max((r.n_current for r in comparison.rows if r.method == "paired t"), default=0)
        ab = comparison.current.config.get("ab") or {}
        differs = ab.get("differs") if isinstance(ab.get("differs"), dict) else {}
        what = "; ".join(
            f"{name}: {code(values[0])} → {code(values[1])}"
            for name, values in differs.items()
            if isinstance(values, list) and len(values) == 2
        )
        note = (
            f"A/B in one job ({md(ab.get('schedule', 'interleaved'))}): baseline and candidate ran as up to "
            f"{plural(pairs, 'back-to-back pair')} per test, in balanced order, so the runner's shift and slow "
            "drift cancel; each metric is judged on its per-pair differences."
        )
        note += f" The arms differ in {what}." if what else " The arms are identical (an A/A run)."
        dropped = comparison.pairs_dropped
        if dropped:
            note += (
                " Pairs dropped to keep the order balanced after failed repeats: "
                + ", ".join(f"{md(test)} {count}" for test, count in dropped.items())
                + "."
            )
        return note
    if comparison.design == "history":
        dates = sorted(r.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d") for r in comparison.history)
        return (
            f"Compared with {jobs} baseline jobs ({dates[0]} to {dates[-1]}): the gate measures how much a "
            "whole job shifts from run to run and judges this run against that spread."
        )
    few = f"Only {plural(jobs, 'baseline job')}, so compared with the newest: " if jobs > 1 else "One baseline job: "
    return (
        few + "run-to-run drift was not measured, so a shift of the whole runner (clocks, thermals, "
        "neighbours) can look like a change. For a verdict that holds under CI noise, keep a history of "
        f"baseline jobs (`baseline-history`, at least {MIN_HISTORY}; the default downloads the last 10)."
    )


def settle(rows: list[MetricRow]) -> list[str]:
    """What would decide the inconclusive rows: one clause per kind of advice, the repeat counts as a range."""
    advice: dict[str, None] = {}
    counts = sorted({r.repeats_to_settle for r in rows if r.method != "history t" and r.repeats_to_settle})
    if counts:
        span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        them = "it" if len(rows) == 1 else "them"
        advice[f"about {span} repeats a side would settle {them}, if the changes are real"] = None
    for row in rows:
        if row.method == "history t":
            advice[
                "the change is within this runner's job-to-job spread; rerun the job, or judge it "
                "against more baseline jobs"
            ] = None
        elif not row.repeats_to_settle:
            advice["more repeats, or a history of baseline jobs, would settle it"] = None
    return list(advice)


def notes(comparison: Comparison) -> list[str]:
    if comparison.baseline is None:
        return [
            "No baseline yet: nothing to compare against, so nothing is gated. This run can become the baseline.",
            *comparison.current.definitions,
        ]
    notes = list(dict.fromkeys(comparison.current.definitions + comparison.baseline.definitions))
    notes.append(design_note(comparison))
    notes += _repeats_auto_notes(comparison.current)
    notes += _startup_notes(comparison)
    notes += [
        f"Test {name} is only in the baseline, so it is not compared." for name in comparison.tests_only_in_baseline
    ]
    notes += [
        f"Test {name} is only in the current run, so it is not compared." for name in comparison.tests_only_in_current
    ]
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
    flagged = sorted(
        {
            r.test
            for r in comparison.rows
            if r.metric == "usage_count_rejected" and r.current_spread is not None and (r.current_spread.high or 0) > 0
        }
    )
    if flagged:
        notes.append(
            f"The server's usage counts disagreed with its streams in {', '.join(flagged)}: those requests' "
            "tokens were counted from the events instead (usage_count_rejected)."
        )
    for side, verdict in (("baseline", Verdict.ONLY_BASELINE), ("current run", Verdict.ONLY_CURRENT)):
        if names := comparison.metrics_only_in(verdict):
            notes.append(f"Only in the {side}, so not compared: {', '.join(names)}.")
    return notes


def warnings(comparison: Comparison) -> list[str]:
    """What changes how to read the verdict: another machine, model, engine or suite."""
    if comparison.baseline is None:
        return []
    warnings = [note] if (note := hardware_note(comparison)) else []
    return [md(w) for w in warnings + identity_notes(comparison)]


def after_key(comparison: Comparison) -> list[str]:
    lines = []
    if comparison.inconclusive:
        lines.append("🟡 To settle the inconclusive ones: " + "; ".join(settle(comparison.inconclusive)) + ".")
    unchanged = len(comparison.unchanged)
    if (
        unchanged
        and comparison.baseline is not None
        and (comparison.regressions or comparison.improvements or comparison.inconclusive)
    ):
        lines.append(f"{plural(unchanged, 'other gated metric')} unchanged (within the threshold).")
    return lines


def _boundary(curve: CapacityCurve) -> str:
    """Where a search's boundary lies: "held up to 2.75 req/s and failed at 3 req/s"."""
    load_unit = curve_unit(curve.over)
    if curve.bound > 0 and curve.held is not None:
        return f"held even at max {fmt_value(curve.held)} {load_unit}"
    if curve.bound < 0 and curve.failed is not None:
        return f"failed already at min {fmt_value(curve.failed)} {load_unit}"
    if curve.held is None:
        return "held at no probed load"
    if curve.failed is None:
        return f"held up to {fmt_value(curve.held)} {load_unit} (the probe cap ended the search before a level failed)"
    return f"held up to {fmt_value(curve.held)} {load_unit} and failed at {fmt_value(curve.failed)} {load_unit}"


def _levels(curve: CapacityCurve) -> str:
    loads = len(curve.points)
    return plural(curve.probes, "level") + (f" at {loads} loads" if loads != curve.probes else "")


def curve_lines(comparison: Comparison) -> list[str]:
    """One sentence per capacity test: how many levels its search probed and where the boundary
    lies, baseline beside this run ("`chat-capacity`: 8 levels probed in run 1; the SLO (p99 TTFT
    ≤ 2000 ms) held up to 2.75 req/s and failed at 3 req/s")."""
    lines = []
    for test in dict.fromkeys(c.test for c in comparison.curves):
        sides = {c.side: c for c in comparison.curves if c.test == test}
        first = next(iter(sides.values()))
        goal = slo_words(dict(first.slo))
        slo = f"the SLO ({md(goal)})" if goal else "the SLO"
        base, cur = sides.get("baseline"), sides.get("current")
        if base is not None and cur is not None:
            run = f"run {cur.run_number}" if cur.run_number == base.run_number else "the first run"
            lines.append(
                f"{code(test)}, {run} of each side: {slo} {_boundary(base)} in the baseline "
                f"({_levels(base)} probed) and {_boundary(cur)} in this run ({_levels(cur)} probed)."
            )
            continue
        label = "" if comparison.baseline is None else (" (baseline only)" if base is not None else " (this run only)")
        lines.append(
            f"{code(test)}{label}: {_levels(first)} probed in run {first.run_number}; {slo} {_boundary(first)}."
        )
    return lines


def _repeats_auto_notes(result_set: ResultSet) -> list[str]:
    """A run with ``repeats: auto`` (kitt.sequential): how many pairs (A/B) or repeats (one arm
    against a history) each level ran, and why it stopped."""
    ab = result_set.config.get("ab")
    record, unit = (ab.get("repeats"), "pairs") if isinstance(ab, dict) else (None, "")
    if record is None:
        record, unit = result_set.config.get("repeats_auto"), "repeats"
    levels = record.get("levels") if isinstance(record, dict) else None
    if not isinstance(record, dict) or not isinstance(levels, dict):
        return []
    return [
        f"{test}: {level['reason']} (repeats: auto, {record.get('min_repeats')} to {record.get('max_repeats')} {unit})."
        for test, level in levels.items()
        if isinstance(level, dict) and isinstance(level.get("reason"), str)
    ]


def _startup_notes(comparison: Comparison) -> list[str]:
    """What the engines' start-ups cost (config.json's ``startup``, kitt.arm): GPU minutes not spent measuring."""
    sides = [("this run", comparison.current)]
    if comparison.paired and comparison.baseline is not None:
        sides = [("the candidate arm", comparison.current), ("the baseline arm", comparison.baseline)]
    notes = []
    for label, result_set in sides:
        starts = [s for s in result_set.config.get("startup") or [] if isinstance(s, dict)]
        if not starts or not all(isinstance(s.get("total_s"), (int, float)) for s in starts):
            continue
        first = starts[0]
        parts = [
            f"{name} {first[key]:.1f} s"
            for key, name in (("pull_s", "pull"), ("start_s", "start"), ("ready_s", "readiness"))
            if isinstance(first.get(key), (int, float))
        ]
        again = (
            f"; {len(starts)} start-ups, {sum(s['total_s'] for s in starts):.1f} s in all" if len(starts) > 1 else ""
        )
        notes.append(f"Engine start-up of {label}: {first['total_s']:.1f} s ({', '.join(parts)}){again}.")
    return notes


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
        dataset, trace = test.get("dataset"), test.get("trace")
        if isinstance(trace, dict):
            sha = str(trace.get("sha256") or "")[:6]
            parts.append(f"{'Mooncake' if trace.get('format') == 'mooncake' else 'timed'} trace (sha {sha})")
        elif isinstance(dataset, dict):
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
        if test.get("prefix"):
            parts.append(_prefix_words(test["prefix"]))
        if test.get("turns"):
            parts.append(_turns_words(test["turns"]))
        rates, arrival = test.get("rates") or [], test.get("arrival")
        if rates and isinstance(arrival, dict):
            text = f"{arrival.get('kind')} {', '.join(f'{r:g}' for r in rates)} req/s"
            if arrival.get("kind") == "gamma":
                text += f" (burstiness {arrival.get('burstiness'):g})"
            if arrival.get("ramp_up_s"):
                text += f", ramp-up {arrival.get('ramp_up_s'):g} s"
            parts.append(text)
        if isinstance(trace, dict) and isinstance(trace.get("speedup"), (int, float)):
            parts.append(
                f"at {trace['speedup']:g}x speed"
                + (f", blocks of {trace['block_size']:,} tokens" if isinstance(trace.get("block_size"), int) else "")
            )
        if test.get("duration_s"):
            parts.append(f"levels of at most {test['duration_s']:g} s")
        if test.get("skipped"):
            parts.append(f"{plural(int(test['skipped']), 'prompt')} skipped (past the context)")
        described.append((f"{code(name)}: " if len(tests) > 1 else "") + md(", ".join(p for p in parts if p)))
    return "Sent: " + "; ".join(described) if described else ""


def _turns_words(turns: object) -> str:
    """``sessions of 3 turns, think 500 ms``, from config.json's ``turns`` (a number or a distribution each)."""
    if not isinstance(turns, dict):
        return ""

    def spread(value: object) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{value:,g}"
        if isinstance(value, dict) and isinstance(value.get("uniform"), list) and len(value["uniform"]) == 2:
            return f"{value['uniform'][0]:,g}–{value['uniform'][1]:,g}"
        if isinstance(value, dict) and {"min", "max", "mean"} <= set(value):
            return f"{value['min']:,g}–{value['max']:,g} (mean {value['mean']:,g})"
        return "?"

    return f"sessions of {spread(turns.get('count'))} turns, think {spread(turns.get('think_ms', 0))} ms"


def _prefix_words(prefix: object) -> str:
    """``2 shared prefixes of 256 tokens`` (``(Zipf skew 1.2)``), from config.json's ``prefix``."""
    if not isinstance(prefix, dict):
        return ""
    groups, length, skew = prefix.get("groups"), prefix.get("len"), prefix.get("skew") or 0
    if not isinstance(groups, int) or not isinstance(length, int) or not isinstance(skew, (int, float)):
        return ""
    text = ("1 shared prefix" if groups == 1 else f"{groups:,} shared prefixes") + f" of {length:,} tokens"
    return text + (f" (Zipf skew {skew:g})" if skew else "")
