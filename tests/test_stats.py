"""The statistics in goldloop.domain.stats checked against scipy on fixed data."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from scipy import stats as sps

from goldloop.domain.stats import (
    binomial_two_sided,
    bootstrap_indices,
    bootstrap_mean_ci,
    holm_adjust,
    mcnemar_exact,
    normal_sf,
    paired_permutation_test,
    percentile,
    rank_abs,
    sign_test,
    wilcoxon_signed_rank,
)

# fixed data sets: no ties; ties; ties and zeros; larger with ties and zeros
NO_TIES = [0.8, -0.3, 1.7, 2.2, -0.05, 0.9, 1.1, -0.6, 0.45, 1.35, 0.25, -1.05]
WITH_TIES = [0.5, 0.5, -0.5, 1.0, 1.0, 1.0, -2.0, 0.25, 1.5, -0.25, 2.0]
TIES_AND_ZEROS = [0.0, 0.5, 0.5, -0.5, 1.0, 0.0, 1.0, 1.0, -2.0, 0.25, 1.5, 0.0]
RNG = random.Random(7)
LARGE = [round(RNG.gauss(0.15, 1.0), 1) for _ in range(80)] + [0.0] * 6


@pytest.mark.parametrize("n", [0, 1, 2, 5, 10, 17, 40, 101])
def test_binomial_two_sided_matches_scipy(n: int) -> None:
    for k in range(n + 1):
        expected = 1.0 if n == 0 else sps.binomtest(k, n, 0.5).pvalue
        assert binomial_two_sided(k, n) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_binomial_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_two_sided(5, 3)


def test_sign_test_drops_zeros_and_matches_binomtest() -> None:
    res = sign_test(TIES_AND_ZEROS)
    pos = sum(1 for d in TIES_AND_ZEROS if d > 0)
    neg = sum(1 for d in TIES_AND_ZEROS if d < 0)
    assert res.n == pos + neg == 9
    assert res.p_value == pytest.approx(sps.binomtest(pos, pos + neg, 0.5).pvalue, rel=1e-12)
    assert res.method == "exact"


def test_mcnemar_exact_is_binomial_on_discordant_pairs() -> None:
    res = mcnemar_exact(10, 0)
    assert res.p_value == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(7, 3).p_value == pytest.approx(sps.binomtest(7, 10, 0.5).pvalue)
    assert mcnemar_exact(0, 0).p_value == 1.0
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact(-1, 2)


def test_rank_abs_average_ranks_and_tie_groups() -> None:
    ranks, ties = rank_abs([1.0, -1.0, 3.0, 2.0, -2.0, 2.0])
    assert ranks == [1.5, 1.5, 6.0, 4.0, 4.0, 4.0]
    assert sorted(ties) == [1, 2, 3]
    scipy_ranks = sps.rankdata(np.abs(WITH_TIES))
    assert rank_abs(WITH_TIES)[0] == pytest.approx(list(scipy_ranks))


@pytest.mark.parametrize("data", [NO_TIES, NO_TIES[:7], [x * 1.3 + 0.11 for x in range(-9, 31)]])
def test_wilcoxon_exact_without_ties_matches_scipy(data: list[float]) -> None:
    res = wilcoxon_signed_rank(data, method="exact")
    ref = sps.wilcoxon(data, method="exact")
    assert res.method == "exact"
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)


@pytest.mark.parametrize("data", [WITH_TIES, TIES_AND_ZEROS])
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
def test_wilcoxon_exact_with_ties_matches_scipy_permutation(
    data: list[float], zero_method: str
) -> None:
    # for n <= 13 with ties or zeros, scipy enumerates all 2**n sign flips: the conditional
    # exact distribution our dynamic programme computes
    res = wilcoxon_signed_rank(data, zero_method=zero_method)
    ref = sps.wilcoxon(data, zero_method=zero_method, method="auto")
    assert res.method == "exact"
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_wilcoxon_exact_with_ties_matches_brute_force() -> None:
    data = [d for d in TIES_AND_ZEROS if d != 0]
    ranks, _ = rank_abs(data)
    observed = sum(r for d, r in zip(data, ranks, strict=True) if d > 0)
    total = sum(ranks)
    sums = [
        sum(r for r, s in zip(ranks, signs, strict=True) if s)
        for signs in itertools.product([0, 1], repeat=len(ranks))
    ]
    lower = sum(1 for s in sums if s <= observed + 1e-9)
    upper = sum(1 for s in sums if s >= observed - 1e-9)
    expected = min(1.0, 2 * min(lower, upper) / len(sums))
    assert wilcoxon_signed_rank(data, method="exact").p_value == pytest.approx(expected)
    assert total == pytest.approx(len(data) * (len(data) + 1) / 2)


@pytest.mark.parametrize("data", [NO_TIES, WITH_TIES, TIES_AND_ZEROS, LARGE])
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
@pytest.mark.parametrize("correction", [True, False])
def test_wilcoxon_normal_approximation_matches_scipy(
    data: list[float], zero_method: str, correction: bool
) -> None:
    res = wilcoxon_signed_rank(
        data, zero_method=zero_method, method="normal", correction=correction
    )
    ref = sps.wilcoxon(data, zero_method=zero_method, method="asymptotic", correction=correction)
    assert res.method == "normal"
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_wilcoxon_auto_is_normal_for_large_samples() -> None:
    res = wilcoxon_signed_rank(LARGE)
    ref = sps.wilcoxon(LARGE, method="asymptotic", correction=True)
    assert res.method == "normal"
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_wilcoxon_all_zero_differences_is_no_evidence() -> None:
    res = wilcoxon_signed_rank([0.0, 0.0, 0.0])
    assert (res.p_value, res.n) == (1.0, 0)


def test_wilcoxon_rejects_unknown_options() -> None:
    with pytest.raises(ValueError, match="zero_method"):
        wilcoxon_signed_rank([1.0], zero_method="zsplit")
    with pytest.raises(ValueError, match="method"):
        wilcoxon_signed_rank([1.0], method="magic")


def _scipy_permutation(data: list[float]) -> float:
    res = sps.permutation_test(
        (np.asarray(data),),
        np.mean,
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    return float(res.pvalue)


@pytest.mark.parametrize("data", [NO_TIES, WITH_TIES, [d for d in TIES_AND_ZEROS if d != 0]])
def test_permutation_exact_matches_scipy(data: list[float]) -> None:
    res = paired_permutation_test(data)
    assert res.method == "exact"
    assert res.p_value == pytest.approx(_scipy_permutation(data), rel=1e-9)


def test_permutation_zeros_do_not_change_the_p_value() -> None:
    with_zeros = paired_permutation_test(TIES_AND_ZEROS)
    without = paired_permutation_test([d for d in TIES_AND_ZEROS if d != 0])
    assert with_zeros.p_value == pytest.approx(without.p_value)
    assert with_zeros.n == without.n == 9


def test_permutation_monte_carlo_is_seeded_and_close_to_exact() -> None:
    data = [*NO_TIES, 0.3, -0.2, 0.7, 1.4, -0.9, 0.15, 0.6]  # 19 values: above the exact limit
    exact = paired_permutation_test(data, exact_max_n=25)
    mc1 = paired_permutation_test(data, n_resamples=20_000, seed=3)
    mc2 = paired_permutation_test(data, n_resamples=20_000, seed=3)
    assert exact.method == "exact"
    assert mc1.method == "monte_carlo"
    assert mc1 == mc2
    # Monte Carlo standard error at p ~ 0.01 with 20k draws is ~0.0007
    assert abs(mc1.p_value - exact.p_value) < 0.004
    assert mc1.p_value > 0


def test_normal_sf_matches_scipy() -> None:
    for z in (-3.0, -1.0, 0.0, 0.5, 1.96, 4.0):
        assert normal_sf(z) == pytest.approx(sps.norm.sf(z), rel=1e-12)


def test_percentile_is_numpy_linear() -> None:
    values = sorted([3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0])
    for q in (0.0, 0.025, 0.25, 0.5, 0.975, 1.0):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q * 100))
    with pytest.raises(ValueError, match="empty"):
        percentile([], 0.5)


def test_bootstrap_ci_replays_the_same_resampling_in_numpy() -> None:
    values = LARGE[:40]
    low, high = bootstrap_mean_ci(values, n_resamples=500, seed=11)
    idx = np.asarray(bootstrap_indices(len(values), 500, 11))
    means = np.asarray(values)[idx].mean(axis=1)
    assert low == pytest.approx(np.percentile(means, 2.5))
    assert high == pytest.approx(np.percentile(means, 97.5))
    assert low < float(np.mean(values)) < high


def test_bootstrap_ci_close_to_scipy_percentile_bootstrap() -> None:
    values = LARGE
    low, high = bootstrap_mean_ci(values, n_resamples=4000, seed=1)
    ref = sps.bootstrap(
        (np.asarray(values),),
        np.mean,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(1),
    ).confidence_interval
    # different random streams: the two intervals agree to within resampling error
    width = ref.high - ref.low
    assert abs(low - ref.low) < 0.05 * width
    assert abs(high - ref.high) < 0.05 * width


def test_bootstrap_ci_is_deterministic_and_handles_degenerate_input() -> None:
    assert bootstrap_mean_ci(NO_TIES, seed=5) == bootstrap_mean_ci(NO_TIES, seed=5)
    assert bootstrap_mean_ci([0.5]) == (0.5, 0.5)
    assert bootstrap_mean_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    low, high = bootstrap_mean_ci([])
    assert low != low
    assert high != high
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean_ci([1.0, 2.0], confidence=1.5)


def test_bootstrap_ci_coverage_is_sane() -> None:
    # 200 samples of 40 from a distribution with mean 0.3: a 90% interval should cover the
    # true mean roughly 90% of the time (percentile intervals run a little short at small n)
    rng = random.Random(2024)
    covered = 0
    trials = 200
    for t in range(trials):
        sample = [rng.gauss(0.3, 1.0) for _ in range(40)]
        low, high = bootstrap_mean_ci(sample, confidence=0.9, n_resamples=300, seed=t)
        covered += low <= 0.3 <= high
    assert 0.82 <= covered / trials <= 0.97


def test_holm_adjust_known_values() -> None:
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([]) == []
