"""Judge-versus-human agreement: known values, references, and coverage over seeded simulations."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats

from goldloop.domain import agreement


def test_kappa_and_rates_of_a_textbook_table() -> None:
    # rows: judge fail/pass, columns: human fail/pass
    table = [[20, 10], [5, 15]]
    kappa = agreement.cohen_kappa(table)
    # p_o = 35/50, p_e = 0.6*0.5 + 0.4*0.5 = 0.5 -> (0.7 - 0.5) / 0.5
    assert kappa.value == pytest.approx(0.4)
    assert kappa.low is not None
    assert kappa.high is not None
    assert kappa.low < 0.4 < kappa.high
    pairs = [(j == 1, h == 1) for j in (0, 1) for h in (0, 1) for _ in range(table[j][h])]
    result = agreement.binary_alignment(pairs)
    assert result.matrix == ((20, 10), (5, 15))
    assert result.tpr.value == pytest.approx(15 / 25)
    assert result.tnr.value == pytest.approx(20 / 25)
    assert result.kappa.value == pytest.approx(0.4)
    assert result.n == 50


def test_wilson_interval_reference_values() -> None:
    none_of_ten = agreement.wilson(0, 10)
    assert none_of_ten.low == 0.0
    assert none_of_ten.high == pytest.approx(0.2775, abs=5e-4)
    half = agreement.wilson(50, 100)
    assert (half.low, half.high) == pytest.approx((0.4038, 0.5962), abs=5e-4)
    assert agreement.wilson(0, 0).value is None


def test_kappa_standard_error_matches_a_bootstrap() -> None:
    rng = np.random.default_rng(7)
    cells = np.array([120, 30, 18, 232])  # ff, fp, pf, pp
    n = int(cells.sum())
    labels = np.repeat(np.arange(4), cells)
    kappas = []
    for _ in range(3000):
        counts = np.bincount(rng.choice(labels, n), minlength=4)
        kappas.append(agreement.cohen_kappa([[counts[0], counts[1]], [counts[2], counts[3]]]).value)
    boot_se = float(np.std(kappas))
    est = agreement.cohen_kappa([[120, 30], [18, 232]])
    assert est.low is not None
    assert est.high is not None
    analytic_se = (est.high - est.low) / (2 * 1.959964)
    assert analytic_se == pytest.approx(boot_se, rel=0.15)


def _simulate(
    rng: random.Random, n: int, base: float, tpr: float, tnr: float
) -> list[tuple[bool, bool]]:
    pairs = []
    for _ in range(n):
        human = rng.random() < base
        judge = rng.random() < (tpr if human else 1 - tnr)
        pairs.append((judge, human))
    return pairs


def test_intervals_cover_the_truth_at_their_level() -> None:
    base, tpr, tnr = 0.7, 0.9, 0.75
    p_pp, p_fp = base * tpr, base * (1 - tpr)
    p_pf, p_ff = (1 - base) * (1 - tnr), (1 - base) * tnr
    p_o = p_pp + p_ff
    p_e = (p_pp + p_pf) * base + (p_ff + p_fp) * (1 - base)
    true_kappa = (p_o - p_e) / (1 - p_e)
    rng = random.Random(20261207)
    reps = 400
    hits = {"tpr": 0, "tnr": 0, "kappa": 0}
    for _ in range(reps):
        result = agreement.binary_alignment(_simulate(rng, 100, base, tpr, tnr))
        for name, truth in (("tpr", tpr), ("tnr", tnr), ("kappa", true_kappa)):
            est = getattr(result, name)
            hits[name] += est.low <= truth <= est.high
    for name, hit in hits.items():
        assert hit / reps >= 0.91, (name, hit / reps)  # nominal 0.95, Monte Carlo slack


def test_the_corrected_pass_rate_covers_the_truth_where_the_raw_rate_does_not() -> None:
    truth, tpr, tnr = 0.6, 0.9, 0.6
    rng = random.Random(11)
    reps = 300
    covered = raw_covered = 0
    for _ in range(reps):
        calibration = agreement.binary_alignment(_simulate(rng, 150, 0.5, tpr, tnr))
        traffic = _simulate(rng, 600, truth, tpr, tnr)
        passed = sum(judge for judge, _ in traffic)
        rate = agreement.corrected_pass_rate(passed, len(traffic), calibration)
        assert rate.reason is None
        assert rate.corrected.low is not None
        assert rate.corrected.high is not None
        covered += rate.corrected.low <= truth <= rate.corrected.high
        assert rate.raw.low is not None
        assert rate.raw.high is not None
        raw_covered += rate.raw.low <= truth <= rate.raw.high
    assert covered / reps >= 0.91
    assert raw_covered / reps < 0.2  # the judge passes 0.70 where people pass 0.60


def test_a_chance_judge_gets_no_corrected_rate() -> None:
    rng = random.Random(3)
    coin = agreement.binary_alignment(_simulate(rng, 400, 0.5, 0.5, 0.5))
    rate = agreement.corrected_pass_rate(200, 400, coin)
    assert rate.corrected.value is None
    assert rate.reason is not None
    assert "chance" in rate.reason
    all_pass = agreement.binary_alignment([(True, True)] * 20)
    assert all_pass.tnr.value is None
    assert all_pass.kappa.value is None  # one category: chance agreement is 1
    refused = agreement.corrected_pass_rate(10, 20, all_pass)
    assert refused.reason is not None
    assert "TNR unknown" in refused.reason


def test_continuous_alignment_matches_numpy_and_scipy() -> None:
    rng = random.Random(5)
    human = [rng.uniform(0, 1) for _ in range(80)]
    judge = [min(1.0, max(0.0, h + rng.gauss(0.05, 0.15))) for h in human]
    result = agreement.continuous_alignment(list(zip(judge, human, strict=True)))
    assert result.pearson.value == pytest.approx(float(np.corrcoef(judge, human)[0, 1]))
    assert result.spearman == pytest.approx(float(stats.spearmanr(judge, human).statistic))
    assert result.mean_difference == pytest.approx(float(np.mean(judge) - np.mean(human)))
    assert result.pearson.low is not None
    assert result.pearson.high is not None
    assert result.pearson.low < result.pearson.value < result.pearson.high
    flat = agreement.continuous_alignment([(0.5, h) for h in human])
    assert flat.pearson.value is None  # a judge that always says the same has no correlation


# --- agreement between reviewers: Krippendorff's alpha and Cohen's kappa of label pairs ---

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the reliability data of
# section C: four observers, twelve units, values 1-5, gaps where an observer gave none.
_OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
_UNITS = [list(unit) for unit in zip(*_OBSERVERS, strict=True)]


def test_alpha_of_krippendorffs_worked_example() -> None:
    assert agreement.krippendorff_alpha(_UNITS, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert agreement.krippendorff_alpha(_UNITS, "interval") == pytest.approx(0.849, abs=5e-4)


def test_alpha_of_two_observers_binary_data() -> None:
    # Krippendorff (2011), section A: two observers, ten units, alpha = 0.095
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert agreement.krippendorff_alpha(list(zip(a, b, strict=True))) == pytest.approx(
        0.095, abs=5e-4
    )


def test_alpha_edge_cases() -> None:
    assert agreement.krippendorff_alpha([[1, 1], [2, 2], [3, 3]]) == pytest.approx(1.0)
    # no variation at all: undefined, not perfect
    assert agreement.krippendorff_alpha([[1, 1], [1, 1]]) is None
    # units with one rating carry no pairs
    assert agreement.krippendorff_alpha([[1, None], [2]]) is None
    with pytest.raises(ValueError, match="level"):
        agreement.krippendorff_alpha(_UNITS, "ordinal")


def test_alpha_interval_is_seeded_and_brackets_the_estimate() -> None:
    first = agreement.alpha_interval(_UNITS, "nominal")
    assert first == agreement.alpha_interval(_UNITS, "nominal")
    assert first.n == 11  # the last unit has one rating only
    assert first.low is not None
    assert first.high is not None
    assert first.low < 0.743 <= first.high
    narrower = agreement.alpha_interval(_UNITS * 10, "nominal")
    assert narrower.value == pytest.approx(first.value, abs=0.02)
    assert narrower.low is not None
    assert narrower.high is not None
    assert narrower.high - narrower.low < first.high - first.low


def test_kappa_of_label_pairs_matches_its_table() -> None:
    pairs = [("warm", "warm")] * 20 + [("warm", "rude")] * 10 + [("rude", "warm")] * 5
    pairs += [("rude", "rude")] * 15
    # same counts as the textbook table above: kappa 0.4
    assert agreement.kappa_of_pairs(pairs).value == pytest.approx(0.4)
    assert agreement.kappa_of_pairs([(True, True), (False, False)]).value == pytest.approx(1.0)
