"""Paired comparison of experiments and the regression verdict used by the gate."""

from __future__ import annotations

import random

import pytest
from scipy import stats as sps

from goldloop.domain.comparison import compare_key, regression_verdicts, significant_regression


def _binary(n: int, wrong: set[int]) -> dict[str, list[float | bool | None]]:
    return {f"ex{i}": [0.0 if i in wrong else 1.0] for i in range(n)}


def test_binary_scores_use_exact_mcnemar_and_count_outcomes() -> None:
    a = _binary(100, {1, 2})
    b = _binary(100, {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})  # ex1 fixed, 10 broken
    cmp = compare_key("correct", a, b)
    assert cmp.binary
    assert cmp.test.test == "mcnemar"
    assert (cmp.improved, cmp.regressed, cmp.unchanged) == (1, 10, 89)
    assert cmp.test.p_value == pytest.approx(sps.binomtest(10, 11, 0.5).pvalue)
    assert cmp.mean_diff == pytest.approx(-0.09)
    assert cmp.ci_low < -0.09 < cmp.ci_high < 0
    verdict = significant_regression(cmp)
    assert verdict.regression
    assert "correct" in verdict.reason
    assert "significant regression" in verdict.reason


def test_small_drop_is_not_significant() -> None:
    cmp = compare_key("correct", _binary(50, set()), _binary(50, {3, 9}))
    assert cmp.regressed == 2
    verdict = significant_regression(cmp)
    assert not verdict.regression
    assert "not significant" in verdict.reason


def test_improvement_is_never_a_regression() -> None:
    cmp = compare_key("correct", _binary(40, set(range(20))), _binary(40, set()))
    assert cmp.test.p_value < 0.001
    assert not significant_regression(cmp).regression


def test_lower_is_better_flips_direction() -> None:
    a = {f"e{i}": [100.0 + i] for i in range(30)}
    b = {f"e{i}": [130.0 + i] for i in range(30)}
    cmp = compare_key("latency_ms", a, b, higher_is_better=False)
    assert cmp.regressed == 30
    assert cmp.improved == 0
    assert cmp.test.test == "wilcoxon"
    assert significant_regression(cmp).regression
    cmp_hi = compare_key("latency_ms", a, b, higher_is_better=True)
    assert cmp_hi.improved == 30
    assert not significant_regression(cmp_hi).regression


def test_continuous_scores_use_wilcoxon_on_per_example_means() -> None:
    rng = random.Random(5)
    a = {f"e{i}": [rng.random()] for i in range(25)}
    b = {k: [v[0] - 0.05 + rng.gauss(0, 0.02)] for k, v in a.items()}
    cmp = compare_key("quality", a, b)
    diffs = [b[k][0] - a[k][0] for k in sorted(a)]
    assert cmp.test.p_value == pytest.approx(sps.wilcoxon(diffs, method="exact").pvalue)
    assert cmp.mean_diff == pytest.approx(sum(diffs) / len(diffs))


def test_missing_scores_and_one_sided_examples_are_left_out() -> None:
    a = {"x": [1.0], "y": [None], "z": [0.0], "only_a": [1.0]}
    b = {"x": [1.0], "y": [1.0], "z": [1.0], "only_b": [0.0]}
    cmp = compare_key("k", a, b)
    assert cmp.n_pairs == 2
    assert cmp.only_in_a == 1  # "y" has no usable score in A: it is not a pair
    assert cmp.only_in_b == 2
    assert [e.example_id for e in cmp.examples] == ["x", "z"]


def test_repetitions_give_noise_and_say_whether_a_change_exceeds_it() -> None:
    a = {
        "stable": [1.0, 1.0, 1.0],
        "noisy": [0.2, 0.9, 0.5],
        "moved": [0.80, 0.82, 0.81],
    }
    b = {
        "stable": [1.0, 1.0, 1.0],
        "noisy": [0.6, 0.1, 0.7],
        "moved": [0.50, 0.52, 0.49],
    }
    cmp = compare_key("judge", a, b)
    by_id = {e.example_id: e for e in cmp.examples}
    assert not cmp.binary
    assert cmp.test.test == "wilcoxon"
    assert by_id["stable"].noise == 0.0
    assert by_id["stable"].exceeds_noise is False
    assert by_id["noisy"].noise is not None
    assert by_id["noisy"].noise > 0.2
    assert by_id["noisy"].exceeds_noise is False
    assert by_id["moved"].exceeds_noise is True
    assert cmp.regressed_beyond_noise == 1
    assert cmp.noise is not None
    assert cmp.noise > 0


def test_single_repetition_has_no_noise_estimate() -> None:
    cmp = compare_key("k", {"a": [0.3]}, {"a": [0.5]})
    assert cmp.examples[0].noise is None
    assert cmp.examples[0].exceeds_noise is None
    assert cmp.noise is None


def test_noisy_judge_on_identical_agent_passes() -> None:
    # same agent twice, scored by a judge that flips 15% of its verdicts at random
    rng = random.Random(99)
    truth = {f"e{i}": rng.random() < 0.8 for i in range(200)}

    def run() -> dict[str, list[float | bool | None]]:
        return {k: [float(v != (rng.random() < 0.15))] for k, v in truth.items()}

    cmp = compare_key("correct", run(), run())
    assert cmp.improved > 0
    assert cmp.regressed > 0
    assert not significant_regression(cmp).regression


def test_explicit_tests_and_validation() -> None:
    a = _binary(20, set())
    b = _binary(20, {0, 1, 2, 3, 4, 5})
    assert compare_key("k", a, b, test="sign").test.test == "sign"
    assert compare_key("k", a, b, test="permutation").test.test == "permutation"
    assert compare_key("k", a, b, test="wilcoxon").test.test == "wilcoxon"
    cont = {"e": [0.5]}
    with pytest.raises(ValueError, match="McNemar"):
        compare_key("k", cont, cont, test="mcnemar")


def test_holm_adjusted_verdicts_over_several_keys() -> None:
    base = _binary(60, set())
    worse = _binary(60, set(range(7)))  # p = 2/128 = 0.0156 alone
    same = _binary(60, set())
    cmps = [compare_key("a", base, worse), compare_key("b", base, same)]
    raw = [significant_regression(c) for c in cmps]
    assert raw[0].regression
    holm = regression_verdicts(cmps, alpha=0.05)
    assert holm[0].p_value == pytest.approx(min(1.0, 2 * cmps[0].test.p_value))
    assert holm[0].regression  # 0.031 < 0.05
    strict = regression_verdicts(cmps, alpha=0.02)
    assert not strict[0].regression
    assert regression_verdicts(cmps, alpha=0.02, adjust="none")[0].regression


def test_min_effect_and_empty_comparison() -> None:
    cmp = compare_key("k", _binary(200, set()), _binary(200, set(range(12))))
    assert significant_regression(cmp).regression
    assert not significant_regression(cmp, min_effect=0.1).regression
    empty = compare_key("k", {}, {})
    assert empty.n_pairs == 0
    assert not significant_regression(empty).regression
    assert cmp.to_dict(with_examples=False)["test"]["test"] == "mcnemar"
    assert len(cmp.to_dict()["examples"]) == 200
