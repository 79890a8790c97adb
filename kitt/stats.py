"""The statistics behind the regression gate, in numpy and the standard library (no scipy).

``math.lgamma`` and ``statistics.NormalDist`` serve where they can; the regularised incomplete
beta function (Student's t tail) and the digamma/trigamma functions of the prior are written
here because the standard library lacks them, and scipy would cost every runner more install
time than the gate is worth (the measurement is in docs/architecture.md; the tests check these
functions against scipy where scipy is installed).

The gate works on the logarithms of the repeats, so a change is a ratio and every metric's
noise is in the same relative units. For each gated metric it pools the two sides' variances
(``n_b + n_c - 2`` degrees of freedom), then moderates that variance with an empirical-Bayes
prior fitted across all the gated metrics of the report (Smyth 2004, the "moderated t" of
limma): ``s̃² = (d0·s0² + d·s²) / (d0 + d)`` on ``d0 + d`` degrees of freedom. When the metrics
are about equally noisy the prior is strong and the test approaches a z-test; when they are
not, ``d0`` shrinks and the test falls back towards the plain two-sample t. ``d0`` is capped at
the degrees of freedom the prior was fitted from, a metric whose variance is an outlier under
the prior is tested on its own, and families of fewer than three metrics get no prior. One-sided
p-values then go through Holm's step-down procedure, which bounds the chance of any false
alarm in the whole report (the family) by ``alpha``.

Every function here broadcasts over leading axes: the family is the last axis, so the seeded
simulation in the tests runs thousands of reports through the very function the gate uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# Below this many metrics with a usable variance the prior is too noisy to trust: plain t.
MIN_PRIOR_FAMILY = 3
# A variance whose upper-tail probability under the prior is below this is an outlier.
OUTLIER_P = 0.01
# Beyond this many degrees of freedom Student's t is the normal distribution for our purposes.
_NORMAL_DF = 1e6
_CF_MAX_ITERATIONS = 400
_CF_EPSILON = 1e-14
_TINY = 1e-300

_erfc = np.vectorize(math.erfc, otypes=[float])


# --------------------------------------------------------------------------- special functions


_lgamma = np.vectorize(math.lgamma, otypes=[float])


def betainc(a: np.ndarray | float, b: np.ndarray | float, x: np.ndarray | float) -> np.ndarray:
    """The regularized incomplete beta function I_x(a, b), elementwise."""
    a, b, x = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, x)))
    return _betainc(a, b, x, 1.0 - x)


def _betainc(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """I_x(a, b) given both ``x`` and ``y = 1 - x`` (callers can supply ``y`` without cancellation)."""
    result = np.where(x <= 0.0, 0.0, 1.0)
    inside = (x > 0.0) & (y > 0.0)
    if not inside.any():
        return result
    a, b, x, y = a[inside], b[inside], x[inside], y[inside]
    # The continued fraction converges fast only below (a + 1) / (a + b + 2); use symmetry above.
    flip = x > (a + 1.0) / (a + b + 2.0)
    aa, bb = np.where(flip, b, a), np.where(flip, a, b)
    xx, yy = np.where(flip, y, x), np.where(flip, x, y)
    log_front = aa * np.log(xx) + bb * np.log(yy) - (_lgamma(aa) + _lgamma(bb) - _lgamma(aa + bb))
    value = np.exp(log_front) * _beta_fraction(aa, bb, xx) / aa
    result[inside] = np.where(flip, 1.0 - value, value)
    return result


def _beta_fraction(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The continued fraction of I_x(a, b), evaluated with the modified Lentz method."""

    def clamp(v: np.ndarray) -> np.ndarray:
        return np.where(np.abs(v) < _TINY, _TINY, v)

    c = np.ones_like(x)
    d = 1.0 / clamp(1.0 - (a + b) * x / (a + 1.0))
    h = d.copy()
    done = np.zeros(x.shape, dtype=bool)
    for m in range(1, _CF_MAX_ITERATIONS + 1):
        two_m = 2.0 * m
        even = m * (b - m) * x / ((a + two_m - 1.0) * (a + two_m))
        d = 1.0 / clamp(1.0 + even * d)
        c = clamp(1.0 + even / c)
        h = np.where(done, h, h * d * c)
        odd = -(a + m) * (a + b + m) * x / ((a + two_m) * (a + two_m + 1.0))
        d = 1.0 / clamp(1.0 + odd * d)
        c = clamp(1.0 + odd / c)
        step = d * c
        h = np.where(done, h, h * step)
        done |= np.abs(step - 1.0) < _CF_EPSILON
        if done.all():
            break
    return h


def t_sf(t: np.ndarray | float, df: np.ndarray | float) -> np.ndarray:
    """P(T > t) for Student's t with ``df`` degrees of freedom (``inf`` gives the normal)."""
    t, df = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(df, dtype=float))
    out = np.full(t.shape, np.nan)
    normal = df >= _NORMAL_DF
    out[normal] = 0.5 * _erfc(t[normal] / math.sqrt(2.0))
    student = ~normal & ~np.isnan(t) & (df > 0)
    if student.any():
        tt, nu = t[student], df[student]
        t2 = np.where(np.isinf(tt), np.inf, tt * tt)
        with np.errstate(invalid="ignore"):
            x = np.where(np.isinf(t2), 0.0, nu / (nu + t2))
            y = np.where(np.isinf(t2), 1.0, t2 / (nu + t2))
        tail = 0.5 * _betainc(nu / 2.0, np.full_like(nu, 0.5), x, y)
        out[student] = np.where(tt > 0, tail, 1.0 - tail)
    return out


def t_cdf(t: np.ndarray | float, df: np.ndarray | float) -> np.ndarray:
    """P(T <= t) for Student's t."""
    return t_sf(-np.asarray(t, dtype=float), df)


def t_pdf(t: np.ndarray | float, df: np.ndarray | float) -> np.ndarray:
    """The density of Student's t."""
    t, df = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(df, dtype=float))
    normal = df >= _NORMAL_DF
    nu = np.where(normal, 1.0, df)
    log_pdf = _lgamma((nu + 1) / 2) - _lgamma(nu / 2) - 0.5 * np.log(nu * math.pi) - (nu + 1) / 2 * np.log1p(t * t / nu)
    return np.where(normal, np.exp(-0.5 * t * t) / math.sqrt(2 * math.pi), np.exp(log_pdf))


def t_ppf(q: np.ndarray | float, df: np.ndarray | float) -> np.ndarray:
    """The ``q`` quantile of Student's t.

    Newton's method from the normal quantile: the CDF is concave above the median (convex below)
    and the t quantile lies beyond the normal one, so the iterates approach the root from one
    side and cannot overshoot.
    """
    q, df = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(df, dtype=float))
    upper = np.where(q >= 0.5, q, 1.0 - q)
    t = np.vectorize(NormalDist().inv_cdf, otypes=[float])(upper)
    for _ in range(200):
        step = (upper - t_cdf(t, df)) / t_pdf(t, df)
        t = t + step
        if np.all(np.abs(step) <= 1e-12 * np.maximum(1.0, np.abs(t))):
            break
    return np.where(q >= 0.5, t, -t)


def digamma(x: np.ndarray | float) -> np.ndarray:
    """ψ(x) for x > 0: recurrence up to 6, then the asymptotic series."""
    x = np.array(x, dtype=float, copy=True)
    shift = np.zeros_like(x)
    while (small := x < 6.0).any():
        shift = np.where(small, shift - 1.0 / x, shift)
        x = np.where(small, x + 1.0, x)
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return shift + np.log(x) - 0.5 / x - series


def trigamma(x: np.ndarray | float) -> np.ndarray:
    """ψ'(x) for x > 0: recurrence up to 6, then the asymptotic series."""
    x = np.array(x, dtype=float, copy=True)
    shift = np.zeros_like(x)
    while (small := x < 6.0).any():
        shift = np.where(small, shift + 1.0 / (x * x), shift)
        x = np.where(small, x + 1.0, x)
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv + 0.5 * inv2 + inv * inv2 * (1 / 6 - inv2 * (1 / 30 - inv2 * (1 / 42 - inv2 / 30)))
    return shift + series


def trigamma_inverse(y: np.ndarray | float) -> np.ndarray:
    """The x > 0 with ψ'(x) = y, for y > 0 (ψ' is decreasing, so bisection on log x)."""
    y = np.asarray(y, dtype=float)
    low = np.full(y.shape, math.log(1e-8))
    high = np.full(y.shape, math.log(1e12))
    for _ in range(50):  # the bracket is 48 wide in log x: 50 halvings leave < 1e-13
        mid = 0.5 * (low + high)
        too_big = trigamma(np.exp(mid)) > y
        low = np.where(too_big, mid, low)
        high = np.where(too_big, high, mid)
    return np.exp(0.5 * (low + high))


# --------------------------------------------------------------------------- the moderated t


def log_summary(
    baseline: list[float] | np.ndarray, current: list[float] | np.ndarray
) -> tuple[float, float, int, float]:
    """Summarise two samples of positive values on the log scale.

    Returns ``(delta, s2, df, scale)``: the difference of mean logs (current minus baseline),
    the pooled variance of the logs, its degrees of freedom and ``sqrt(1/n_b + 1/n_c)``.
    """
    base = np.log(np.asarray(baseline, dtype=float))
    cur = np.log(np.asarray(current, dtype=float))
    df = base.size + cur.size - 2
    squares = float(((base - base.mean()) ** 2).sum() + ((cur - cur.mean()) ** 2).sum())
    s2 = squares / df if df > 0 else math.nan
    return float(cur.mean() - base.mean()), s2, df, math.sqrt(1.0 / base.size + 1.0 / cur.size)


def paired_summary(
    baseline: list[float] | np.ndarray, current: list[float] | np.ndarray
) -> tuple[float, float, int, float]:
    """``log_summary`` for paired repeats (``baseline[i]`` and ``current[i]`` ran back to back):
    the mean and variance of the per-pair log differences, ``n - 1`` degrees of freedom and
    ``sqrt(1/n)``. What the two repeats of a pair share (the job's shift, slow drift) cancels."""
    diff = np.log(np.asarray(current, dtype=float)) - np.log(np.asarray(baseline, dtype=float))
    df = diff.size - 1
    s2 = float(diff.var(ddof=1)) if df > 0 else math.nan
    return float(diff.mean()), s2, df, math.sqrt(1.0 / diff.size)


def linear_summary(
    baseline: list[float] | np.ndarray, current: list[float] | np.ndarray
) -> tuple[float, float, int, float]:
    """``log_summary`` on the raw scale, for values that can be zero (counts such as ``failed``)."""
    base, cur = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    df = base.size + cur.size - 2
    squares = float(((base - base.mean()) ** 2).sum() + ((cur - cur.mean()) ** 2).sum())
    return (
        float(cur.mean() - base.mean()),
        squares / df if df > 0 else math.nan,
        df,
        math.sqrt(1 / base.size + 1 / cur.size),
    )


def history_terms(
    job_means: np.ndarray,
    job_sizes: np.ndarray,
    within_ss: np.ndarray,
    within_df: np.ndarray,
    current_mean: np.ndarray,
    current_size: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The history test's ``(delta, s2, df, scale)`` from K baseline jobs (the last axis of
    ``job_means`` and ``job_sizes``: each job's mean log value and repeat count) and one current job.

    The current job is judged against the distribution of baseline jobs, a prediction interval:
    ``s2`` is the variance of the job means (``K - 1`` degrees of freedom), which holds the
    job-to-job shift as well as the repeats' noise; ``scale`` turns it into the variance of
    ``delta = current mean - mean of the job means``:

        var(delta) = s2 / K + tau2 + sigma2 / n_current,   tau2 = max(s2 - sigma2 / n_jobs, 0)

    where ``sigma2`` is the repeats' variance within jobs (pooled: ``within_ss / within_df``)
    and ``n_jobs`` the jobs' harmonic-mean size. With equal sizes this is ``s2 (1 + 1/K)``.
    Broadcasts over leading axes, so the simulation runs the very function the gate uses.
    """
    job_means, job_sizes = np.asarray(job_means, float), np.asarray(job_sizes, float)
    k = job_means.shape[-1]
    s2 = job_means.var(axis=-1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = np.where(within_df > 0, within_ss / np.where(within_df > 0, within_df, 1), 0.0)
        n_jobs = k / (1.0 / job_sizes).sum(axis=-1)
        tau2 = np.maximum(s2 - sigma2 / n_jobs, 0.0)
        variance = s2 / k + tau2 + sigma2 / np.asarray(current_size, float)
        scale = np.where(s2 > 0, np.sqrt(variance / np.where(s2 > 0, s2, 1.0)), math.sqrt(1 + 1 / k))
    delta = np.asarray(current_mean, float) - job_means.mean(axis=-1)
    return delta, s2, np.full(np.shape(s2), k - 1.0), scale


def history_summary(jobs: list[list[float]], current: list[float]) -> tuple[float, float, float, float]:
    """:func:`history_terms` for one metric: positive values of each baseline job and of the current one."""
    logs = [np.log(np.asarray(job, float)) for job in jobs]
    cur = np.log(np.asarray(current, float))
    within_ss = sum(float(((j - j.mean()) ** 2).sum()) for j in logs) + float(((cur - cur.mean()) ** 2).sum())
    within_df = sum(j.size - 1 for j in logs) + cur.size - 1
    terms = history_terms(
        np.array([j.mean() for j in logs]),
        np.array([j.size for j in logs]),
        np.float64(within_ss),
        np.float64(within_df),
        np.float64(cur.mean()),
        np.float64(cur.size),
    )
    return tuple(float(v) for v in terms)  # type: ignore[return-value]


@dataclass(frozen=True)
class Prior:
    """The empirical-Bayes prior, per metric (shaped like the variances).

    ``d0`` is the prior's degrees of freedom around ``s0_sq``; 0 means no moderation (the plain
    t), for every metric of a family too small to fit one and for outliers.
    """

    d0: np.ndarray
    s0_sq: np.ndarray
    outlier: np.ndarray


def fit_prior(
    s2: np.ndarray, df: np.ndarray, *, min_family: int = MIN_PRIOR_FAMILY, max_d0: float | np.ndarray = np.inf
) -> Prior:
    """Fit the prior along the last axis by Smyth's moments of the log-variances.

    The spread of the log-variances beyond what sampling alone gives (trigamma(d/2)) is the
    true heterogeneity, trigamma(d0/2). When there is none, d0 would be infinite; it is capped
    at the degrees of freedom the prior is fitted from instead, because a prior cannot know
    more than its data (uncapped, the test treats s0 as known and its false-alarm rate creeps
    above alpha). Only positive, finite variances take part.

    A metric whose variance is implausibly large under that prior (upper-tail F probability
    below ``OUTLIER_P``) is an outlier: the prior is refitted without it, and it is tested on
    its own variance, so one noisy metric does not borrow a quiet prior. (Judging each metric
    against a leave-one-out prior instead flags more chance outliers among equally noisy
    metrics and, measured, costs power and false alarms both.)
    """
    s2 = np.asarray(s2, dtype=float)
    df = np.broadcast_to(np.asarray(df, dtype=float), s2.shape)
    usable = np.isfinite(s2) & (s2 > 0) & (df > 0)
    half_df = np.where(usable, df, 2.0) / 2.0
    e = np.where(usable, np.log(np.where(usable, s2, 1.0)) - digamma(half_df) + np.log(half_df), 0.0)
    trig = np.where(usable, trigamma(half_df), 0.0)
    dfs = np.where(usable, df, 0.0)

    def sums(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n, s_e, s_e2, s_trig, s_df = (
            np.where(mask, v, 0.0).sum(axis=-1, keepdims=True) for v in (np.ones_like(e), e, e * e, trig, dfs)
        )
        return n, s_e, s_e2, s_trig, s_df

    d0_all, s0_all = _prior_from_sums(*sums(usable), min_family=min_family, max_d0=max_d0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(usable & (s0_all > 0), s2 / np.where(s0_all > 0, s0_all, 1.0), 0.0)
        nu = np.where(d0_all > 0, d0_all, 1.0)
        d = np.where(usable, df, 1.0)
        tail = betainc(nu / 2.0, d / 2.0, nu / (nu + d * ratio))
    outlier = usable & (d0_all > 0) & (tail < OUTLIER_P)
    d0, s0_sq = _prior_from_sums(*sums(usable & ~outlier), min_family=min_family, max_d0=max_d0)
    shape = s2.shape
    return Prior(
        d0=np.where(outlier, 0.0, np.broadcast_to(d0, shape)),
        s0_sq=np.where(outlier, 0.0, np.broadcast_to(s0_sq, shape)),
        outlier=outlier,
    )


def _prior_from_sums(
    n: np.ndarray,
    s_e: np.ndarray,
    s_e2: np.ndarray,
    s_trig: np.ndarray,
    s_df: np.ndarray,
    min_family: int,
    max_d0: float | np.ndarray = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """(d0, s0²) from the count, sum and sum of squares of the centred log-variances ``e``,
    the sum of their sampling variances (trigamma) and of their degrees of freedom."""
    with np.errstate(invalid="ignore", divide="ignore"):
        e_mean = s_e / np.maximum(n, 1)
        spread = np.maximum(s_e2 - n * e_mean * e_mean, 0.0) / np.maximum(n - 1, 1)
        excess = spread - s_trig / np.maximum(n, 1)
    d0 = np.where(excess > 0, 2.0 * trigamma_inverse(np.where(excess > 0, excess, 1.0)), np.inf)
    d0 = np.minimum(np.minimum(d0, s_df), max_d0)
    half_d0 = np.maximum(d0, 1e-8) / 2.0
    s0_sq = np.exp(e_mean + digamma(half_d0) - np.log(half_d0))
    enough = n >= min_family
    return np.where(enough, d0, 0.0), np.where(enough, s0_sq, 0.0)


@dataclass(frozen=True)
class FamilyTest:
    """Per-metric results of the moderated t, arrays shaped like the inputs."""

    se: np.ndarray
    df: np.ndarray
    p_increase: np.ndarray
    p_decrease: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    prior: Prior


def moderated_t(
    delta: np.ndarray,
    s2: np.ndarray,
    df: np.ndarray,
    scale: np.ndarray,
    *,
    confidence: float | None = 0.95,
    min_family: int = MIN_PRIOR_FAMILY,
    max_d0: float | np.ndarray = np.inf,
) -> FamilyTest:
    """One-sided p-values (and a two-sided CI of ``delta``) for every metric of the family.

    Entries whose ``s2`` is NaN (fewer than two repeats on a side) get NaN results and take no
    part in the prior. ``confidence=None`` skips the interval (the simulation needs speed).
    """
    delta, s2, df, scale = (np.asarray(v, dtype=float) for v in (delta, s2, df, scale))
    prior = fit_prior(s2, df, min_family=min_family, max_d0=max_d0)
    d0, s0_sq = prior.d0, prior.s0_sq
    with np.errstate(invalid="ignore", divide="ignore"):
        moderated = np.where(np.isinf(d0), s0_sq, (d0 * s0_sq + df * s2) / (d0 + df))
        total_df = d0 + df
        se = np.sqrt(moderated) * scale
        t = np.where(se > 0, delta / np.where(se > 0, se, 1.0), np.sign(delta) * np.inf)
    # Zero noise and zero change: nothing moved, so neither direction is significant.
    t = np.where((se == 0) & (delta == 0), 0.0, t)
    t = np.where(np.isnan(s2), np.nan, t)
    total_df = np.where(np.isnan(s2), np.nan, total_df)
    # One tail evaluation serves both sides; the small p-value (the one that matters) stays exact.
    tail = t_sf(np.abs(t), total_df)
    p_increase = np.where(t > 0, tail, 1.0 - tail)
    p_decrease = np.where(t > 0, 1.0 - tail, tail)
    if confidence is None:
        half = np.full(delta.shape, np.nan)
    else:
        half = _critical(0.5 + confidence / 2.0, total_df) * se
    return FamilyTest(
        se=se,
        df=total_df,
        p_increase=p_increase,
        p_decrease=p_decrease,
        ci_low=delta - half,
        ci_high=delta + half,
        prior=prior,
    )


def _critical(q: float, df: np.ndarray) -> np.ndarray:
    """t quantiles, computed once per distinct df."""
    out = np.full(df.shape, np.nan)
    finite = ~np.isnan(df)
    if finite.any():
        values, inverse = np.unique(df[finite], return_inverse=True)
        out[finite] = t_ppf(np.full(values.shape, q), values)[inverse]
    return out


def holm_adjust(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis; NaN p-values are not in the family and stay NaN.

    A metric is significant at family level ``alpha`` exactly when its adjusted p is <= alpha.
    """
    p = np.asarray(p, dtype=float)
    tested = ~np.isnan(p)
    m = tested.sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(tested, p, np.inf), axis=-1, kind="stable")
    ranked = np.take_along_axis(np.where(tested, p, np.inf), order, axis=-1)
    rank = np.arange(p.shape[-1])
    scaled = np.minimum(1.0, ranked * np.maximum(m - rank, 1))
    adjusted = np.maximum.accumulate(scaled, axis=-1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return np.where(tested, out, np.nan)
