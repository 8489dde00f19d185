"""Judge drift canaries: choosing the canaries, and telling a drifted judge from noise (pure).

A canary set is a frozen list of runs with the label people gave them. The rule's judge scores
the same runs again and again; each time, every canary is either *right* or *wrong* against its
frozen label (pass/fail keys: the judge's verdict at ``threshold`` against the label), or has an
error ``|judge - label|`` (continuous keys).

**The drift test is paired.** The latest run is compared with the baseline run canary by
canary: ``worse`` counts the canaries the judge now gets wrong (or further off) that it got right
(or closer) in the baseline, ``better`` the reverse. If nothing changed, a canary is as likely to
move one way as the other, so ``worse`` is Binomial(worse + better, 1/2): the exact one-sided sign
test, which for pass/fail labels is McNemar's exact test. Pairing is what makes it sharp: canaries
the judge gets right (or wrong) both times, whatever their difficulty, carry no noise. A two-
proportion test on the two agreement rates ignores the pairing and needs several times the drop
to reach the same level.

The judge is said to have drifted when the test's p-value is below ``alpha`` **and** the
agreement dropped by at least ``min_drop`` (the share of canaries the judge gets wrong rose by
that much; for continuous keys, the mean error did). False alarms: on an unchanged judge each
comparison fires with probability at most ``alpha`` (the exact test is conservative, and the
``min_drop`` floor only lowers it); a deterministic judge (temperature 0, the same model) moves no
canary at all and never fires. Over ``k`` scheduled runs at most ``k * alpha`` false alarms are
expected: at the default ``alpha`` 0.001 and one run a day, one in about three years per rule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from goldloop.domain import agreement

Kind = Literal["binary", "continuous"]
SELECTIONS = ("newest", "random", "balanced")


@dataclass(frozen=True, slots=True)
class Labelled:
    """A run people labelled: the candidate for a canary."""

    run_id: str
    trace_id: str | None
    human_score: float
    labelled_at: int


def kind_of(scores: Sequence[float]) -> Kind:
    return "binary" if all(s in (0.0, 1.0) for s in scores) else "continuous"


def choose(
    candidates: Sequence[Labelled], size: int, selection: str, *, seed: int = 0
) -> list[Labelled]:
    """Up to ``size`` canaries: the newest labelled runs, a seeded random sample, or (pass/fail
    labels) as many failing as passing runs where there are enough of each, so that TNR is
    measured on more than a handful."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}")
    newest = sorted(candidates, key=lambda c: (-c.labelled_at, c.run_id))
    if selection == "newest" or len(newest) <= size:
        return newest[:size]
    rng = random.Random(seed)
    if selection == "random":
        return sorted(rng.sample(newest, size), key=newest.index)
    passing = [c for c in newest if c.human_score >= 0.5]
    failing = [c for c in newest if c.human_score < 0.5]
    take_fail = min(len(failing), size // 2)
    take_pass = min(len(passing), size - take_fail)
    take_fail = min(len(failing), size - take_pass)
    chosen = rng.sample(passing, take_pass) + rng.sample(failing, take_fail)
    return sorted(chosen, key=newest.index)


def loss(kind: Kind, judge: float, human: float, threshold: float) -> float:
    """How wrong the judge is on one canary: 0 or 1 for pass/fail labels, |judge - human|."""
    if kind == "binary":
        return 0.0 if (judge >= threshold) == (human >= 0.5) else 1.0
    return abs(judge - human)


def figures(
    kind: Kind,
    verdicts: Mapping[str, float],
    labels: Mapping[str, float],
    threshold: float,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The judge's agreement with the frozen labels on the canaries it scored: TPR, TNR,
    accuracy and kappa with intervals (pass/fail), or correlations (continuous)."""
    scored = [r for r in labels if r in verdicts]
    if kind == "binary":
        pairs = [(verdicts[r] >= threshold, labels[r] >= 0.5) for r in scored]
        return agreement.binary_alignment(pairs, confidence).as_dict()
    return agreement.continuous_alignment(
        [(verdicts[r], labels[r]) for r in scored], confidence
    ).as_dict()


def sign_test_p(worse: int, better: int) -> float:
    """P(X >= worse) for X ~ Binomial(worse + better, 1/2): the exact one-sided sign test
    (McNemar's exact test on the discordant canaries). 1.0 when no canary moved."""
    n = worse + better
    if n == 0 or worse == 0:
        return 1.0
    # sum of C(n, k) for k >= worse, over 2^n, in logs to stay finite for large n
    logs = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        for k in range(worse, n + 1)
    ]
    top = max(logs)
    total = top + math.log(sum(math.exp(v - top) for v in logs))
    return min(1.0, math.exp(total - n * math.log(2)))


@dataclass(frozen=True, slots=True)
class Drift:
    """The latest canary run against the baseline run, canary by canary."""

    n: int  # canaries scored in both runs
    worse: int  # now wrong (or further off), right (or closer) in the baseline
    better: int
    baseline_loss: float | None  # share wrong (binary) or mean error (continuous), baseline
    latest_loss: float | None
    drop: float  # latest_loss - baseline_loss: how much the agreement dropped
    p_value: float
    alpha: float
    min_drop: float
    drifted: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    kind: Kind,
    baseline: Mapping[str, float],
    latest: Mapping[str, float],
    labels: Mapping[str, float],
    *,
    threshold: float,
    alpha: float,
    min_drop: float,
) -> Drift:
    """Has the judge's agreement with the frozen labels dropped from ``baseline`` to
    ``latest``? (Verdicts are ``{run_id: judge score}``; ``labels`` the frozen human scores.)"""
    both = [r for r in labels if r in baseline and r in latest]
    if not both:
        return Drift(0, 0, 0, None, None, 0.0, 1.0, alpha, min_drop, False, "no canary in both")
    before = [loss(kind, baseline[r], labels[r], threshold) for r in both]
    after = [loss(kind, latest[r], labels[r], threshold) for r in both]
    worse = sum(1 for b, a in zip(before, after, strict=True) if a > b)
    better = sum(1 for b, a in zip(before, after, strict=True) if a < b)
    n = len(both)
    base_loss, last_loss = sum(before) / n, sum(after) / n
    drop = last_loss - base_loss
    p = sign_test_p(worse, better)
    drifted = p < alpha and drop >= min_drop
    what = "wrong" if kind == "binary" else "further off"
    moved = f"{worse} canaries now {what}, {better} now better, of {n}"
    if kind == "binary":
        change = f"agreement {1 - base_loss:.1%} -> {1 - last_loss:.1%}"
    else:
        change = f"mean error {base_loss:.3g} -> {last_loss:.3g}"
    verdict = (
        "the judge drifted"
        if drifted
        else ("not significant" if p >= alpha else f"a drop below min_drop {min_drop:g}")
    )
    reason = f"{change}; {moved} (sign test p = {p:.2g}, alpha {alpha:g}): {verdict}"
    return Drift(n, worse, better, base_loss, last_loss, drop, p, alpha, min_drop, drifted, reason)
