"""The alert tests checked against scipy on fixed data."""

from __future__ import annotations

import math

import pytest

from goldloop.domain.significance import (
    Moments,
    mean_drop,
    proportion_drop,
    regularized_beta,
    student_t_sf,
)

scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")


@pytest.mark.parametrize(
    ("a", "b", "x"), [(0.5, 0.5, 0.3), (2.0, 3.0, 0.4), (10.0, 0.5, 0.95), (50.0, 0.5, 0.999)]
)
def test_regularized_beta_matches_scipy(a: float, b: float, x: float) -> None:
    assert regularized_beta(a, b, x) == pytest.approx(scipy_special.betainc(a, b, x), rel=1e-10)


@pytest.mark.parametrize("t", [-3.0, -0.5, 0.0, 0.7, 2.1, 8.0])
@pytest.mark.parametrize("df", [1.0, 2.5, 7.3, 30.0, 400.0])
def test_student_t_tail_matches_scipy(t: float, df: float) -> None:
    assert student_t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-9, abs=1e-15)


def test_welch_matches_scipy_one_sided() -> None:
    baseline = [0.9, 0.8, 1.0, 0.95, 0.85, 0.9, 1.0, 0.7, 0.88, 0.92]
    current = [0.6, 0.9, 0.5, 0.7, 0.65, 0.8, 0.4]
    ours = mean_drop(Moments.of(baseline), Moments.of(current))
    ref = scipy_stats.ttest_ind(baseline, current, equal_var=False, alternative="greater")
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_moments_from_sums_equal_direct() -> None:
    values = [1.5, 2.0, 7.25, 3.0, 3.0]
    direct = Moments.of(values)
    summed = Moments.from_sums(len(values), sum(values), sum(v * v for v in values))
    assert summed.mean == pytest.approx(direct.mean)
    assert summed.variance == pytest.approx(direct.variance)


def test_two_proportion_z_matches_textbook_formula_and_scipy_normal() -> None:
    # 180/200 good in the baseline, 150/200 now.
    res = proportion_drop(180, 200, 150, 200)
    pooled = 330 / 400
    z = (0.9 - 0.75) / math.sqrt(pooled * (1 - pooled) * (2 / 200))
    assert res.statistic == pytest.approx(z)
    assert res.p_value == pytest.approx(scipy_stats.norm.sf(z), rel=1e-12)
    assert res.p_value < 0.001


def test_five_noisy_samples_are_not_significant_but_a_real_drop_is() -> None:
    assert proportion_drop(90, 100, 4, 5).p_value > 0.05  # 80% of 5 samples is noise
    assert proportion_drop(900, 1000, 60, 100).p_value < 1e-6


def test_identical_windows_and_degenerate_variance() -> None:
    assert proportion_drop(50, 100, 50, 100).p_value == pytest.approx(0.5)
    same = mean_drop(Moments(10, 1.0, 0.0), Moments(10, 1.0, 0.0))
    assert same.p_value == 0.5
    worse = mean_drop(Moments(10, 1.0, 0.0), Moments(10, 0.0, 0.0))
    assert worse.p_value == 0.0
    with pytest.raises(ValueError, match="at least two"):
        mean_drop(Moments(1, 1.0, 0.0), Moments(10, 1.0, 0.1))
