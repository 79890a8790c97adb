"""The report's words and number formats: escaping, units, metric names, headlines.

Everything a reader sees as text is spelled here or in the templates; nothing here computes a
statistic (each number is a field of ``kitt.comparison.Comparison``). Untrusted text (names from
an artifact) goes through :func:`md` before it reaches Markdown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import timezone
from typing import Any

from kitt.comparison import Comparison, Incomplete, MatchKey, MetricRow, Verdict
from kitt.results import ResultSet
from kitt.thresholds import LOWER, metric_sort_key

# --------------------------------------------------------------------------- escaping and numbers


def md(text: Any) -> str:
    """Make untrusted text (names from an artifact) safe inside a Markdown table cell."""
    value = " ".join(str(text).split())
    value = value.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("@", "@\u200b")


def code(text: Any) -> str:
    inner = md(text).replace("`", "'")
    return f"`{inner}`"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def fmt_value(value: float | None) -> str:
    """A metric's value: whole numbers (counts) without decimals, else about four digits."""
    if value is None or not math.isfinite(value):
        return "—"
    size = abs(value)
    if size >= 1000 or (size < 1e15 and math.isclose(value, round(value), rel_tol=1e-9, abs_tol=1e-9)):
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_pct(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "+∞" if value > 0 else "-∞"
    return f"{value:+.1f}%"


def short_pct(value: float) -> str:
    """A change for a headline: whole percent from 10% up, else one decimal."""
    if math.isinf(value):
        return "+∞" if value > 0 else "-∞"
    return f"{value:+.0f}%" if abs(value) >= 9.95 else f"{value:+.1f}%"


def fmt_ci(row: MetricRow) -> str:
    """The interval without spaces, so a narrow column does not wrap it."""
    if row.ci_low_pct is None or row.ci_high_pct is None:
        return "—"
    return f"{fmt_pct(row.ci_low_pct).removesuffix('%')}…{fmt_pct(row.ci_high_pct)}"


def fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def unit(metric: str) -> str:
    for suffix, name in (("_ms", "ms"), ("_mib", "MiB"), ("_w", "W"), ("_j", "J"), ("_pct", "%")):
        if metric.endswith(suffix):
            return name
    if metric == "duration":
        return "s"
    if metric in ("output_throughput", "total_token_throughput"):
        return "tok/s"
    return "req/s" if metric in ("request_throughput", "request_goodput") else ""


def arrow(direction: str | None) -> str:
    """↓ when lower is better, ↑ when higher is, nothing when the metric has no direction."""
    return "" if not direction else "↓" if direction == LOWER else "↑"


_LATENCY = {"ttft": "TTFT", "tpot": "TPOT", "itl": "ITL", "e2el": "E2E"}
_NAMED = {
    "output_throughput": "output throughput",
    "request_throughput": "request throughput",
    "total_token_throughput": "total throughput",
}
_LATENCY_NAME = re.compile(r"^(?P<stat>median|mean|p\d+)_(?P<what>ttft|tpot|itl|e2el)_ms$")


def metric_name(metric: str) -> str:
    """A reader's name for a metric: ``p99 TTFT``, ``median ITL``, ``output throughput``."""
    if metric in _NAMED:
        return _NAMED[metric]
    match = _LATENCY_NAME.match(metric)
    if match:
        return f"{match.group('stat')} {_LATENCY[match.group('what')]}"
    return md(metric)


def metric_label(metric: str, direction: str | None) -> str:
    """The first cell of a row: name, unit and which way is better, e.g. ``**p99 TTFT** ms ↓``."""
    parts = [f"**{metric_name(metric)}**", unit(metric), arrow(direction)]
    return " ".join(p for p in parts if p)


def chart_text(text: str) -> str:
    """Text inside a mermaid string: no quotes, brackets or newlines."""
    return re.sub(r"[\"\n\r\[\]%;#]", "", text)[:80]


def level_label(key: MatchKey) -> str:
    if not key.kind:
        return ""
    number = f"{key.level:g}"
    return f"concurrency {number}" if key.kind == "concurrency" else f"{number} req/s"


def hardware_label(result_set: ResultSet) -> str:
    """A short description of the hardware, e.g. ``1× NVIDIA H100 80GB HBM3``."""
    hw = result_set.hardware
    gpus = hw.get("gpus")
    names = [str(g["name"]) for g in gpus if isinstance(g, dict) and g.get("name")] if isinstance(gpus, list) else []
    if names:
        count = hw.get("gpu_count") if isinstance(hw.get("gpu_count"), int) else len(names)
        return f"{count}× {names[0]}"
    if hw.get("cpu_model"):
        return f"CPU {hw['cpu_model']}"
    return "unknown hardware"


def date_label(result_set: ResultSet) -> str:
    return result_set.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


def commit_of(result_set: ResultSet) -> str | None:
    """The commit a result set was measured on (config.json ``commit``: a SHA, or {"sha": ...})."""
    value = result_set.config.get("commit")
    if isinstance(value, dict):
        value = value.get("sha")
    return value if isinstance(value, str) and _SHA.match(value) else None


def commit_link(sha: str | None, repo_url: str | None) -> str | None:
    if sha is None:
        return None
    short = f"`{sha[:7]}`"
    return f"[{short}]({repo_url.rstrip('/')}/commit/{sha})" if repo_url else short


# --------------------------------------------------------------------------- headlines


VERDICT_MARKS = {
    Verdict.REGRESSION: "🔴",
    Verdict.IMPROVEMENT: "🟢",
    Verdict.INCONCLUSIVE: "🟡",
    Verdict.INCOMPLETE: "⚠️",
}
_LEGEND = (
    ("🔴", "regression"),
    ("🟠", "regression, shown but not gated"),
    ("🟢", "improvement"),
    ("🟡", "inconclusive: beyond the threshold but within the noise"),
    ("⚠️", "incomplete: missing from this run"),
)


def legend(marks: set[str]) -> str:
    """One line that explains the marks a table uses (unmarked cells are unchanged) and the arrows."""
    words = [f"{mark} {word}" for mark, word in _LEGEND if mark in marks]
    return " · ".join([*words, "unmarked: unchanged", "↓ lower is better, ↑ higher is better"])


def _range(changes: list[float]) -> str:
    low, high = short_pct(min(changes)), short_pct(max(changes))
    return low if low == high else f"{low} to {high}"


def _where(metric: str, keys: set[MatchKey], comparison: Comparison) -> str:
    """Where a metric changed: "at every concurrency", "at concurrency 4 and 16", "in 2 of 5 tests"."""
    candidates = {t.key for t in comparison.tests for r in t.rows if r.metric == metric and r.change_pct is not None}
    if len(candidates) <= 1:
        return ""
    kinds = {k.kind for k in candidates}
    if keys == candidates:
        kind = kinds.pop() if len(kinds) == 1 else ""
        return {"concurrency": "at every concurrency", "rate": "at every request rate"}.get(kind, "in every test")
    bases = {k.base for k in keys}
    if len(kinds) == 1 and "" not in kinds and len(bases) == 1 and len(keys) <= 4:
        levels = [f"{k.level:g}" for k in sorted(keys)]
        listed = levels[0] if len(levels) == 1 else ", ".join(levels[:-1]) + " and " + levels[-1]
        return f"at concurrency {listed}" if next(iter(kinds)) == "concurrency" else f"at {listed} req/s"
    return f"in {len(keys)} of {len(candidates)} tests"


def cause(rows: list[MetricRow], comparison: Comparison, named: int = 2) -> str:
    """What changed, for a headline: "ITL +50% and E2E +48% at every concurrency"."""
    by_metric: dict[str, list[MetricRow]] = {}
    for row in sorted(rows, key=lambda r: metric_sort_key(r.metric)):
        by_metric.setdefault(row.metric, []).append(row)
    parts = []
    for metric, group in list(by_metric.items())[:named]:
        changes = [r.change_pct for r in group if r.change_pct is not None]
        what = metric_name(metric) + (f" {_range(changes)}" if changes else "")
        if metric == "capacity" and len(group) == 1:
            what += capacity_words(group[0], comparison)
        parts.append((what, _where(metric, {r.key for r in group}, comparison)))
    wheres = {where for _, where in parts}
    if len(wheres) == 1:
        text = " and ".join(what for what, _ in parts) + (f" {wheres.pop()}" if parts[0][1] else "")
    else:
        text = " and ".join(f"{what} {where}".strip() for what, where in parts)
    more = len(by_metric) - len(parts)
    return text + (f", and {plural(more, 'other metric')}" if more else "")


_SLO_WORDS = {
    "p99_ttft_ms": ("p99 TTFT", "ms"),
    "p99_tpot_ms": ("p99 TPOT", "ms"),
    "p99_e2el_ms": ("p99 E2E", "ms"),
    "max_error_rate": ("errors", ""),
}


def capacity_spec(comparison: Comparison, test_name: str) -> dict[str, Any] | None:
    """A capacity test's search as config.json records it (over, min, max, slo), or None."""
    suite = comparison.current.config.get("suite")
    tests = suite.get("tests") if isinstance(suite, dict) else None
    for test in tests if isinstance(tests, list) else []:
        if (
            isinstance(test, dict)
            and f"{test.get('name')}-capacity" == test_name
            and isinstance(test.get("capacity"), dict)
        ):
            return test["capacity"]
    return None


def capacity_unit(spec: dict[str, Any] | None) -> str:
    return "streams" if spec and spec.get("over") == "concurrency" else "req/s"


def curve_unit(over: str) -> str:
    return "streams" if over == "concurrency" else "req/s"


def slo_words(slo: dict[str, Any]) -> str:
    """``p99 TTFT ≤ 500 ms, errors ≤ 1%``: a capacity search's goal, in words."""
    parts = []
    for key, value in slo.items():
        if key not in _SLO_WORDS or not isinstance(value, (int, float)):
            continue
        name, unit_ = _SLO_WORDS[key]
        parts.append(f"{name} ≤ {value * 100:g}%" if key == "max_error_rate" else f"{name} ≤ {value:g} {unit_}")
    return ", ".join(parts)


def capacity_words(row: MetricRow, comparison: Comparison) -> str:
    """`` (p99 TTFT ≤ 500 ms): 22.1 → 18.1 req/s``: the goal capacity was searched under, and its values."""
    spec = capacity_spec(comparison, row.test)
    goal = slo_words(spec.get("slo") or {}) if spec else ""
    text = f" ({md(goal)})" if goal else ""
    if row.baseline is not None and row.current is not None:
        text += f": {fmt_value(row.baseline)} → {fmt_value(row.current)} {capacity_unit(spec)}"
    return text


def incomplete_cause(gap: Incomplete) -> str:
    """Why the results are incomplete, in a few words."""
    parts = []
    if gap.upstream:
        parts.append(f"the benchmark job's conclusion is {md(gap.upstream)}")
    if gap.run_failed:
        parts.append("the run did not finish cleanly")
    if gap.failed_tests:
        parts.append(f"{plural(len(gap.failed_tests), 'test')} failed")
    if gap.missing_tests:
        parts.append(f"{plural(len(gap.missing_tests), 'test')} missing")
    if gap.missing_repeats:
        parts.append(f"{plural(len(gap.missing_repeats), 'test')} short of repeats")
    if gap.missing_metrics:
        parts.append("gated metrics missing")
    return ", ".join(parts[:2]) or "results missing"


def what_differs(comparison: Comparison) -> str:
    if comparison.hardware_mismatch and not comparison.allow_hardware_mismatch:
        return "hardware"
    return " and ".join(name for name, _, _ in comparison.identity.differs) or "hardware"


def short_digest(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return md(f"{algorithm}:{value[:12]}…" if value else digest[:19])


def headline(comparison: Comparison) -> str:
    """The first line a reviewer reads: the verdict and its cause."""
    regressions, improvements, inconclusive = comparison.regressions, comparison.improvements, comparison.inconclusive
    verdict = comparison.verdict
    if verdict == "regression":
        text = f"❌ {plural(len(regressions), 'regression')}: {cause(regressions, comparison)}"
        if comparison.incomplete:
            text += ", and the results are incomplete"
    elif verdict == "incomplete":
        text = f"⚠️ Results incomplete, so the gate fails: {incomplete_cause(comparison.incomplete)}"
    elif verdict == "not gated":
        text = f"⚠️ Not gated: the {what_differs(comparison)} differs"
        if regressions:
            text += f" ({plural(len(regressions), 'regression')} shown: {cause(regressions, comparison, named=1)})"
    elif verdict == "no baseline":
        text = "📊 No baseline yet: this run is shown, nothing is gated"
    elif verdict == "nothing compared":
        text = "⚠️ Nothing to compare: no gated metric was measured on both sides"
    elif verdict == "inconclusive":
        text = f"🟡 No regression proven; {len(inconclusive)} inconclusive: {cause(inconclusive, comparison)}"
    elif verdict == "improvement":
        text = f"✅ No regressions; {plural(len(improvements), 'improvement')}: {cause(improvements, comparison)}"
    else:
        compared = sum(1 for r in comparison.rows if r.gated and r.change_pct is not None)
        text = f"✅ No regressions: {plural(compared, 'gated metric')} within threshold"
    digest = comparison.identity.image_digest
    if digest:
        text += (
            f" · {md(comparison.current.engine)} image changed: {short_digest(digest[0])} → {short_digest(digest[1])}"
        )
    return text


# Worst first: the verdict of a whole matrix is its worst job's.
VERDICT_ORDER = (
    "regression",
    "incomplete",
    "not gated",
    "nothing compared",
    "inconclusive",
    "no baseline",
    "improvement",
    "unchanged",
)
_MATRIX_WORDS = {
    "regression": ("❌", "regressed"),
    "incomplete": ("⚠️", "incomplete"),
    "not gated": ("⚠️", "not gated"),
    "nothing compared": ("⚠️", "with nothing to compare"),
    "inconclusive": ("🟡", "inconclusive"),
    "no baseline": ("📊", "without a baseline"),
    "improvement": ("✅", "improved"),
    "unchanged": ("✅", "unchanged"),
}


def worst_verdict(verdicts: Iterable[str]) -> str:
    return min(verdicts, key=VERDICT_ORDER.index, default="unchanged")


def matrix_headline(verdicts: list[str]) -> str:
    """One line over every job: "❌ 2 of 12 jobs regressed · 1 incomplete · 9 unchanged"."""
    counts = {v: verdicts.count(v) for v in VERDICT_ORDER if v in verdicts}
    worst = worst_verdict(verdicts)
    mark, word = _MATRIX_WORDS[worst]
    if worst in ("improvement", "unchanged"):
        text = f"{mark} No regressions in {plural(len(verdicts), 'job')}"
    else:
        text = f"{mark} {counts[worst]} of {plural(len(verdicts), 'job')} {word}"
    rest = [f"{n} {_MATRIX_WORDS[v][1]}" for v, n in counts.items() if v != worst]
    return " · ".join([text, *rest])
