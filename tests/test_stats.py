"""kitt.stats against closed forms, published table values and scipy.special (test-only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kitt import stats


@pytest.mark.parametrize(
    ("q", "df", "expected"),
    [
        # Student's t quantiles as printed in standard tables.
        (0.95, 1, 6.313752),
        (0.975, 1, 12.706205),
        (0.975, 2, 4.302653),
        (0.975, 4, 2.776445),
        (0.999, 4, 7.173182),
        (0.975, 8, 2.306004),
        (0.995, 8, 3.355387),
        (0.975, 30, 2.042272),
        (0.975, math.inf, 1.959964),
    ],
)
def test_t_quantiles_match_tables(q: float, df: float, expected: float) -> None:
    assert stats.t_ppf(q, df) == pytest.approx(expected, abs=2e-6)
    assert stats.t_cdf(expected, df) == pytest.approx(q, abs=1e-6)


def test_t_cdf_matches_closed_forms_for_one_and_two_df() -> None:
    t = np.array([-40.0, -3.0, -0.5, 0.0, 0.7, 2.0, 10.0, 1e4])
    assert np.allclose(stats.t_cdf(t, 1), 0.5 + np.arctan(t) / math.pi, atol=1e-14)
    assert np.allclose(stats.t_cdf(t, 2), 0.5 + t / (2 * np.sqrt(2 + t * t)), atol=1e-14)


def test_t_tails_are_accurate_far_out_and_reach_the_normal() -> None:
    # df = 2 has the closed form sf(t) = (1 - t / sqrt(2 + t²)) / 2; check a tiny tail relatively.
    t = 300.0
    exact = 0.5 * (1 - t / math.sqrt(2 + t * t))
    assert stats.t_sf(t, 2) == pytest.approx(exact, rel=1e-6)
    assert stats.t_sf(3.0, 1e7) == pytest.approx(0.5 * math.erfc(3 / math.sqrt(2)), rel=1e-9)
    assert stats.t_sf(3.0, 1000) == pytest.approx(0.0013834, rel=1e-3)
    assert stats.t_sf(np.inf, 5) == 0.0 and stats.t_sf(-np.inf, 5) == 1.0
    assert np.isnan(stats.t_sf(np.nan, 5))


def test_incomplete_beta_identities() -> None:
    x = np.linspace(0.0, 1.0, 11)
    assert np.allclose(stats.betainc(1, 1, x), x)
    assert np.allclose(stats.betainc(3.5, 1, x), x**3.5)
    assert np.allclose(stats.betainc(1, 2.5, x), 1 - (1 - x) ** 2.5)
    assert np.allclose(stats.betainc(2.3, 7.1, x) + stats.betainc(7.1, 2.3, 1 - x), 1.0)
    assert stats.betainc(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-10)


def test_gamma_family_functions() -> None:
    euler = 0.5772156649015329
    assert stats.digamma([1.0, 0.5, 10.0]) == pytest.approx([-euler, -euler - 2 * math.log(2), 2.251752589066721])
    assert stats.trigamma([1.0, 0.5, 4.0]) == pytest.approx(
        [math.pi**2 / 6, math.pi**2 / 2, math.pi**2 / 6 - 1 - 1 / 4 - 1 / 9]
    )
    x = np.array([0.05, 0.3, 4.0, 250.0, 1e5])
    assert stats.trigamma_inverse(stats.trigamma(x)) == pytest.approx(x, rel=1e-9)
    values = np.array([1e-3, 0.5, 1.0, 2.5, 7.9, 8.0, 30.0, 1e4])
    assert stats._lgamma(values) == pytest.approx([math.lgamma(v) for v in values], rel=1e-12, abs=1e-10)


def test_holm_adjusted_p_values() -> None:
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    adjusted = stats.holm_adjust(p)
    assert adjusted[[0, 1, 2, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[3])
    assert (stats.holm_adjust(p) <= 0.05).tolist() == [True, False, False, False, True]
    # Broadcasts over leading axes (the simulation's reports).
    batch = np.array([[0.001, 0.5], [0.02, 0.03], [0.04, 0.03]])
    assert (stats.holm_adjust(batch) <= 0.05).tolist() == [[True, False], [True, True], [False, False]]


def test_without_a_prior_the_moderated_t_is_the_pooled_two_sample_t() -> None:
    base, cur = [100.0, 103.0, 98.0, 101.0], [106.0, 108.0, 104.0]
    delta, s2, df, scale = stats.log_summary(base, cur)
    lb, lc = np.log(base), np.log(cur)
    pooled = (((lb - lb.mean()) ** 2).sum() + ((lc - lc.mean()) ** 2).sum()) / 5
    assert (delta, s2, df) == (pytest.approx(lc.mean() - lb.mean()), pytest.approx(pooled), 5)
    result = stats.moderated_t([delta], [s2], [df], [scale])  # one metric: no prior
    t = delta / math.sqrt(pooled * (1 / 4 + 1 / 3))
    assert result.prior.d0.tolist() == [0.0]
    assert result.p_increase[0] == pytest.approx(float(stats.t_sf(t, 5)), rel=1e-12)
    assert result.p_increase[0] + result.p_decrease[0] == pytest.approx(1.0)
    half = 2.570582 * math.sqrt(pooled * (1 / 4 + 1 / 3))  # t(0.975, 5) from tables
    assert result.ci_low[0] == pytest.approx(delta - half, abs=1e-6)
    assert result.ci_high[0] == pytest.approx(delta + half, abs=1e-6)


def test_prior_is_strong_for_equal_noise_and_weak_for_unequal_noise() -> None:
    rng = np.random.default_rng(5)
    df = np.full(40, 8.0)
    equal = 0.03**2 * rng.chisquare(8, 40) / 8
    prior = stats.fit_prior(equal, df)
    assert prior.d0[0] > 100 and prior.d0[0] <= 40 * 8  # capped at the data's degrees of freedom
    assert math.sqrt(prior.s0_sq[0]) == pytest.approx(0.03, rel=0.15)
    unequal = np.geomspace(0.005, 0.2, 40) ** 2 * rng.chisquare(8, 40) / 8
    assert stats.fit_prior(unequal, df).d0[0] < 5


def test_small_families_get_no_prior_and_outliers_are_tested_alone() -> None:
    assert stats.fit_prior([1e-4, 2e-4], [8, 8]).d0.tolist() == [0.0, 0.0]
    s2 = np.array([0.031, 0.029, 0.030, 0.028, 0.032, 0.030, 0.031, 0.029, 0.09]) ** 2
    prior = stats.fit_prior(s2, np.full(9, 8.0))
    assert prior.outlier.tolist() == [False] * 8 + [True]
    assert prior.d0[-1] == 0.0 and prior.d0[0] > 0
    # Zero variances (identical repeats) take no part in the fit and do not break it.
    assert np.isfinite(stats.fit_prior(np.append(s2[:8], 0.0), np.full(9, 8.0)).s0_sq).all()


def test_zero_noise_zero_change_is_not_significant() -> None:
    result = stats.moderated_t([0.0, 0.1], [0.0, 0.0], [4, 4], [0.7, 0.7])
    assert result.p_increase.tolist() == [0.5, 0.0]
    assert result.p_decrease.tolist() == [0.5, 1.0]


def test_special_functions_agree_with_scipy() -> None:
    """The hand-written functions against scipy.special (a test-only dependency): the decision to
    keep them out of scipy's 142 MB rests on this accuracy (docs/architecture.md)."""
    special = pytest.importorskip("scipy.special", reason="scipy is in the test extras")
    a = np.array([0.5, 1.0, 2.5, 4.0, 10.0, 60.0, 500.0])
    b = np.array([0.5, 1.5, 3.0, 20.0])
    x = np.array([1e-6, 0.01, 0.2, 0.5, 0.8, 0.99, 1 - 1e-6])
    aa, bb, xx = np.meshgrid(a, b, x, indexing="ij")
    assert np.allclose(stats.betainc(aa, bb, xx), special.betainc(aa, bb, xx), rtol=1e-10, atol=1e-15)
    t = np.array([0.0, 0.3, 1.0, 2.5, 5.0, 12.0, 40.0])
    df = np.array([1.0, 2.0, 3.0, 4.0, 8.0, 17.5, 48.0, 300.0])
    tt, dd = np.meshgrid(t, df, indexing="ij")
    # Relative to the tail itself, so the small p-values that decide the gate are exact too.
    assert np.allclose(stats.t_sf(tt, dd), special.stdtr(dd, -tt), rtol=1e-9, atol=0)
    q = np.array([0.6, 0.9, 0.975, 0.999, 0.99999])
    qq, dq = np.meshgrid(q, df, indexing="ij")
    assert np.allclose(stats.t_ppf(qq, dq), special.stdtrit(dq, qq), rtol=1e-9)
    z = np.array([0.05, 0.5, 1.0, 3.7, 25.0, 1e4])
    assert np.allclose(stats.digamma(z), special.digamma(z), rtol=1e-10, atol=1e-10)
    assert np.allclose(stats.trigamma(z), special.polygamma(1, z), rtol=1e-9)
