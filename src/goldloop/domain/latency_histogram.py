"""Mergeable latency histograms with a bounded relative error, for hourly rollups.

A latency ``v`` (µs, an integer >= 0) falls in bucket ``v`` itself when ``v < EXACT_BELOW``
(one microsecond is within 1% there), else in log-scale bucket
``EXACT_BELOW + floor(log(v / EXACT_BELOW) / log(RATIO))``, which spans ``[lo, lo * RATIO)``.
A bucket stands for its geometric middle ``lo * sqrt(RATIO)``, within ``RELATIVE_ERROR`` of every
value in it; a percentile read from merged histograms (the values at its two closest ranks,
interpolated as ``goldloop.domain.percentiles`` does) is therefore within ``RELATIVE_ERROR`` of
the exact one. Histograms are sparse ``{bucket: count}`` and add up bucket by bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

RATIO = 1.01
EXACT_BELOW = 100
RELATIVE_ERROR = math.sqrt(RATIO) - 1  # 0.499%
_LOG_RATIO = math.log(RATIO)
_MIDDLE = math.sqrt(RATIO)

Histogram = dict[int, int]


def bucket(value: int) -> int:
    if value < EXACT_BELOW:
        return value
    return EXACT_BELOW + int(math.log(value / EXACT_BELOW) / _LOG_RATIO)


def representative(key: int) -> float:
    if key < EXACT_BELOW:
        return float(key)
    return EXACT_BELOW * RATIO ** (key - EXACT_BELOW) * _MIDDLE


def add_values(hist: Histogram, values: Iterable[int]) -> None:
    for v in values:
        k = bucket(v)
        hist[k] = hist.get(k, 0) + 1


def add(hist: Histogram, other: Mapping[int, int]) -> None:
    for k, n in other.items():
        hist[k] = hist.get(k, 0) + n


def encode(hist: Mapping[int, int]) -> list[int]:
    """The histogram as a flat list ``[key, count, key, count, ...]`` in key order."""
    out: list[int] = []
    for k in sorted(hist):
        out += [k, hist[k]]
    return out


def add_encoded(hist: Histogram, flat: Sequence[int]) -> None:
    for i in range(0, len(flat), 2):
        k = flat[i]
        hist[k] = hist.get(k, 0) + flat[i + 1]


def rank_values(hist: Mapping[int, int], ranks: Iterable[int]) -> dict[int, float]:
    """{0-based rank: the value that stands for it} for the wanted ranks."""
    wanted = sorted(set(ranks))
    out: dict[int, float] = {}
    if not wanted:
        return out
    seen = 0
    i = 0
    for k in sorted(hist):
        seen += hist[k]
        while i < len(wanted) and wanted[i] < seen:
            out[wanted[i]] = representative(k)
            i += 1
        if i == len(wanted):
            break
    return out
