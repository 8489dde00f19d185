"""Percentiles by linear interpolation between closest ranks.

The same definition as ``numpy.percentile`` (default ``linear``) and
``statistics.quantiles(method="inclusive")``: for sorted values ``x[0..n-1]`` and fraction ``q``,
``h = (n - 1) * q``, result ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``.

The store fetches only the two ranks each percentile needs (see ``low_rank``); this module does
the arithmetic, with the percentile given in permille (p95 = 950) so the rank is exact integer
arithmetic in SQL and here.
"""

from __future__ import annotations

from collections.abc import Mapping


def low_rank(n: int, permille: int) -> int:
    return (n - 1) * permille // 1000


def interpolate(n: int, permille: int, ranks: Mapping[int, float]) -> float | None:
    """The percentile from the values at ``low_rank`` and ``low_rank + 1`` (0-based ranks)."""
    if n <= 0:
        return None
    lo = low_rank(n, permille)
    frac = ((n - 1) * permille - lo * 1000) / 1000
    low = ranks[lo]
    if frac == 0 or lo + 1 >= n:
        return float(low)
    return float(low + frac * (ranks[lo + 1] - low))
