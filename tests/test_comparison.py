"""Paired comparison of experiments and the regression verdict used by the gate: the numbers
against scipy, and the verdict's properties (errors, skew, comparability, clusters, power)."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats as sps

from goldloop.domain.comparability import Side, cluster_of, compare_sides
from goldloop.domain.comparison import (
    Failed,
    compare_key,
    p_label,
    regression_verdicts,
    significant_regression,
)

Scores = dict[str, list[float | bool | Failed | None]]


def _binary(n: int, wrong: set[int]) -> Scores:
    return {f"ex{i}": [0.0 if i in wrong else 1.0] for i in range(n)}


def test_binary_scores_use_the_exact_one_sided_mcnemar_test() -> None:
    a = _binary(100, {1, 2})
    b = _binary(100, {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})  # ex1 fixed, 10 broken
    cmp = compare_key("correct", a, b)
    assert cmp.binary
    assert cmp.test.test == "tango-mcnemar"
    assert (cmp.improved, cmp.regressed, cmp.unchanged) == (1, 10, 89)
    one_sided = sps.binomtest(10, 11, 0.5, alternative="greater").pvalue
    assert cmp.test.p_value == pytest.approx(one_sided)
    assert cmp.mean_diff == pytest.approx(-0.09)
    assert cmp.ci_low < -0.09 < cmp.ci_high < 0
    verdict = significant_regression(cmp)
    assert verdict.regression
    assert verdict.status == "regression"
    assert "significant regression" in verdict.reason
    assert "p=0.00586 (one-sided)" in verdict.reason


def test_small_drop_is_not_significant_and_an_improvement_never_a_regression() -> None:
    cmp = compare_key("correct", _binary(50, set()), _binary(50, {3, 9}))
    assert cmp.regressed == 2
    assert not significant_regression(cmp).regression
    better = compare_key("correct", _binary(40, set(range(20))), _binary(40, set()))
    assert better.ci_low > 0
    assert better.test.p_value == 1.0
    assert not significant_regression(better).regression


def test_lower_is_better_flips_direction() -> None:
    a = {f"e{i}": [100.0 + i] for i in range(30)}
    b = {f"e{i}": [130.0 + i + (i % 3)] for i in range(30)}
    cmp = compare_key("latency_ms", a, b, higher_is_better=False)
    assert (cmp.regressed, cmp.improved) == (30, 0)
    assert cmp.test.test == "hall-t"
    assert significant_regression(cmp).regression
    cmp_hi = compare_key("latency_ms", a, b, higher_is_better=True)
    assert cmp_hi.improved == 30
    assert not significant_regression(cmp_hi).regression


def test_skewed_improvement_with_two_large_drops_is_not_a_regression() -> None:
    # The case: 18 of 20 examples slightly better, 2 much worse. A rank test called
    # it "significant regression, p=0.0084"; the mean barely moved.
    a = {f"e{i}": [0.5] for i in range(20)}
    b = {f"e{i}": [0.55 if i < 18 else 0.05] for i in range(20)}
    cmp = compare_key("quality", a, b)
    assert cmp.mean_diff == pytest.approx((18 * 0.05 - 2 * 0.45) / 20)
    verdict = significant_regression(cmp)
    assert not verdict.regression
    assert cmp.test.p_value > 0.3
    assert cmp.ci_low < cmp.mean_diff < cmp.ci_high


def _skewed_null(rng: random.Random, n: int, sign: float) -> tuple[Scores, Scores]:
    """Per-example differences with mean exactly 0 and skewness 2 (exponential, shifted)."""
    a: Scores = {f"e{i}": [0.5] for i in range(n)}
    b: Scores = {f"e{i}": [0.5 + sign * 0.1 * (rng.expovariate(1.0) - 1.0)] for i in range(n)}
    return a, b


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_false_failure_rate_under_skewed_null_is_near_alpha(sign: float) -> None:
    # 400 seeded comparisons at n=50: the rate must be alpha within Monte Carlo error
    # (sd 0.011), not the 34% a two-sided rank test gave, nor the 2.5% of a halved alpha.
    rng = random.Random(20261207 + int(sign))
    fails = 0
    for _ in range(400):
        a, b = _skewed_null(rng, 50, sign)
        fails += significant_regression(compare_key("q", a, b), alpha=0.05).regression
    assert 0.02 <= fails / 400 <= 0.085


def test_interval_covers_at_n20_for_binary_and_skewed_scores() -> None:
    rng = random.Random(7)
    covered_binary = covered_cont = 0
    trials = 300
    for _ in range(trials):
        a: Scores = {}
        b: Scores = {}
        for i in range(20):  # P(fell) = 0.12, P(rose) = 0.06: true difference -0.06
            x = rng.random()
            a[f"e{i}"], b[f"e{i}"] = ([1.0], [0.0]) if x < 0.12 else (
                ([0.0], [1.0]) if x < 0.18 else ([1.0], [1.0]))  # fmt: skip
        cmp = compare_key("k", a, b)
        covered_binary += cmp.ci_low <= -0.06 <= cmp.ci_high
        a2, b2 = _skewed_null(rng, 20, 1.0)
        cmp2 = compare_key("k", a2, b2)
        covered_cont += cmp2.ci_low <= 0.0 <= cmp2.ci_high
    # nominal 0.95; the percentile bootstrap this replaced covered 0.85 (binary) and 0.92
    assert covered_binary / trials >= 0.91
    assert covered_cont / trials >= 0.91


def test_symmetric_differences_give_the_plain_t_interval_and_test() -> None:
    diffs = [0.1 + d for d in (-0.3, 0.3, -0.1, 0.1, -0.2, 0.2, 0.0, -0.05, 0.05)]
    a = {f"e{i}": [0.5] for i in range(len(diffs))}
    b = {f"e{i}": [0.5 + d] for i, d in enumerate(diffs)}
    cmp = compare_key("k", a, b)
    low, high = sps.t.interval(0.95, len(diffs) - 1, loc=0.1, scale=sps.sem(diffs))
    assert (cmp.ci_low, cmp.ci_high) == pytest.approx((low, high), abs=1e-3)
    upper = sps.ttest_1samp(diffs, 0.0, alternative="less").pvalue
    assert cmp.test.p_value == pytest.approx(upper, abs=1e-3)


def test_a_failed_candidate_attempt_counts_as_the_worst_score() -> None:
    # The refund case: answers came back under the wrong key and the evaluator
    # raised on 13 of 22; leaving them out gave "mean 1 (n=9)" and a PASS.
    a: Scores = {f"e{i}": [1.0] for i in range(22)}
    b: Scores = {f"e{i}": [Failed("evaluator error: KeyError 'answer'")] for i in range(13)}
    b |= {f"e{i}": [1.0] for i in range(13, 22)}
    cmp = compare_key("correct", a, b)
    assert cmp.n_pairs == 22
    assert cmp.worst == 0.0  # the bottom of the 0-1 scale, though no answer scored 0
    assert len(cmp.errored_b) == 13
    assert cmp.regressed == 13
    verdict = significant_regression(cmp)
    assert verdict.regression
    assert "13 candidate example(s) errored, counted as 0: e0, e1" in verdict.reason
    on_another_scale = compare_key(
        "stars", {"x": [4.0], "y": [5.0]}, {"x": [Failed("e")], "y": [3.0]}
    )
    assert on_another_scale.worst == 3.0  # the worst score seen
    excluded = compare_key("correct", a, b, errors="exclude")
    assert excluded.n_pairs == 9
    assert not significant_regression(excluded).regression
    assert "EXCLUDED" in significant_regression(excluded).reason


def test_baseline_failures_are_left_out_and_named() -> None:
    a: Scores = {"x": [Failed("target error: boom")], "y": [1.0], "z": [0.0]}
    b: Scores = {"x": [0.0], "y": [1.0], "z": [1.0]}
    cmp = compare_key("k", a, b)
    assert cmp.n_pairs == 2
    assert cmp.errored_a == ("x",)
    assert "1 baseline example(s) errored: x" in significant_regression(cmp).reason


def test_skipped_attempts_are_not_failures() -> None:
    a: Scores = {"x": [1.0], "y": [None], "z": [0.0]}
    b: Scores = {"x": [1.0], "y": [None], "z": [1.0]}
    cmp = compare_key("k", a, b)
    assert cmp.n_pairs == 2
    assert cmp.errored_a == cmp.errored_b == ()


def test_repetitions_give_noise_and_say_whether_a_change_exceeds_it() -> None:
    a: Scores = {"stable": [1.0, 1.0, 1.0], "noisy": [0.2, 0.9, 0.5], "moved": [0.8, 0.82, 0.81]}
    b: Scores = {"stable": [1.0, 1.0, 1.0], "noisy": [0.6, 0.1, 0.7], "moved": [0.5, 0.52, 0.49]}
    cmp = compare_key("judge", a, b)
    by_id = {e.example_id: e for e in cmp.examples}
    assert not cmp.binary
    assert by_id["stable"].noise == 0.0
    assert by_id["noisy"].exceeds_noise is False
    assert by_id["moved"].exceeds_noise is True
    assert cmp.regressed_beyond_noise == 1
    one = compare_key("k", {"a": [0.3]}, {"a": [0.5]})
    assert one.noise is None
    assert one.examples[0].exceeds_noise is None


def test_noisy_judge_on_identical_agent_passes() -> None:
    rng = random.Random(99)
    truth = {f"e{i}": rng.random() < 0.8 for i in range(200)}

    def run() -> Scores:
        return {k: [float(v != (rng.random() < 0.15))] for k, v in truth.items()}

    cmp = compare_key("correct", run(), run())
    assert cmp.improved > 0
    assert cmp.regressed > 0
    assert not significant_regression(cmp).regression


def test_holm_adjusted_verdicts_label_raw_and_adjusted_p() -> None:
    base = _binary(60, set())
    worse = _binary(60, set(range(6)))  # one-sided p = 1/64 = 0.0156 alone
    cmps = [compare_key("a", base, worse), compare_key("b", base, _binary(60, set()))]
    assert cmps[0].test.p_value == pytest.approx(1 / 64)
    holm = regression_verdicts(cmps, alpha=0.05)
    assert holm[0].p_value == pytest.approx(2 / 64)
    assert holm[0].p_raw == pytest.approx(1 / 64)
    assert holm[0].regression
    assert "p=0.0156 (one-sided), Holm-adjusted p=0.0312 over 2 keys" in holm[0].reason
    assert holm[0].to_dict()["p_adjusted"] == pytest.approx(2 / 64)
    assert not regression_verdicts(cmps, alpha=0.02)[0].regression
    assert regression_verdicts(cmps, alpha=0.02, adjust="none")[0].regression
    assert p_label(0.01) == "p=0.01 (one-sided)"


def test_min_effect_and_empty_comparison() -> None:
    cmp = compare_key("k", _binary(200, set()), _binary(200, set(range(12))))
    assert significant_regression(cmp).regression
    assert not significant_regression(cmp, min_effect=0.1).regression
    empty = compare_key("k", {}, {})
    assert empty.n_pairs == 0
    assert significant_regression(empty).status == "no_data"
    assert math.isnan(empty.mean_diff)


def _side(version: int, refs: dict[str, str], scores: Scores, judge: str | None = None) -> Side:
    return Side(
        name=f"v{version}",
        dataset_version=version,
        attempts={"correct": scores},
        references=dict(refs),
        judges={"correct": frozenset({judge})} if judge else {},
    )


def test_edited_references_make_a_key_not_comparable_and_name_the_examples() -> None:
    # The case: 9 reference answers were edited; the unchanged agent, gated against
    # its own earlier run, "regressed" on exactly those 9.
    refs = {f"e{i:02d}": "old" for i in range(30)}
    edited = {k: ("new" if i < 9 else "old") for i, k in enumerate(sorted(refs))}
    before = {k: [1.0] for k in refs}
    after: Scores = {k: [0.0 if i < 9 else 1.0] for i, k in enumerate(sorted(refs))}
    [cmp] = compare_sides(_side(3, refs, before), _side(4, edited, after))
    assert not cmp.comparable
    assert cmp.changed_examples == tuple(f"e{i:02d}" for i in range(9))
    [verdict] = regression_verdicts([cmp])
    assert verdict.status == "not_comparable"
    assert not verdict.regression
    assert "NOT COMPARABLE" in verdict.reason
    assert "dataset versions 3 (baseline) and 4 (candidate)" in verdict.reason
    assert "e00, e01, e02, e03, e04, e05, e06, e07, e08" in verdict.reason
    [only] = compare_sides(
        _side(3, refs, before), _side(4, edited, after), changed="unchanged-only"
    )
    assert only.comparable
    assert only.n_pairs == 21
    [v] = regression_verdicts([only])
    assert not v.regression
    assert "compared on the 21 of 30 examples whose references are unchanged" in v.reason


def test_unknown_references_across_versions_are_refused() -> None:
    scores = {"a": [1.0], "b": [1.0]}
    a = Side("x", 1, {"correct": scores}, references={"a": "h", "b": None})
    b = Side("y", 2, {"correct": scores}, references={"a": "h", "b": "h2"})
    [cmp] = compare_sides(a, b)
    assert not cmp.comparable
    assert "were not recorded" in (cmp.refusal or "")
    same_version = compare_sides(
        Side("x", 2, {"correct": scores}), Side("y", 2, {"correct": scores})
    )
    assert same_version[0].comparable


def test_a_changed_judge_is_not_compared_by_default() -> None:
    refs = {"a": "h", "b": "h"}
    scores: Scores = {"a": [1.0], "b": [0.0]}
    a = _side(1, refs, scores, judge="model=gpt-a prompt=111")
    b = _side(1, refs, scores, judge="model=gpt-b prompt=111")
    [cmp] = compare_sides(a, b)
    assert not cmp.comparable
    assert "gpt-a" in (cmp.refusal or "")
    assert "gpt-b" in (cmp.refusal or "")
    [allowed] = compare_sides(a, b, judge_change="allow")
    assert allowed.comparable
    assert "judge changed" in regression_verdicts([allowed])[0].reason


def test_clustered_examples_widen_the_interval_and_say_so() -> None:
    # 10 conversations of 4 turns: the turns of one conversation move together
    rng = random.Random(3)
    a: Scores = {}
    b: Scores = {}
    clusters: dict[str, str] = {}
    for c in range(10):
        shift = rng.gauss(0.0, 0.2)
        for t in range(4):
            ex = f"c{c}t{t}"
            a[ex] = [0.5]
            b[ex] = [0.5 + shift + rng.gauss(0.0, 0.02)]
            clusters[ex] = f"conv{c}"
    plain = compare_key("k", a, b)
    clustered = compare_key("k", a, b, clusters=clusters)
    assert clustered.clusters == 10
    assert clustered.test.test == "cluster-hall-t"
    assert clustered.mean_diff == pytest.approx(plain.mean_diff)
    assert clustered.ci_high - clustered.ci_low > 1.5 * (plain.ci_high - plain.ci_low)
    assert "in 10 clusters" in significant_regression(clustered).reason


def test_clustered_binary_uses_the_design_effect() -> None:
    a: Scores = {f"c{c}t{t}": [1.0] for c in range(12) for t in range(3)}
    b: Scores = {f"c{c}t{t}": [0.0 if c < 3 else 1.0] for c in range(12) for t in range(3)}
    clusters = {f"c{c}t{t}": str(c) for c in range(12) for t in range(3)}
    plain = compare_key("k", a, b)
    clustered = compare_key("k", a, b, clusters=clusters)
    assert clustered.test.test == "rao-scott-tango"
    assert clustered.test.p_value > plain.test.p_value
    assert clustered.ci_low < plain.ci_low


def test_cluster_of_reads_metadata_then_the_source_trace() -> None:
    assert cluster_of({"session_id": "s1"}, None) == "session_id=s1"
    assert cluster_of({"ticket": "T9"}, None, "ticket") == "ticket=T9"
    assert cluster_of({}, {"trace_id": "abc"}) == "trace=abc"
    assert cluster_of({}, None) is None


def test_minimum_detectable_effect_matches_simulated_power() -> None:
    # At the reported MDE a true drop of that size is caught ~80% of the time.
    rng = random.Random(11)
    n, sd = 50, 0.2
    a: Scores = {f"e{i}": [0.5] for i in range(n)}
    probe = compare_key("k", a, {f"e{i}": [0.5 + rng.gauss(0, sd)] for i in range(n)})
    mde = probe.mde
    assert 0.05 < mde < 0.1  # (1.68 + 0.84) * 0.2 / sqrt(50) = 0.071
    caught = 0
    for _ in range(300):
        b: Scores = {f"e{i}": [0.5 - mde + rng.gauss(0, sd)] for i in range(n)}
        caught += significant_regression(compare_key("k", a, b)).regression
    assert 0.7 <= caught / 300 <= 0.9
