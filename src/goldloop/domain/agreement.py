"""How far a judge agrees with people, with intervals (standard library only).

Inputs are pairs ``(judge, human)`` of scores on the same runs. Pass/fail keys give a 2x2
confusion matrix; from it:

* **TPR** (the judge passes what people pass) and **TNR** (the judge fails what people fail),
  each with a Wilson score interval (Wilson 1927), which keeps its level at small n and at rates
  near 0 or 1 where the Wald interval collapses;
* **Cohen's kappa** (agreement beyond chance) with the large-sample standard error of Fleiss,
  Cohen and Everitt (1969, *Psychol. Bull.* 72:323-327), which holds under the alternative
  (kappa != 0), not only under independence.

Continuous keys give Pearson's r with the Fisher z interval, Spearman's rank correlation and the
mean difference (judge - human).

A judge with known TPR and TNR turns an observed online pass rate into an estimate of the rate
people would give: the Rogan-Gladen estimator (1978, *Am. J. Epidemiol.* 107:71-76)
``pi = (p + TNR - 1) / (TPR + TNR - 1)``, whose interval (delta method) carries the uncertainty
of all three inputs. A judge no better than chance (Youden's J = TPR + TNR - 1 near 0) says
nothing about the true rate; the correction then refuses rather than dividing by noise.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from goldloop.domain.stats import percentile

_Z = NormalDist()
MIN_YOUDEN = 0.1  # below this the correction's denominator is noise: no corrected rate


def z_of(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), not {confidence}")
    return _Z.inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float | None  # None when undefined (no data, or a degenerate table)
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def wilson(k: int, n: int, confidence: float = 0.95) -> Estimate:
    """The proportion ``k / n`` with its Wilson score interval."""
    if n <= 0:
        return Estimate(None, None, None, 0)
    z = z_of(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Estimate(p, low, high, n)


def cohen_kappa(table: Sequence[Sequence[int]], confidence: float = 0.95) -> Estimate:
    """Cohen's kappa of a square table (rows: judge, columns: human) with the Fleiss-Cohen-
    Everitt standard error. Undefined (None) when chance agreement is 1 (one category only)."""
    k = len(table)
    n = sum(sum(row) for row in table)
    if n == 0:
        return Estimate(None, None, None, 0)
    p = [[cell / n for cell in row] for row in table]
    rows = [sum(p[i]) for i in range(k)]
    cols = [sum(p[i][j] for i in range(k)) for j in range(k)]
    p_o = sum(p[i][i] for i in range(k))
    p_e = sum(rows[i] * cols[i] for i in range(k))
    if p_e >= 1 - 1e-12:
        return Estimate(None, None, None, n)
    kappa = (p_o - p_e) / (1 - p_e)
    diag = sum(p[i][i] * (1 - (rows[i] + cols[i]) * (1 - kappa)) ** 2 for i in range(k))
    off = (1 - kappa) ** 2 * sum(
        p[i][j] * (cols[i] + rows[j]) ** 2 for i in range(k) for j in range(k) if i != j
    )
    var = (diag + off - (kappa - p_e * (1 - kappa)) ** 2) / (n * (1 - p_e) ** 2)
    half = z_of(confidence) * math.sqrt(max(var, 0.0))
    return Estimate(kappa, max(-1.0, kappa - half), min(1.0, kappa + half), n)


@dataclass(frozen=True, slots=True)
class BinaryAlignment:
    """A pass/fail judge against people. ``matrix[judge][human]`` with index 1 = pass."""

    matrix: tuple[tuple[int, int], tuple[int, int]]
    tpr: Estimate  # P(judge pass | human pass)
    tnr: Estimate  # P(judge fail | human fail)
    accuracy: Estimate
    kappa: Estimate
    judge_pass_rate: float
    human_pass_rate: float

    @property
    def n(self) -> int:
        return self.accuracy.n

    def as_dict(self) -> dict[str, object]:
        (ff, fp), (pf, pp) = self.matrix
        return {
            "kind": "binary",
            "n": self.n,
            "confusion": {
                "judge_pass_human_pass": pp,
                "judge_pass_human_fail": pf,
                "judge_fail_human_pass": fp,
                "judge_fail_human_fail": ff,
            },
            "tpr": self.tpr.as_dict(),
            "tnr": self.tnr.as_dict(),
            "accuracy": self.accuracy.as_dict(),
            "kappa": self.kappa.as_dict(),
            "judge_pass_rate": self.judge_pass_rate,
            "human_pass_rate": self.human_pass_rate,
        }


def binary_alignment(
    pairs: Sequence[tuple[bool, bool]], confidence: float = 0.95
) -> BinaryAlignment:
    """TPR, TNR, accuracy and kappa of (judge, human) pass/fail pairs."""
    counts = [[0, 0], [0, 0]]
    for judge, human in pairs:
        counts[int(judge)][int(human)] += 1
    (ff, fp), (pf, pp) = counts
    n = len(pairs)
    return BinaryAlignment(
        matrix=((ff, fp), (pf, pp)),
        tpr=wilson(pp, pp + fp, confidence),
        tnr=wilson(ff, ff + pf, confidence),
        accuracy=wilson(pp + ff, n, confidence),
        kappa=cohen_kappa(counts, confidence),
        judge_pass_rate=(pp + pf) / n if n else math.nan,
        human_pass_rate=(pp + fp) / n if n else math.nan,
    )


@dataclass(frozen=True, slots=True)
class ContinuousAlignment:
    pearson: Estimate
    spearman: float | None
    mean_difference: float | None  # judge - human
    n: int

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": "continuous",
            "n": self.n,
            "pearson": self.pearson.as_dict(),
            "spearman": self.spearman,
            "mean_difference": self.mean_difference,
        }


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / math.sqrt(sxx * syy)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for m in range(i, j + 1):  # ties share their mean rank
            ranks[order[m]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def continuous_alignment(
    pairs: Sequence[tuple[float, float]], confidence: float = 0.95
) -> ContinuousAlignment:
    """Pearson's r (Fisher z interval; needs n >= 4), Spearman's rho and the mean difference."""
    n = len(pairs)
    if n < 2:
        return ContinuousAlignment(Estimate(None, None, None, n), None, None, n)
    xs = [float(j) for j, _ in pairs]
    ys = [float(h) for _, h in pairs]
    r = _pearson(xs, ys)
    low = high = None
    if r is not None and n >= 4 and abs(r) < 1:
        z = math.atanh(r)
        half = z_of(confidence) / math.sqrt(n - 3)
        low, high = math.tanh(z - half), math.tanh(z + half)
    elif r is not None and abs(r) >= 1:
        low = high = r
    return ContinuousAlignment(
        pearson=Estimate(r, low, high, n),
        spearman=_pearson(_ranks(xs), _ranks(ys)),
        mean_difference=sum(x - y for x, y in zip(xs, ys, strict=True)) / n,
        n=n,
    )


@dataclass(frozen=True, slots=True)
class CorrectedRate:
    raw: Estimate  # the judge's pass rate on the traffic
    corrected: Estimate  # what people would give, from the judge's known TPR and TNR
    reason: str | None  # why there is no corrected rate, when there is none

    def as_dict(self) -> dict[str, object]:
        return {
            "raw": self.raw.as_dict(),
            "corrected": self.corrected.as_dict(),
            "reason": self.reason,
        }


def _adjusted_var(k: int, n: int) -> float:
    q = (k + 2) / (n + 4)
    return q * (1 - q) / (n + 4)


def corrected_pass_rate(
    passed: int, n: int, alignment: BinaryAlignment, confidence: float = 0.95
) -> CorrectedRate:
    """The Rogan-Gladen estimate of the human pass rate from a judge's ``passed`` of ``n``,
    with a delta-method interval over the observed rate, TPR and TNR."""
    raw = wilson(passed, n, confidence)
    none = Estimate(None, None, None, n)
    tpr, tnr = alignment.tpr, alignment.tnr
    if n == 0:
        return CorrectedRate(raw, none, "no judged runs in the range")
    if tpr.value is None or tnr.value is None:
        return CorrectedRate(
            raw, none, "the human labels hold no passing or no failing run: TPR or TNR unknown"
        )
    youden = tpr.value + tnr.value - 1
    if youden < MIN_YOUDEN:
        return CorrectedRate(
            raw,
            none,
            f"the judge is barely better than chance (TPR + TNR - 1 = {youden:.2f}): "
            "its pass rate says little about the true rate",
        )
    p = passed / n
    pi = (p + tnr.value - 1) / youden
    # Binomial variances from Agresti-Coull adjusted rates, so a perfect score on few labels
    # (TPR = 1 of 12) still carries its uncertainty instead of a variance of zero.
    var = (
        _adjusted_var(passed, n)
        + pi**2 * _adjusted_var(round(tpr.value * tpr.n), tpr.n)
        + (1 - pi) ** 2 * _adjusted_var(round(tnr.value * tnr.n), tnr.n)
    ) / youden**2
    half = z_of(confidence) * math.sqrt(var)
    value = min(1.0, max(0.0, pi))
    return CorrectedRate(raw, Estimate(value, max(0.0, pi - half), min(1.0, pi + half), n), None)


# --- agreement between reviewers (annotation queues) ---------------------------------------
#
# Units are the items reviewed; each unit holds the ratings its reviewers gave (None: that
# reviewer did not rate it). Krippendorff's alpha (Krippendorff 2004, *Content Analysis*, ch. 11;
# "Computing Krippendorff's Alpha-Reliability", 2011) takes any number of reviewers and missing
# ratings: alpha = 1 - D_o / D_e over the pairable ratings (units with two or more), where
#   D_o = (1/n) sum_u 1/(m_u - 1) sum_{i != j in u} delta(v_i, v_j)
#   D_e = 1/(n (n - 1)) sum_{i != j over all pairable ratings} delta(v_i, v_j)
# with delta = [c != k] (nominal) or (c - k)^2 (interval). Its interval is a percentile
# bootstrap over units with a fixed seed, so the same data always gives the same interval.

NOMINAL = "nominal"
INTERVAL = "interval"
ALPHA_RESAMPLES = 1000
ALPHA_SEED = 20


@dataclass(frozen=True, slots=True)
class _UnitStats:
    m: int  # pairable ratings in the unit
    d: float  # 1/(m - 1) * sum over ordered pairs of delta
    counts: dict[object, int]  # nominal: ratings per category
    s1: float  # interval: sum of ratings
    s2: float  # interval: sum of squared ratings


def _unit_stats(values: Sequence[object], level: str) -> _UnitStats | None:
    vals = [v for v in values if v is not None]
    m = len(vals)
    if m < 2:
        return None
    if level == INTERVAL:
        nums = [float(v) for v in vals]  # type: ignore[arg-type]
        s1, s2 = sum(nums), sum(x * x for x in nums)
        ordered = 2 * (m * s2 - s1 * s1)  # sum over ordered pairs of (x_i - x_j)^2
        return _UnitStats(m, max(ordered, 0.0) / (m - 1), {}, s1, s2)
    counts: dict[object, int] = {}
    for v in vals:
        counts[v] = counts.get(v, 0) + 1
    ordered = m * m - sum(c * c for c in counts.values())
    return _UnitStats(m, ordered / (m - 1), counts, 0.0, 0.0)


def _alpha_of(units: Sequence[_UnitStats], level: str) -> float | None:
    n = sum(u.m for u in units)
    if n < 2:
        return None
    observed = sum(u.d for u in units)
    if level == INTERVAL:
        s1 = sum(u.s1 for u in units)
        s2 = sum(u.s2 for u in units)
        expected = 2 * (n * s2 - s1 * s1)
    else:
        totals: dict[object, int] = {}
        for u in units:
            for value, count in u.counts.items():
                totals[value] = totals.get(value, 0) + count
        expected = n * n - sum(c * c for c in totals.values())
    if expected <= 1e-12:  # every rating the same: agreement by chance alone is perfect
        return None
    return 1.0 - (n - 1) * observed / expected


def krippendorff_alpha(units: Sequence[Sequence[object]], level: str = NOMINAL) -> float | None:
    """Krippendorff's alpha of ``units`` (each a list of ratings, None for missing); None when
    undefined (fewer than two pairable ratings, or no variation at all)."""
    if level not in (NOMINAL, INTERVAL):
        raise ValueError(f"level must be {NOMINAL!r} or {INTERVAL!r}, not {level!r}")
    stats = [s for s in (_unit_stats(u, level) for u in units) if s is not None]
    return _alpha_of(stats, level)


def alpha_interval(
    units: Sequence[Sequence[object]],
    level: str = NOMINAL,
    confidence: float = 0.95,
    *,
    n_resamples: int = ALPHA_RESAMPLES,
    seed: int = ALPHA_SEED,
) -> Estimate:
    """Alpha with a percentile bootstrap interval over units; ``n`` = units with two or more
    ratings."""
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), not {confidence}")
    stats = [s for s in (_unit_stats(u, level) for u in units) if s is not None]
    value = _alpha_of(stats, level)
    if value is None:
        return Estimate(None, None, None, len(stats))
    rng = random.Random(seed)
    resampled = sorted(
        a
        for a in (_alpha_of(rng.choices(stats, k=len(stats)), level) for _ in range(n_resamples))
        if a is not None
    )
    if not resampled:
        return Estimate(value, None, None, len(stats))
    tail = (1 - confidence) / 2
    low = percentile(resampled, tail)
    high = percentile(resampled, 1 - tail)
    return Estimate(value, low, high, len(stats))


def kappa_of_pairs(pairs: Sequence[tuple[object, object]], confidence: float = 0.95) -> Estimate:
    """Cohen's kappa of two reviewers' ratings on the same items (categories of any kind)."""
    labels = sorted({str(v) for pair in pairs for v in pair})
    index = {label: i for i, label in enumerate(labels)}
    table = [[0] * len(labels) for _ in labels]
    for a, b in pairs:
        table[index[str(a)]][index[str(b)]] += 1
    return cohen_kappa(table, confidence)
