"""One-sided tests for "the current window is worse than the baseline window".

Alerts must neither fire on five noisy samples nor miss a real drop, so a drop condition is a
hypothesis test with a minimum sample size, not a bare threshold:

- proportions (share of passing scores, error rate): the two-proportion z-test with a pooled
  standard error;
- means (mean score, latency, cost): Welch's t-test (unequal variances, Welch-Satterthwaite
  degrees of freedom).

Both return a one-sided p-value for H1 "current is lower than baseline" (for metrics where up is
bad, callers negate the direction). Standard library only; the distribution functions are
written here (normal via erfc, Student's t via the regularized incomplete beta function).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TestResult:
    statistic: float
    p_value: float
    baseline: float
    current: float
    baseline_n: int
    current_n: int


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if math.isinf(df):
        return normal_sf(t)
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def proportion_drop(
    baseline_successes: int, baseline_n: int, current_successes: int, current_n: int
) -> TestResult:
    """Two-proportion z-test, one-sided: is the current success rate lower than the baseline's?"""
    if baseline_n <= 0 or current_n <= 0:
        raise ValueError("both windows need at least one observation")
    p1 = baseline_successes / baseline_n
    p2 = current_successes / current_n
    pooled = (baseline_successes + current_successes) / (baseline_n + current_n)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / baseline_n + 1.0 / current_n))
    if se == 0.0:  # every observation identical: no evidence either way unless rates differ
        z = 0.0 if p1 == p2 else math.copysign(math.inf, p1 - p2)
        return TestResult(z, normal_sf(z), p1, p2, baseline_n, current_n)
    z = (p1 - p2) / se
    return TestResult(z, normal_sf(z), p1, p2, baseline_n, current_n)


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and sample variance of one window (what the store aggregates in SQL)."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: list[float]) -> Moments:
        n = len(values)
        if n == 0:
            return cls(0, math.nan, math.nan)
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, var)

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> Moments:
        if n == 0:
            return cls(0, math.nan, math.nan)
        mean = total / n
        var = max(0.0, (total_sq - n * mean * mean) / (n - 1)) if n > 1 else 0.0
        return cls(n, mean, var)


def mean_drop(baseline: Moments, current: Moments) -> TestResult:
    """Welch's t-test, one-sided: is the current mean lower than the baseline mean?"""
    if baseline.n < 2 or current.n < 2:
        raise ValueError("both windows need at least two observations")
    v1, v2 = baseline.variance / baseline.n, current.variance / current.n
    se = math.sqrt(v1 + v2)
    diff = baseline.mean - current.mean
    if se == 0.0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return TestResult(
            t,
            0.0 if t > 0 else 1.0 if t < 0 else 0.5,
            baseline.mean,
            current.mean,
            baseline.n,
            current.n,
        )
    t = diff / se
    df = (v1 + v2) ** 2 / (v1**2 / (baseline.n - 1) + v2**2 / (current.n - 1))
    return TestResult(t, student_t_sf(t, df), baseline.mean, current.mean, baseline.n, current.n)
