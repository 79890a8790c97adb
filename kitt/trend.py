"""Trends and change points over the base branch's history: which job (and commit) moved a metric.

A history is a folder with one result set per subfolder, one CI job each (as
``kitt.github.baseline.download_baseline(..., history=N)`` unpacks them). For every gated metric
of every test (matched by name and load level, as ``kitt.compare`` matches them), the job-level
value is the typical value of the job's passed repeats (``kitt.comparison.center``: the geometric
mean). The jobs are ordered by their runs' timestamps, oldest first, and each metric's sequence
is searched for change points in the manner of Hunter / Apache Otava (Fleming et al., ICPE 2023):
recursive binary segmentation with a t-test split, deterministic and windowed.

- Every candidate split of a segment, at least ``min_segment`` jobs from either end, is scored
  with Student's two-sample t on the log job values (pooled variance: a change point shifts the
  level, not the noise, and the pooled estimate keeps a short, recent segment testable). Each
  side reaches at most ``window`` jobs from the split, so one old change does not hide a new one.
- The best split's p-value is its two-sided t p-value times the number of candidate splits
  (Bonferroni over the search, so picking the best position is paid for) times the number of
  series in the history (Bonferroni over metrics and tests). It is a change point when that is
  at most ``alpha`` (0.05: at most a 5% chance of any false change point per history).
- An accepted split divides its segment, and both halves are searched again.

The size of a change is measured between the segments on either side: percent, with a 95%
Welch interval. Nothing is random: the same history always gives the same change points.
Method and measured accuracy: docs/trend.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from kitt import stats
from kitt.compare import group_tests
from kitt.comparison import MatchKey, center
from kitt.errors import KittError, ResultsError
from kitt.results import METRICS_FILE, ResultSet, load_result_set, utc_timestamp
from kitt.thresholds import CHART_METRICS, LOWER, Thresholds, metric_direction, metric_sort_key

ALPHA = 0.05  # the chance of any false change point in one history
MIN_SEGMENT = 3  # jobs on either side of a change point
WINDOW = 20  # jobs each side of a candidate split that its t sees
CONFIDENCE = 0.95
SLOWER, FASTER = "slower", "faster"


@dataclass(frozen=True)
class Job:
    """One job of the history, by its position oldest first."""

    index: int
    timestamp: datetime
    commit: str | None
    branch: str | None


@dataclass(frozen=True)
class Series:
    """One gated metric of one test over the jobs that measured it (``jobs`` index ``Trend.jobs``)."""

    test: str
    key: MatchKey
    metric: str
    direction: str
    jobs: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class ChangePoint:
    """The metric's level changed from job ``index`` on (0-based, oldest first) compared with before."""

    test: str
    metric: str
    index: int
    timestamp: str
    commit: str | None
    change_pct: float
    ci_low_pct: float
    ci_high_pct: float
    p_value: float  # Bonferroni-adjusted over the split positions and the history's series
    direction: str  # "slower" or "faster"
    before: float  # typical job value of the segment before
    after: float
    key: MatchKey = field(default=MatchKey("", "", 0.0), compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "metric": self.metric,
            "index": self.index,
            "timestamp": self.timestamp,
            "commit": self.commit,
            "change_pct": self.change_pct,
            "ci_pct": [self.ci_low_pct, self.ci_high_pct],
            "p_value": self.p_value,
            "direction": self.direction,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class TrendChart:
    """One key metric of one test family over the jobs that measured every level, one line per level."""

    family: str
    kind: str
    metric: str
    direction: str
    levels: tuple[float, ...]
    jobs: tuple[int, ...]
    lines: tuple[tuple[float, ...], ...]


@dataclass
class Trend:
    """A whole history analysed: its jobs, the series searched, the change points and the charts."""

    jobs: list[Job]
    series: list[Series]
    change_points: list[ChangePoint]
    charts: list[TrendChart]
    alpha: float = ALPHA
    min_segment: int = MIN_SEGMENT

    @property
    def slower(self) -> list[ChangePoint]:
        return [c for c in self.change_points if c.direction == SLOWER]


# --------------------------------------------------------------------------- loading


def load_history(directory: Path) -> list[ResultSet]:
    """Every job under ``directory`` (one result set per subfolder, or one in the folder itself),
    oldest first. A job that cannot be read is an error, never a gap in the trend."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultsError(
            f"history directory {directory} does not exist or is not a directory",
            hint="Pass the folder that holds one result set per subfolder.",
        )
    if (directory / METRICS_FILE).is_file():
        folders = [directory]
    else:
        folders = sorted(p for p in directory.iterdir() if p.is_dir() and next(p.rglob(METRICS_FILE), None) is not None)
    if not folders:
        raise ResultsError(
            f"no {METRICS_FILE} found under {directory}",
            hint="Each subfolder should hold one job's result set, as `kitt run -o` wrote it.",
        )
    return order_jobs([load_result_set(folder) for folder in folders])


def order_jobs(result_sets: list[ResultSet]) -> list[ResultSet]:
    """Oldest first by the run's timestamp; ties by folder, so the order never depends on listing order."""
    return sorted(result_sets, key=lambda r: (r.timestamp, str(r.directory)))


def _job(result_set: ResultSet, index: int) -> Job:
    def text(name: str) -> str | None:
        value = result_set.config.get(name)
        return str(value) if isinstance(value, str) and value else None

    return Job(index, result_set.timestamp, text("commit"), text("branch"))


def _job_values(result_set: ResultSet, thresholds: Thresholds) -> dict[tuple[MatchKey, str], tuple[str, float]]:
    """(test key, metric) -> (test name, typical value of the passed repeats), for gated metrics."""
    values: dict[tuple[MatchKey, str], tuple[str, float]] = {}
    for key, group in group_tests(result_set).items():
        passed = [r for r in group.repeats if r.passed]
        for metric in group.metric_names():
            if thresholds.for_metric(metric) is None and metric not in CHART_METRICS:
                continue
            samples = [v for r in passed if (v := r.metrics.get(metric)) is not None and math.isfinite(v)]
            typical = center(samples)
            if typical is not None and typical > 0:
                values[(key, metric)] = (group.name, typical)
    return values


# --------------------------------------------------------------------------- analysis


def analyse(
    result_sets: list[ResultSet],
    thresholds: Thresholds | None = None,
    *,
    alpha: float = ALPHA,
    min_segment: int = MIN_SEGMENT,
    window: int = WINDOW,
    pooled: bool = True,
) -> Trend:
    """Find the change points of every gated metric and test over ``result_sets`` (any order).
    ``pooled=False`` scores splits with Welch's t instead (measured worse: docs/trend.md)."""
    thresholds = thresholds or Thresholds()
    ordered = order_jobs(result_sets)
    jobs = [_job(r, i) for i, r in enumerate(ordered)]
    per_job = [_job_values(r, thresholds) for r in ordered]
    names: dict[tuple[MatchKey, str], str] = {}
    for values in per_job:  # the newest job's name for a test wins
        names.update({k: v[0] for k, v in values.items()})
    all_series: list[Series] = []
    for key, metric in sorted(names, key=lambda km: (km[0], metric_sort_key(km[1]))):
        present = [(i, values[(key, metric)][1]) for i, values in enumerate(per_job) if (key, metric) in values]
        direction = metric_direction(metric)
        if direction is None:
            continue
        all_series.append(
            Series(
                names[(key, metric)], key, metric, direction, tuple(i for i, _ in present), tuple(v for _, v in present)
            )
        )
    gated = [s for s in all_series if thresholds.for_metric(s.metric) is not None]
    points: list[ChangePoint] = []
    for series in gated:
        found = change_points(
            np.log(series.values), alpha=alpha, family=len(gated), min_segment=min_segment, window=window, pooled=pooled
        )
        points += _describe(series, found, jobs)
    return Trend(jobs, gated, points, _charts(all_series, len(jobs)), alpha, min_segment)


def change_points(
    x: np.ndarray,
    *,
    alpha: float = ALPHA,
    family: int = 1,
    min_segment: int = MIN_SEGMENT,
    window: int = WINDOW,
    pooled: bool = True,
) -> list[tuple[int, float]]:
    """Change points of one sequence ``x`` (log values): ``(position, p_value)`` pairs, by position.

    ``position`` is the first element after the change. ``p_value`` is adjusted for the split
    positions searched and for the ``family`` of series the history holds; a split is a change
    point when that is at most ``alpha``.
    """
    x = np.asarray(x, dtype=float)
    found: list[int] = []
    segments = [(0, x.size)]
    while segments:
        low, high = segments.pop()
        split = best_split(x[low:high], min_segment=min_segment, window=window, pooled=pooled)
        if split is None or not split.significant(alpha, family):
            continue
        found.append(low + split.position)
        segments += [(low, low + split.position), (low + split.position, high)]
    return _refine(x, sorted(found), alpha=alpha, family=family, min_segment=min_segment, window=window, pooled=pooled)


def _refine(
    x: np.ndarray, found: list[int], *, alpha: float, family: int, min_segment: int, window: int, pooled: bool
) -> list[tuple[int, float]]:
    """Place each change point again between its neighbours, and drop those that are no longer
    significant there, until nothing moves. Binary segmentation finds a first split with every
    other change still in the segment, which can pull it a few jobs off; a spurious split found
    inside a segment of a real one fades once its neighbours are right."""
    placed: dict[int, Split] = {}
    for _ in range(10):
        edges = [0, *found, x.size]
        placed = {}
        for number in range(1, len(edges) - 1):
            low, high = edges[number - 1], edges[number + 1]
            split = best_split(x[low:high], min_segment=min_segment, window=window, pooled=pooled)
            if split is not None and split.significant(alpha, family):
                placed.setdefault(low + split.position, split)
        if sorted(placed) == found:
            break
        found = sorted(placed)
    return [(position, placed[position].p_value(family)) for position in found]


@dataclass(frozen=True)
class Split:
    """The best split of a segment: where, its |t| and degrees of freedom, and how many positions were tried."""

    position: int
    t: float
    df: float
    candidates: int

    def p_value(self, family: int) -> float:
        """Two-sided, times the positions tried and the series of the family (Bonferroni)."""
        return min(1.0, 2.0 * float(stats.t_sf(self.t, self.df)) * self.candidates * family)

    def significant(self, alpha: float, family: int) -> bool:
        # The same test as p_value() <= alpha, against a cached critical t: far cheaper in a search.
        return self.t >= _critical_t(self.df, alpha / (2.0 * self.candidates * family))


@lru_cache(maxsize=4096)
def _critical_t(df: float, tail: float) -> float:
    return float(stats.t_ppf(1.0 - tail, df)) if tail < 0.5 else 0.0


def best_split(x: np.ndarray, *, min_segment: int, window: int, pooled: bool = True) -> Split | None:
    """The split of ``x`` with the largest |t|; None when ``x`` is too short to split."""
    n = x.size
    splits = np.arange(min_segment, n - min_segment + 1)
    if splits.size == 0:
        return None
    left_start = np.maximum(splits - window, 0)
    right_end = np.minimum(splits + window, n)
    total = np.concatenate([[0.0], np.cumsum(x)])
    squares = np.concatenate([[0.0], np.cumsum(x * x)])
    n_left, n_right = (splits - left_start).astype(float), (right_end - splits).astype(float)
    sum_left, sum_right = total[splits] - total[left_start], total[right_end] - total[splits]
    mean_left, mean_right = sum_left / n_left, sum_right / n_right
    ss_left = np.maximum(squares[splits] - squares[left_start] - n_left * mean_left**2, 0.0)
    ss_right = np.maximum(squares[right_end] - squares[splits] - n_right * mean_right**2, 0.0)
    diff = mean_right - mean_left
    with np.errstate(invalid="ignore", divide="ignore"):
        if pooled:
            df = n_left + n_right - 2.0
            se = np.sqrt((ss_left + ss_right) / df * (1.0 / n_left + 1.0 / n_right))
        else:
            v_left, v_right = ss_left / (n_left - 1) / n_left, ss_right / (n_right - 1) / n_right
            se = np.sqrt(v_left + v_right)
            df = (v_left + v_right) ** 2 / (v_left**2 / (n_left - 1) + v_right**2 / (n_right - 1))
        t = np.where(se > 0, np.abs(diff) / np.where(se > 0, se, 1.0), np.where(diff != 0, np.inf, 0.0))
    df = np.where(np.isfinite(df) & (df > 0), df, 1.0)
    best = int(np.argmax(t))  # the first of equal maxima: deterministic
    return Split(int(splits[best]), float(t[best]), float(df[best]), int(splits.size))


def _describe(series: Series, found: list[tuple[int, float]], jobs: list[Job]) -> list[ChangePoint]:
    """Size each change between the segments on either side of it, up to the neighbouring ones."""
    logs = np.log(series.values)
    edges = [0, *(p for p, _ in found), logs.size]
    points = []
    for number, (position, p_value) in enumerate(found, start=1):
        before, after = logs[edges[number - 1] : position], logs[position : edges[number + 1]]
        delta = float(after.mean() - before.mean())
        v_before, v_after = before.var(ddof=1) / before.size, after.var(ddof=1) / after.size
        variance = v_before + v_after
        df = (
            variance**2 / (v_before**2 / (before.size - 1) + v_after**2 / (after.size - 1))
            if variance > 0
            else math.inf
        )
        half = _quantile(df) * math.sqrt(variance)
        worse = delta > 0 if series.direction == LOWER else delta < 0
        job = jobs[series.jobs[position]]
        points.append(
            ChangePoint(
                test=series.test,
                metric=series.metric,
                index=job.index,
                timestamp=utc_timestamp(job.timestamp),
                commit=job.commit,
                change_pct=math.expm1(delta) * 100,
                ci_low_pct=math.expm1(delta - half) * 100,
                ci_high_pct=math.expm1(delta + half) * 100,
                p_value=p_value,
                direction=SLOWER if worse else FASTER,
                before=math.exp(float(before.mean())),
                after=math.exp(float(after.mean())),
                key=series.key,
            )
        )
    return points


def _quantile(df: float) -> float:
    """The interval's t quantile at Welch's df rounded down to a whole number (a slightly wider
    interval), so that each quantile is computed once however long the history."""
    return _critical_t(float(max(1, math.floor(min(df, 1e6)))), 0.5 - CONFIDENCE / 2)


def _charts(series: list[Series], n_jobs: int) -> list[TrendChart]:
    """The key metrics (``kitt.thresholds.CHART_METRICS``) per test family, one line per load level,
    over the jobs that measured every level of the family."""
    families: dict[tuple[str, str, str], list[Series]] = {}
    for s in series:
        if s.metric in CHART_METRICS:
            families.setdefault((s.key.base, s.key.kind, s.metric), []).append(s)
    charts = []
    order = sorted(families, key=lambda f: (f[0], f[1], CHART_METRICS.index(f[2])))
    for (family, kind, metric), members in ((f, families[f]) for f in order):
        members.sort(key=lambda s: s.key.level)
        shared = sorted(set(range(n_jobs)).intersection(*(s.jobs for s in members)))
        if len(shared) < 2:
            continue
        lines = tuple(tuple(dict(zip(s.jobs, s.values))[j] for j in shared) for s in members)
        charts.append(
            TrendChart(
                family, kind, metric, members[0].direction, tuple(s.key.level for s in members), tuple(shared), lines
            )
        )
    return charts


# --------------------------------------------------------------------------- what is new


def new_change_points(now: Trend, before: Trend) -> list[ChangePoint]:
    """Change points of ``now`` that ``before`` (the history without its newest job) lacked: a
    change point one job away in the same metric and direction is the same one, moved."""
    seen: dict[tuple[Any, ...], list[int]] = {}
    for c in before.change_points:
        seen.setdefault((c.key, c.metric, c.direction), []).append(c.index)
    return [
        c
        for c in now.change_points
        if not any(abs(c.index - i) <= 1 for i in seen.get((c.key, c.metric, c.direction), []))
    ]


def write_change_points(path: Path, points: list[ChangePoint]) -> None:
    """The change points as a JSON list of ``{test, metric, index, timestamp, commit, change_pct, ci_pct,
    p_value, direction, before, after}``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([p.as_dict() for p in points], indent=2, allow_nan=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise KittError(f"could not write the change points to {path} ({exc.strerror or exc})") from None


@dataclass
class TrendUpdate:
    """The trend of the history including the newest job, and what that job made new."""

    trend: Trend
    new: list[ChangePoint]


def trend_with_newest(result_sets: list[ResultSet], thresholds: Thresholds | None = None) -> TrendUpdate:
    """Analyse ``result_sets`` with and without the newest job, to tell new change points from known ones."""
    ordered = order_jobs(result_sets)
    now = analyse(ordered, thresholds)
    before = analyse(ordered[:-1], thresholds) if len(ordered) > 1 else Trend([], [], [], [])
    return TrendUpdate(now, new_change_points(now, before))
