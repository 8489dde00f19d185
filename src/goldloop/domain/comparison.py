"""Paired comparison of two experiments on the same examples, one score key at a time.

Input: for experiment A and B, ``{example_id: [score of repetition 1, 2, ...]}``. Examples
present on one side only are counted and left out (a pair needs both). Each example's
repetitions are averaged first, so the unit of analysis is the example (what a dataset
samples), and the repetitions give each example's run-to-run noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from goldloop.domain.stats import (
    TestResult,
    bootstrap_mean_ci,
    holm_adjust,
    mcnemar_exact,
    paired_permutation_test,
    sign_test,
    wilcoxon_signed_rank,
)

__all__ = [
    "ExampleDelta",
    "KeyComparison",
    "Outcome",
    "Verdict",
    "compare_key",
    "regression_verdicts",
    "significant_regression",
]

Outcome = Literal["improved", "regressed", "unchanged"]
TestName = Literal["auto", "mcnemar", "sign", "wilcoxon", "permutation"]


@dataclass(frozen=True, slots=True)
class ExampleDelta:
    """One example's scores in A and B (all repetitions) and how it moved."""

    example_id: str
    a: tuple[float, ...]
    b: tuple[float, ...]
    a_mean: float
    b_mean: float
    delta: float
    """``b_mean - a_mean`` (raw; whether that is good depends on ``higher_is_better``)."""
    noise: float | None
    """Run-to-run standard deviation, pooled over A and B; None without repetitions."""
    exceeds_noise: bool | None
    """Whether |delta| exceeds ``noise_z`` standard errors of the difference of the two means;
    None when either side has fewer than two repetitions."""
    outcome: Outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "a": list(self.a),
            "b": list(self.b),
            "a_mean": self.a_mean,
            "b_mean": self.b_mean,
            "delta": self.delta,
            "noise": self.noise,
            "exceeds_noise": self.exceeds_noise,
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class KeyComparison:
    """The paired comparison of one score key between experiments A and B."""

    key: str
    higher_is_better: bool
    n_pairs: int
    only_in_a: int
    only_in_b: int
    binary: bool
    improved: int
    regressed: int
    unchanged: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    confidence: float
    test: TestResult
    noise: float | None
    """Mean over examples of the run-to-run standard deviation (None without repetitions)."""
    improved_beyond_noise: int
    regressed_beyond_noise: int
    examples: tuple[ExampleDelta, ...] = field(repr=False)

    def to_dict(self, *, with_examples: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "higher_is_better": self.higher_is_better,
            "n_pairs": self.n_pairs,
            "only_in_a": self.only_in_a,
            "only_in_b": self.only_in_b,
            "binary": self.binary,
            "improved": self.improved,
            "regressed": self.regressed,
            "unchanged": self.unchanged,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "mean_diff": self.mean_diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "test": self.test.to_dict(),
            "noise": self.noise,
            "improved_beyond_noise": self.improved_beyond_noise,
            "regressed_beyond_noise": self.regressed_beyond_noise,
        }
        if with_examples:
            out["examples"] = [e.to_dict() for e in self.examples]
        return out


def _clean(values: Sequence[float | bool | None]) -> tuple[float, ...]:
    out: list[float] = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isnan(f):
            continue
        out.append(f)
    return tuple(out)


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator)."""
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _example_delta(
    example_id: str,
    a: tuple[float, ...],
    b: tuple[float, ...],
    *,
    higher_is_better: bool,
    tolerance: float,
    noise_z: float,
) -> ExampleDelta:
    a_mean = sum(a) / len(a)
    b_mean = sum(b) / len(b)
    delta = b_mean - a_mean
    good = delta if higher_is_better else -delta
    outcome: Outcome = (
        "improved" if good > tolerance else "regressed" if good < -tolerance else "unchanged"
    )
    noise: float | None = None
    exceeds: bool | None = None
    if len(a) >= 2 and len(b) >= 2:
        sa, sb = _std(a), _std(b)
        noise = math.sqrt((sa * sa + sb * sb) / 2.0)
        se = math.sqrt(sa * sa / len(a) + sb * sb / len(b))
        exceeds = abs(delta) > max(noise_z * se, tolerance)
    return ExampleDelta(example_id, a, b, a_mean, b_mean, delta, noise, exceeds, outcome)


def _is_binary(values: Sequence[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def compare_key(
    key: str,
    a: Mapping[str, Sequence[float | bool | None]],
    b: Mapping[str, Sequence[float | bool | None]],
    *,
    higher_is_better: bool = True,
    test: TestName = "auto",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    tolerance: float = 1e-9,
    noise_z: float = 2.0,
) -> KeyComparison:
    """Compare one key. ``test="auto"`` picks the exact McNemar test when every example has one
    binary score per side, and the Wilcoxon signed-rank test on per-example mean differences
    otherwise. The interval is a paired percentile bootstrap of the mean difference."""
    clean_a = {k: _clean(v) for k, v in a.items()}
    clean_b = {k: _clean(v) for k, v in b.items()}
    clean_a = {k: v for k, v in clean_a.items() if v}
    clean_b = {k: v for k, v in clean_b.items() if v}
    shared = sorted(set(clean_a) & set(clean_b))
    deltas = tuple(
        _example_delta(
            ex,
            clean_a[ex],
            clean_b[ex],
            higher_is_better=higher_is_better,
            tolerance=tolerance,
            noise_z=noise_z,
        )
        for ex in shared
    )
    diffs = [d.delta for d in deltas]
    single = all(len(d.a) == 1 and len(d.b) == 1 for d in deltas)
    binary = bool(deltas) and single and all(_is_binary(d.a + d.b) for d in deltas)
    chosen: TestName = test
    if chosen == "auto":
        chosen = "mcnemar" if binary else "wilcoxon"
    if chosen == "mcnemar":
        if not binary:
            raise ValueError("McNemar's test needs one binary score per example and side")
        fell = sum(1 for d in deltas if d.a[0] == 1.0 and d.b[0] == 0.0)
        rose = sum(1 for d in deltas if d.a[0] == 0.0 and d.b[0] == 1.0)
        result = mcnemar_exact(fell, rose)
    elif chosen == "sign":
        result = sign_test(diffs)
    elif chosen == "permutation":
        result = paired_permutation_test(diffs, seed=seed)
    else:
        result = wilcoxon_signed_rank(diffs)
    n = len(deltas)
    mean_a = sum(d.a_mean for d in deltas) / n if n else math.nan
    mean_b = sum(d.b_mean for d in deltas) / n if n else math.nan
    ci_low, ci_high = bootstrap_mean_ci(
        diffs, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    noises = [d.noise for d in deltas if d.noise is not None]
    return KeyComparison(
        key=key,
        higher_is_better=higher_is_better,
        n_pairs=n,
        only_in_a=len(set(clean_a) - set(clean_b)),
        only_in_b=len(set(clean_b) - set(clean_a)),
        binary=binary,
        improved=sum(1 for d in deltas if d.outcome == "improved"),
        regressed=sum(1 for d in deltas if d.outcome == "regressed"),
        unchanged=sum(1 for d in deltas if d.outcome == "unchanged"),
        mean_a=mean_a,
        mean_b=mean_b,
        mean_diff=sum(diffs) / n if n else math.nan,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=confidence,
        test=result,
        noise=sum(noises) / len(noises) if noises else None,
        improved_beyond_noise=sum(1 for d in deltas if d.exceeds_noise and d.outcome == "improved"),
        regressed_beyond_noise=sum(
            1 for d in deltas if d.exceeds_noise and d.outcome == "regressed"
        ),
        examples=deltas,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one key shows a statistically significant regression from A to B."""

    key: str
    regression: bool
    p_value: float
    """The p-value the decision used (Holm-adjusted when several keys were judged together)."""
    alpha: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "regression": self.regression,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "reason": self.reason,
        }


def significant_regression(
    cmp: KeyComparison,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    p_value: float | None = None,
) -> Verdict:
    """A regression is a mean change in the bad direction whose paired test rejects "no
    difference" at ``alpha`` and whose size is at least ``min_effect`` (in score units).

    ``p_value`` overrides the comparison's own (e.g. a Holm-adjusted one)."""
    p = cmp.test.p_value if p_value is None else p_value
    worse = -cmp.mean_diff if cmp.higher_is_better else cmp.mean_diff
    direction = "higher" if cmp.higher_is_better else "lower"
    head = (
        f"{cmp.key}: mean {cmp.mean_a:.4g} -> {cmp.mean_b:.4g} "
        f"(diff {cmp.mean_diff:+.4g}, {cmp.confidence:.0%} CI [{cmp.ci_low:+.4g}, "
        f"{cmp.ci_high:+.4g}]), {cmp.regressed} regressed / {cmp.improved} improved "
        f"of {cmp.n_pairs}, {cmp.test.test} p={p:.3g}"
    )
    if cmp.n_pairs == 0:
        return Verdict(cmp.key, False, 1.0, alpha, f"{cmp.key}: no paired examples to compare")
    if not worse > 0:
        return Verdict(cmp.key, False, p, alpha, f"{head}: not worse ({direction} is better)")
    if p >= alpha:
        return Verdict(cmp.key, False, p, alpha, f"{head}: not significant at alpha={alpha}")
    if worse < min_effect:
        return Verdict(
            cmp.key, False, p, alpha, f"{head}: significant but smaller than {min_effect}"
        )
    return Verdict(cmp.key, True, p, alpha, f"{head}: significant regression at alpha={alpha}")


def regression_verdicts(
    comparisons: Sequence[KeyComparison],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    adjust: Literal["holm", "none"] = "holm",
) -> list[Verdict]:
    """Verdicts for several keys; with ``adjust="holm"`` the p-values are Holm-adjusted so the
    chance of any false alarm across all keys stays at most ``alpha``."""
    raw = [c.test.p_value for c in comparisons]
    adjusted = holm_adjust(raw) if adjust == "holm" else raw
    return [
        significant_regression(c, alpha=alpha, min_effect=min_effect, p_value=p)
        for c, p in zip(comparisons, adjusted, strict=True)
    ]
