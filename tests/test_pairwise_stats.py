"""Pairwise review statistics: hand-computed values and references (domain.pairwise)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from goldloop.domain import pairwise


def test_sign_test_against_hand_computed_values() -> None:
    # 9 wins, 1 loss: P(X <= 1 | 10, 1/2) = (1 + 10) / 1024; two-sided doubles it
    assert pairwise.sign_test(9, 1) == pytest.approx(22 / 1024)
    assert pairwise.sign_test(1, 9) == pytest.approx(22 / 1024)
    # 5 against 5 is as even as it gets: the doubled tail passes 1 and is capped
    assert pairwise.sign_test(5, 5) == 1.0
    # 6 wins, 0 losses: 2 / 64
    assert pairwise.sign_test(6, 0) == pytest.approx(2 / 64)
    assert pairwise.sign_test(0, 0) is None
    for wins, losses in ((12, 3), (30, 18), (7, 7), (0, 4)):
        reference = stats.binomtest(wins, wins + losses, 0.5).pvalue
        assert pairwise.sign_test(wins, losses) == pytest.approx(reference)


def test_win_rate_counts_ties_half_with_a_wilson_interval() -> None:
    outcomes = ["B"] * 6 + ["A"] * 2 + ["tie"] * 2
    result = pairwise.summarize(outcomes)
    assert (result.n, result.b_wins, result.a_wins, result.ties) == (10, 6, 2, 2)
    assert result.win_rate.value == pytest.approx(0.7)  # (6 + 2/2) / 10
    # Wilson at p = 0.7, n = 10, z = 1.959964: centre 0.65038, half-width 0.25225
    z = 1.959963984540054
    denom = 1 + z * z / 10
    centre = (0.7 + z * z / 20) / denom
    half = z * math.sqrt(0.7 * 0.3 / 10 + z * z / 400) / denom
    assert result.win_rate.low == pytest.approx(centre - half)
    assert result.win_rate.high == pytest.approx(centre + half)
    assert result.win_rate.low == pytest.approx(0.3968, abs=1e-4)
    assert result.win_rate.high == pytest.approx(0.8922, abs=1e-4)
    assert result.decisive.value == pytest.approx(6 / 8)
    assert result.decisive.n == 8
    assert result.tie_share == pytest.approx(0.2)
    assert result.p_value == pytest.approx(stats.binomtest(6, 8, 0.5).pvalue)  # 0.2890625
    assert result.p_value == pytest.approx(74 / 256)


def test_nothing_judged_gives_no_figures() -> None:
    result = pairwise.summarize([])
    assert result.n == 0
    assert result.win_rate.value is None
    assert result.tie_share is None
    assert result.p_value is None


def test_item_outcome_averages_reviewers_and_choices_map_through_the_swap() -> None:
    assert pairwise.item_outcome(["B", "B", "A"]) == "B"
    assert pairwise.item_outcome(["A", "B"]) == "tie"
    assert pairwise.item_outcome(["A", "tie"]) == "A"
    assert pairwise.item_outcome([]) is None
    assert pairwise.choice_to_preference("left", swapped=False) == "A"
    assert pairwise.choice_to_preference("left", swapped=True) == "B"
    assert pairwise.choice_to_preference("2", swapped=True) == "A"
    assert pairwise.choice_to_preference("0", swapped=True) == "tie"
    assert pairwise.choice_to_preference("middle", swapped=False) is None
