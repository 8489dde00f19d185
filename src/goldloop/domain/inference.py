"""Inference on a paired mean difference: the interval, the one-sided test and the power the
gate reports, all from one model of the data (standard library only).

The unit is what the data samples independently: an example, or a cluster of examples that
share a conversation, session or source trace. Each unit ``c`` carries the sum ``D_c`` of its
examples' differences (B - A) and its size ``m_c``; the estimate is the ratio
``theta = sum D_c / sum m_c`` (the mean difference per example), and its standard error is the
cluster-robust (linearised) one with ``G / (G - 1)`` small-sample factor and ``G - 1`` degrees of
freedom. Without clusters every unit is one example and this is the ordinary paired ``t``.

Two corrections make the interval hold its level at small n:

* **Skewness** (Hall 1992, *Ann. Statist.* 20:1107-1119): the statistic
  ``T = sqrt(G) * g(Delta)`` with ``Delta = (theta_hat - theta) / s`` and the monotone
  ``g(x) = x + gamma x^2 / 3 + gamma^2 x^3 / 27 + gamma / (6 G)`` removes the first-order
  effect of skewed differences, which is what made "18 slightly better, 2 much worse" look
  like a regression to rank tests. The interval and the one-sided test invert the same ``T``,
  so a verdict and its interval can never disagree.
* **Paired binary outcomes** (one 0/1 score per example and side, no clusters): Tango's score
  interval (Tango 1998, *Stat. Med.* 17:891-908) for the difference of paired proportions, and
  the exact one-sided McNemar test (binomial on the discordant pairs), whose false-failure
  rate is at most alpha by construction. Clustered, the counts are first divided by the
  design effect (Rao and Scott).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist

from goldloop.domain.significance import student_t_sf

__all__ = [
    "Inference",
    "design_effect",
    "mean_difference",
    "paired_binary",
    "required_examples",
    "required_repetitions",
    "t_ppf",
]

POWER = 0.8
"""The power at which the minimum detectable effect is stated."""

_STD_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Inference:
    """Estimate, interval and one-sided tests of one paired mean difference (B - A)."""

    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    p_lower: float
    """One-sided p-value for "the true difference is below 0" (B worse when higher is better)."""
    p_upper: float
    """One-sided p-value for "the true difference is above 0"."""
    se: float
    units: int
    """Independent units: examples, or clusters when examples are clustered."""
    df: float
    method: str
    """``hall-t`` (skewness-corrected t), ``cluster-hall-t`` or ``tango-mcnemar``."""

    def mde(self, alpha: float, *, power: float = POWER) -> float:
        """The smallest true drop that a one-sided test at ``alpha`` catches with ``power``
        at this sample size and noise (a normal approximation, in score units)."""
        if self.units < 2:
            return math.inf
        z = t_ppf(1.0 - alpha, self.df) + _STD_NORMAL.inv_cdf(power)
        return z * self.se


@functools.lru_cache(maxsize=1024)
def t_ppf(q: float, df: float) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom (bisection on the tail;
    cached, since a report asks for the same few quantiles again and again)."""
    if not 0.0 < q < 1.0:
        raise ValueError("q must be between 0 and 1")
    if math.isinf(df):
        return _STD_NORMAL.inv_cdf(q)
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while student_t_sf(hi, df) > 1.0 - q:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if student_t_sf(mid, df) > 1.0 - q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def _t_cdf(t: float, df: float) -> float:
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    return 1.0 - student_t_sf(t, df)


def _cbrt(x: float) -> float:
    return math.copysign(abs(x) ** (1.0 / 3.0), x)


def _hall_inverse(y: float, gamma: float, units: int) -> float:
    """The ``Delta`` with ``g(Delta) = y`` (``g`` is increasing, so this is unique)."""
    shifted = y - gamma / (6.0 * units)
    if abs(gamma) < 1e-12:
        return shifted
    return 3.0 / gamma * (_cbrt(1.0 + gamma * shifted) - 1.0)


def _hall(delta: float, gamma: float, units: int) -> float:
    return delta + gamma * delta**2 / 3.0 + gamma**2 * delta**3 / 27.0 + gamma / (6.0 * units)


def mean_difference(
    sums: Sequence[float],
    sizes: Sequence[int] | None = None,
    *,
    confidence: float = 0.95,
) -> Inference:
    """Inference on the mean per-example difference from unit sums ``D_c`` and sizes ``m_c``
    (``sizes`` None: every unit is one example)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be between 0 and 1")
    m = [1] * len(sums) if sizes is None else list(sizes)
    if len(m) != len(sums):
        raise ValueError("sums and sizes differ in length")
    clustered = any(size != 1 for size in m)
    method = "cluster-hall-t" if clustered else "hall-t"
    g = len(sums)
    total = sum(m)
    if g == 0 or total == 0:
        return Inference(math.nan, math.nan, math.nan, confidence, 1.0, 1.0, math.nan, 0, 0, method)
    theta = sum(sums) / total
    if g == 1:
        return Inference(theta, -math.inf, math.inf, confidence, 1.0, 1.0, math.inf, 1, 0, method)
    mean_size = total / g
    # linearised residuals of the ratio estimator, in units of "one example's difference"
    resid = [(d - theta * size) / mean_size for d, size in zip(sums, m, strict=True)]
    second = sum(r * r for r in resid) / g
    df = float(g - 1)
    if clustered:
        # Satterthwaite: clusters of unequal size carry unequal shares of the variance (in
        # proportion to m_c^2 when a conversation moves together), which leaves fewer
        # effective degrees of freedom than G - 1 (Bell & McCaffrey 2002, Survey Methodology
        # 28:169-181, in the spirit of their correction)
        squares = [size * size for size in m]
        df = min(df, sum(squares) ** 2 / sum(q * q for q in squares) - 1.0)
        df = max(df, 1.0)
    se = math.sqrt(second / (g - 1))  # = sqrt(G/(G-1) * sum r^2) / G, the CR1 standard error
    if se <= 1e-15 * max(1.0, abs(theta)):
        # every unit moved by exactly the same amount: no noise to speak of
        p_lower = 1.0 if theta >= 0 else 0.0
        p_upper = 1.0 if theta <= 0 else 0.0
        return Inference(theta, theta, theta, confidence, p_lower, p_upper, 0.0, g, df, method)
    gamma = sum(r**3 for r in resid) / g / second**1.5
    gamma = max(-3.0, min(3.0, gamma))  # a wild skewness estimate from a few units is noise
    s = se * math.sqrt(g)
    q = t_ppf(0.5 + confidence / 2.0, df)
    low = theta - s * _hall_inverse(q / math.sqrt(g), gamma, g)
    high = theta - s * _hall_inverse(-q / math.sqrt(g), gamma, g)
    t0 = math.sqrt(g) * _hall(theta / s, gamma, g)
    # T grows with theta_hat - theta: a small T0 (at theta = 0) is evidence of theta < 0
    p_lower = _t_cdf(t0, df)
    p_upper = _t_cdf(-t0, df)
    return Inference(theta, low, high, confidence, p_lower, p_upper, se, g, df, method)


def _binom_upper_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exactly."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return float(Fraction(sum(math.comb(n, i) for i in range(k, n + 1)), 2**n))


def _tango_z(delta: float, fell: float, rose: float, n: float) -> float:
    """Tango's score statistic at a hypothesised difference ``delta`` = P(rose) - P(fell)."""
    # constrained MLE of P(fell) given P(rose) - P(fell) = delta
    a = 2.0 * n
    b = -fell - rose + (2.0 * n - rose + fell) * delta
    c = -fell * delta * (1.0 - delta)
    disc = max(0.0, b * b - 4.0 * a * c)
    p_fell = (math.sqrt(disc) - b) / (2.0 * a)
    var = n * (2.0 * p_fell + delta * (1.0 - delta))
    num = rose - fell - n * delta
    if var <= 0.0:
        return 0.0 if num == 0 else math.copysign(math.inf, num)
    return num / math.sqrt(var)


def _tango_bound(fell: float, rose: float, n: float, z: float, *, upper: bool) -> float:
    """The end of Tango's interval: where the score statistic crosses ``-z`` (upper end) or
    ``z`` (lower end); the statistic decreases in delta."""
    estimate = (rose - fell) / n
    lo, hi = (estimate, 1.0) if upper else (-1.0, estimate)
    target = -z if upper else z
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if _tango_z(mid, fell, rose, n) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def paired_binary(
    fell: int, rose: int, n: int, *, confidence: float = 0.95, design_effect: float = 1.0
) -> Inference:
    """Paired 0/1 outcomes of ``n`` examples: ``fell`` passed in A and failed in B, ``rose``
    failed in A and passed in B. Tango's score interval for P(rose) - P(fell) and the exact
    one-sided McNemar p-values.

    With clustered examples, ``design_effect`` (cluster-robust variance over the independent
    one, at least 1) divides every count first (Rao & Scott 1992, *Biometrics* 48:577-585), and
    the one-sided tests become the score test at 0 on those counts."""
    method = "tango-mcnemar" if design_effect == 1.0 else "rao-scott-tango"
    if n <= 0:
        return Inference(math.nan, math.nan, math.nan, confidence, 1.0, 1.0, math.nan, 0, 0, method)
    deff = max(1.0, design_effect)
    f, r, m = fell / deff, rose / deff, n / deff
    z = _STD_NORMAL.inv_cdf(0.5 + confidence / 2.0)
    estimate = (rose - fell) / n
    low = _tango_bound(f, r, m, z, upper=False)
    high = _tango_bound(f, r, m, z, upper=True)
    discordant = fell + rose
    if deff == 1.0:
        p_lower = _binom_upper_tail(fell, discordant)  # "B worse": many fell
        p_upper = _binom_upper_tail(rose, discordant)
    elif discordant == 0:
        p_lower = p_upper = 1.0
    else:
        score = (r - f) / math.sqrt(f + r)
        p_lower, p_upper = _STD_NORMAL.cdf(score), _STD_NORMAL.cdf(-score)
    # Wald standard error, for the power statement only; at least one discordant pair's worth
    share = max(discordant, 1) / n
    se = math.sqrt(deff * max(share - estimate * estimate, 1.0 / n) / n)
    return Inference(estimate, low, high, confidence, p_lower, p_upper, se, n, math.inf, method)


def design_effect(cluster_se: float, fell: int, rose: int, n: int) -> float:
    """The cluster-robust variance of the paired difference of proportions over the variance
    it would have with independent examples, at least 1."""
    independent = (fell + rose) / n**2 - (rose - fell) ** 2 / n**3 if n else 0.0
    if independent <= 0.0 or not math.isfinite(cluster_se):
        return 1.0
    return max(1.0, cluster_se**2 / independent)


def required_examples(inference: Inference, drop: float, alpha: float) -> int | None:
    """Examples needed (same noise per example, same clustering) to catch ``drop`` with 80%
    power at ``alpha``; None when there is no noise estimate."""
    if not inference.units or not math.isfinite(inference.se) or drop <= 0:
        return None
    z = _STD_NORMAL.inv_cdf(1.0 - alpha) + _STD_NORMAL.inv_cdf(POWER)
    sd_unit = inference.se * math.sqrt(inference.units)
    return max(2, math.ceil((z * sd_unit / drop) ** 2))


def required_repetitions(
    inference: Inference, noise_sd: float, repetitions: int, drop: float, alpha: float
) -> int | None:
    """Repetitions per example (both sides) that would catch ``drop`` at the current number of
    examples, given the run-to-run standard deviation ``noise_sd``; None when no number of
    repetitions is enough (the examples themselves disagree too much: add examples)."""
    if not inference.units or not math.isfinite(inference.se) or drop <= 0:
        return None
    z = _STD_NORMAL.inv_cdf(1.0 - alpha) + _STD_NORMAL.inv_cdf(POWER)
    per_unit_var = inference.se**2 * inference.units
    within = 2.0 * noise_sd**2  # run-to-run variance of one example's difference, 1 repetition
    between = max(0.0, per_unit_var - within / max(repetitions, 1))
    budget = inference.units * (drop / z) ** 2  # the per-unit variance that would be enough
    if budget <= between:
        return None
    if within == 0.0:
        return max(1, repetitions)
    return max(1, math.ceil(within / (budget - between)))
