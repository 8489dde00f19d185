"""Paired comparison of two experiments on the same examples, one score key at a time.

Input: for experiment A (baseline) and B (candidate), ``{example_id: [attempt of repetition 1,
2, ...]}`` where an attempt is a score, ``None`` (the evaluator had nothing to say: skipped), or
:class:`Failed` (the target raised, the evaluator raised, or no score came back). Each
example's repetitions are averaged first, so the unit of analysis is the example (what a
dataset samples), or the cluster of examples that share a conversation when they do.

Failures are never silently dropped: by default a candidate's failed attempt counts as the
worst score of that key (0 on the usual 0-1 scale, or 1 where lower is better; on another scale
the worst score seen for the key), and
an example whose baseline failed is left out of the pairs (its change cannot be measured) and
named. ``errors="exclude"`` leaves failed attempts out on both sides, and the verdict says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from goldloop.domain.inference import (
    Inference,
    design_effect,
    mean_difference,
    paired_binary,
)
from goldloop.domain.stats import TestResult, holm_adjust

__all__ = [
    "ExampleDelta",
    "Failed",
    "KeyComparison",
    "Outcome",
    "Verdict",
    "compare_key",
    "p_label",
    "regression_verdicts",
    "significant_regression",
    "worst_score",
]

Outcome = Literal["improved", "regressed", "unchanged"]
ErrorPolicy = Literal["fail", "exclude"]


@dataclass(frozen=True, slots=True)
class Failed:
    """An attempt that produced no score: the target raised, the evaluator raised, or the
    evaluator returned nothing for this key."""

    reason: str


Attempt = float | bool | None | Failed


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
    """The one-sided test of "B is worse than A" (``p_value``: raw, one-sided)."""
    noise: float | None
    """Mean over examples of the run-to-run standard deviation (None without repetitions)."""
    improved_beyond_noise: int
    regressed_beyond_noise: int
    examples: tuple[ExampleDelta, ...] = field(repr=False)
    errored_a: tuple[str, ...] = ()
    """Examples with a failed attempt in A (left out of the pairs when every attempt failed)."""
    errored_b: tuple[str, ...] = ()
    """Examples with a failed attempt in B (counted as ``worst`` unless errors are excluded)."""
    errors: ErrorPolicy = "fail"
    worst: float | None = None
    """The score a failed candidate attempt counts as."""
    clusters: int | None = None
    """Independent clusters the examples fell into (None: every example is independent)."""
    mde: float = math.nan
    """Minimum detectable effect: the smallest true drop this comparison catches with 80%
    power at ``alpha``."""
    alpha: float = 0.05
    inference: Inference | None = field(default=None, repr=False)
    comparable: bool = True
    refusal: str | None = None
    """Why this key is not compared (changed references, another judge), when it is not."""
    changed_examples: tuple[str, ...] = ()
    """Paired examples whose reference outputs differ between the two dataset versions."""
    restricted: str | None = None
    """Set when only part of the shared examples were compared, saying which."""
    judges_a: tuple[str, ...] = ()
    judges_b: tuple[str, ...] = ()
    """Each side's judges for this key (``model`` and ``prompt_hash``), when any."""

    @property
    def p_value(self) -> float:
        """The raw one-sided p-value for "B is worse"."""
        return self.test.p_value

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
            "p_raw": self.test.p_value,
            "noise": self.noise,
            "improved_beyond_noise": self.improved_beyond_noise,
            "regressed_beyond_noise": self.regressed_beyond_noise,
            "errored_a": list(self.errored_a),
            "errored_b": list(self.errored_b),
            "errors": self.errors,
            "worst": self.worst,
            "clusters": self.clusters,
            "mde": self.mde,
            "alpha": self.alpha,
            "comparable": self.comparable,
            "refusal": self.refusal,
            "changed_examples": list(self.changed_examples),
            "restricted": self.restricted,
            "judges_a": list(self.judges_a),
            "judges_b": list(self.judges_b),
        }
        if with_examples:
            out["examples"] = [e.to_dict() for e in self.examples]
        return out


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


def _score(value: Attempt) -> float | None:
    if value is None or isinstance(value, Failed):
        return None
    f = float(value)
    return None if math.isnan(f) else f


def worst_score(scores: Sequence[float], *, higher_is_better: bool = True) -> float:
    """The score a failed attempt counts as: the bottom of the usual 0-1 scale (0, or 1 where
    lower is better) when every score seen lies in it, else the worst score seen."""
    if all(0.0 <= s <= 1.0 for s in scores):
        return 0.0 if higher_is_better else 1.0
    return min(scores) if higher_is_better else max(scores)


def _worst(
    a: Mapping[str, Sequence[Attempt]], b: Mapping[str, Sequence[Attempt]], higher: bool
) -> float:
    seen = [s for side in (a, b) for v in side.values() for x in v if (s := _score(x)) is not None]
    return worst_score(seen, higher_is_better=higher)


def _side(
    attempts: Mapping[str, Sequence[Attempt]], *, worst: float | None
) -> tuple[dict[str, tuple[float, ...]], list[str]]:
    """Per example, the usable scores (failures as ``worst`` when given, else dropped), and the
    examples with any failure."""
    scores: dict[str, tuple[float, ...]] = {}
    errored: list[str] = []
    for example, values in attempts.items():
        kept: list[float] = []
        failed = False
        for v in values:
            if isinstance(v, Failed):
                failed = True
                if worst is not None:
                    kept.append(worst)
                continue
            s = _score(v)
            if s is not None:
                kept.append(s)
        if failed:
            errored.append(example)
        if kept:
            scores[example] = tuple(kept)
    return scores, sorted(errored)


def compare_key(
    key: str,
    a: Mapping[str, Sequence[Attempt]],
    b: Mapping[str, Sequence[Attempt]],
    *,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    alpha: float = 0.05,
    errors: ErrorPolicy = "fail",
    clusters: Mapping[str, str] | None = None,
    tolerance: float = 1e-9,
    noise_z: float = 2.0,
) -> KeyComparison:
    """Compare one key (A = baseline, B = candidate). With one 0/1 score per example and side
    the interval is Tango's and the test the exact one-sided McNemar test; otherwise both come
    from the skewness-corrected t on per-example mean differences (see
    :mod:`goldloop.domain.inference`). ``clusters`` maps an example to its cluster (examples
    not in it are their own); with more than one example in some cluster, the standard error
    is cluster-robust."""
    if errors not in ("fail", "exclude"):
        raise ValueError("errors must be 'fail' or 'exclude'")
    worst = _worst(a, b, higher_is_better) if errors == "fail" else None
    clean_a, errored_a = _side(a, worst=None)  # a failed baseline attempt measures nothing
    clean_b, errored_b = _side(b, worst=worst)
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
    n = len(deltas)
    single = all(len(d.a) == 1 and len(d.b) == 1 for d in deltas)
    binary = bool(deltas) and single and all(_is_binary(d.a + d.b) for d in deltas)
    units: dict[str, list[float]] = {}
    for d in deltas:
        cluster = clusters.get(d.example_id) if clusters else None
        units.setdefault(d.example_id if cluster is None else f"c:{cluster}", []).append(d.delta)
    clustered = len(units) < n
    sums = [sum(v) for v in units.values()]
    sizes = [len(v) for v in units.values()]
    if binary:
        fell = sum(1 for d in deltas if d.delta < 0)
        rose = sum(1 for d in deltas if d.delta > 0)
        deff = 1.0
        if clustered:
            deff = design_effect(mean_difference(sums, sizes).se, fell, rose, n)
        inference = paired_binary(fell, rose, n, confidence=confidence, design_effect=deff)
    else:
        inference = mean_difference(sums, sizes if clustered else None, confidence=confidence)
    p_bad = inference.p_lower if higher_is_better else inference.p_upper
    statistic = float(sum(1 for d in deltas if d.outcome == "regressed"))
    test = TestResult(inference.method, statistic, p_bad, "one-sided", inference.units)
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
        mean_a=sum(d.a_mean for d in deltas) / n if n else math.nan,
        mean_b=sum(d.b_mean for d in deltas) / n if n else math.nan,
        mean_diff=inference.estimate,
        ci_low=inference.ci_low,
        ci_high=inference.ci_high,
        confidence=confidence,
        test=test,
        noise=sum(noises) / len(noises) if noises else None,
        improved_beyond_noise=sum(1 for d in deltas if d.exceeds_noise and d.outcome == "improved"),
        regressed_beyond_noise=sum(
            1 for d in deltas if d.exceeds_noise and d.outcome == "regressed"
        ),
        examples=deltas,
        errored_a=tuple(errored_a),
        errored_b=tuple(errored_b),
        errors=errors,
        worst=worst,
        clusters=len(units) if clustered else None,
        mde=inference.mde(alpha),
        alpha=alpha,
        inference=inference,
    )


def p_label(raw: float, adjusted: float | None = None, keys: int = 1) -> str:
    """The one way every report writes a p-value: ``p=0.012 (one-sided)``, and with several
    keys ``p=0.012 (one-sided), Holm-adjusted p=0.036 over 3 keys``."""
    text = f"p={raw:.3g} (one-sided)"
    if adjusted is not None and keys > 1:
        text += f", Holm-adjusted p={adjusted:.3g} over {keys} keys"
    return text


VerdictStatus = Literal["regression", "ok", "not_comparable", "no_data"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one key shows a statistically significant regression from A to B."""

    key: str
    regression: bool
    p_value: float
    """The p-value the decision used (Holm-adjusted when several keys were judged together)."""
    alpha: float
    reason: str
    p_raw: float = math.nan
    """The key's own one-sided p-value, before any adjustment."""
    status: VerdictStatus = "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "regression": self.regression,
            "status": self.status,
            "p_value": self.p_value,
            "p_raw": self.p_raw,
            "p_adjusted": self.p_value,
            "alpha": self.alpha,
            "reason": self.reason,
        }


def _errors_text(cmp: KeyComparison) -> str:
    parts = []
    if cmp.errored_b:
        shown = ", ".join(cmp.errored_b[:10]) + (" ..." if len(cmp.errored_b) > 10 else "")
        how = f"counted as {cmp.worst:g}" if cmp.errors == "fail" else "excluded (--exclude-errors)"
        parts.append(f"{len(cmp.errored_b)} candidate example(s) errored, {how}: {shown}")
    if cmp.errored_a:
        shown = ", ".join(cmp.errored_a[:10]) + (" ..." if len(cmp.errored_a) > 10 else "")
        parts.append(f"{len(cmp.errored_a)} baseline example(s) errored: {shown}")
    return "; ".join(parts)


def significant_regression(
    cmp: KeyComparison,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    p_value: float | None = None,
    keys: int = 1,
) -> Verdict:
    """A regression is a one-sided test of "B is worse" that rejects at ``alpha`` (the same
    test gives direction and significance) with an observed drop of at least ``min_effect``.

    ``p_value`` overrides the comparison's own (e.g. a Holm-adjusted one over ``keys``)."""
    raw = cmp.test.p_value
    if not cmp.comparable:
        reason = f"{cmp.key}: NOT COMPARABLE: {cmp.refusal}"
        return Verdict(cmp.key, False, math.nan, alpha, reason, raw, "not_comparable")
    p = raw if p_value is None else p_value
    worse = -cmp.mean_diff if cmp.higher_is_better else cmp.mean_diff
    head = (
        f"{cmp.key}: mean {cmp.mean_a:.4g} -> {cmp.mean_b:.4g} "
        f"(diff {cmp.mean_diff:+.4g}, {cmp.confidence:.0%} CI [{cmp.ci_low:+.4g}, "
        f"{cmp.ci_high:+.4g}]), {cmp.regressed} regressed / {cmp.improved} improved "
        f"of {cmp.n_pairs}"
        + (f" in {cmp.clusters} clusters" if cmp.clusters else "")
        + f", {p_label(raw, p if p_value is not None else None, keys)}"
    )
    errors = _errors_text(cmp)
    if errors:
        head += f"; {errors}"
    if cmp.errors == "exclude" and (cmp.errored_a or cmp.errored_b):
        head += "; errored examples EXCLUDED"
    if cmp.restricted:
        head += f"; {cmp.restricted}"
    if cmp.n_pairs == 0:
        reason = f"{cmp.key}: no paired examples to compare"
        if errors:
            reason += f" ({errors})"
        return Verdict(cmp.key, False, 1.0, alpha, reason, raw, "no_data")
    if p >= alpha:
        return Verdict(
            cmp.key, False, p, alpha, f"{head}: no significant regression at alpha={alpha}", raw
        )
    if worse < min_effect:
        return Verdict(
            cmp.key, False, p, alpha, f"{head}: significant but smaller than {min_effect}", raw
        )
    return Verdict(
        cmp.key, True, p, alpha, f"{head}: significant regression at alpha={alpha}", raw,
        "regression",
    )  # fmt: skip


def regression_verdicts(
    comparisons: Sequence[KeyComparison],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    adjust: Literal["holm", "none"] = "holm",
) -> list[Verdict]:
    """Verdicts for several keys; with ``adjust="holm"`` the p-values are Holm-adjusted so the
    chance of any false alarm across all keys stays at most ``alpha``."""
    judged = [c for c in comparisons if c.comparable and c.n_pairs]
    raw = [c.test.p_value for c in judged]
    fixed = holm_adjust(raw) if adjust == "holm" else raw
    adjusted = {id(c): p for c, p in zip(judged, fixed, strict=True)}
    keys = len(judged) if adjust == "holm" else 1
    return [
        significant_regression(
            c,
            alpha=alpha,
            min_effect=min_effect,
            p_value=adjusted[id(c)] if keys > 1 and id(c) in adjusted else None,
            keys=keys,
        )
        for c in comparisons
    ]
