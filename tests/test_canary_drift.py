"""The drift test of judge canaries (pure): the exact sign test against textbook values, its
false-alarm rate on an unchanged noisy judge over many seeded cycles, its power on a judge that
changed, and the choice of canaries."""

from __future__ import annotations

import math
import random

import pytest

from goldloop.domain import canaries


def test_the_sign_test_is_the_exact_binomial_tail() -> None:
    assert canaries.sign_test_p(0, 0) == 1.0
    assert canaries.sign_test_p(0, 5) == 1.0
    assert canaries.sign_test_p(10, 0) == pytest.approx(2**-10)
    # P(X >= 8 | n = 10, p = 1/2) = (45 + 10 + 1) / 1024
    assert canaries.sign_test_p(8, 2) == pytest.approx(56 / 1024)
    # large n stays finite and equals the exact tail computed with integers
    exact = sum(math.comb(1000, k) for k in range(600, 1001)) / 2**1000
    assert canaries.sign_test_p(600, 400) == pytest.approx(exact, rel=1e-9)


def _verdicts(rng: random.Random, labels: dict[str, float], error: float) -> dict[str, float]:
    return {r: (1.0 - h if rng.random() < error else h) for r, h in labels.items()}


def test_false_alarms_on_an_unchanged_noisy_judge_stay_below_alpha() -> None:
    """2,000 seeded cycles of a judge that errs on 10% of its calls at random, each compared
    with one baseline run (re-drawn every 20 cycles): the share of cycles called drifted stays
    below alpha (the exact test is conservative)."""
    rng = random.Random(20)
    labels = {f"r{i}": float(rng.random() < 0.7) for i in range(100)}
    alpha = 0.05
    alarms = cycles = 0
    baseline = _verdicts(rng, labels, 0.1)
    for cycle in range(2000):
        if cycle % 20 == 0:
            baseline = _verdicts(rng, labels, 0.1)
        latest = _verdicts(rng, labels, 0.1)
        d = canaries.compare(
            "binary", baseline, latest, labels, threshold=0.5, alpha=alpha, min_drop=0.0
        )
        alarms += d.drifted
        cycles += 1
    assert alarms / cycles <= alpha
    assert alarms > 0  # the test is not vacuous at this alpha


def test_a_changed_judge_is_found_and_min_drop_filters_small_moves() -> None:
    rng = random.Random(7)
    labels = {f"r{i}": float(i % 10 < 7) for i in range(100)}
    baseline = _verdicts(rng, labels, 0.05)
    worse = _verdicts(rng, labels, 0.25)  # the judge now errs five times as often
    d = canaries.compare(
        "binary", baseline, worse, labels, threshold=0.5, alpha=0.001, min_drop=0.05
    )
    assert d.drifted
    assert d.worse > d.better
    assert d.drop == pytest.approx(d.latest_loss - d.baseline_loss)  # type: ignore[operator]
    assert "the judge drifted" in d.reason
    same = canaries.compare(
        "binary", baseline, dict(baseline), labels, threshold=0.5, alpha=0.001, min_drop=0.05
    )
    assert (same.worse, same.better, same.p_value, same.drifted) == (0, 0, 1.0, False)
    # 10 canaries flip to wrong (p ~ 0.001) but the floor asks for a 20-point drop
    flipped = {**baseline, **{r: 1.0 - labels[r] for r in list(labels)[:10]}}
    small = canaries.compare(
        "binary", baseline, flipped, labels, threshold=0.5, alpha=0.01, min_drop=0.2
    )
    assert small.p_value < 0.01
    assert not small.drifted
    assert "below min_drop" in small.reason


def test_continuous_keys_compare_errors_canary_by_canary() -> None:
    labels = {f"r{i}": i / 49 for i in range(50)}
    baseline = {r: min(1.0, h + 0.05) for r, h in labels.items()}
    shifted = {r: max(0.0, h - 0.3) for r, h in labels.items()}
    d = canaries.compare(
        "continuous", baseline, shifted, labels, threshold=0.5, alpha=0.001, min_drop=0.05
    )
    assert d.drifted
    assert d.latest_loss is not None
    assert d.latest_loss > 0.2
    figures = canaries.figures("continuous", shifted, labels, 0.5)
    assert figures["kind"] == "continuous"
    assert figures["mean_difference"] < 0


def test_choosing_canaries() -> None:
    pool = [
        canaries.Labelled(f"r{i}", f"t{i}", float(i % 4 != 0), labelled_at=i) for i in range(40)
    ]
    newest = canaries.choose(pool, 5, "newest")
    assert [c.run_id for c in newest] == ["r39", "r38", "r37", "r36", "r35"]
    balanced = canaries.choose(pool, 20, "balanced", seed=1)
    assert sum(1 for c in balanced if c.human_score < 0.5) == 10  # all 10 failing labels
    assert len({c.run_id for c in balanced}) == 20
    assert canaries.choose(pool, 20, "random", seed=3) == canaries.choose(
        pool, 20, "random", seed=3
    )
    assert len(canaries.choose(pool, 100, "balanced")) == 40
    with pytest.raises(ValueError, match="selection"):
        canaries.choose(pool, 5, "best")
