"""Levenshtein edit distance and its normalised similarity."""

from __future__ import annotations

__all__ = ["levenshtein", "levenshtein_similarity"]


def levenshtein(a: str, b: str) -> int:
    """Fewest single-character insertions, deletions and substitutions turning ``a`` into ``b``
    (Wagner-Fischer dynamic programme over two rows, O(len(a) * len(b)) time, O(min) memory)."""
    if a == b:
        return 0
    # a shared prefix and suffix never cost anything
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def levenshtein_similarity(a: str, b: str) -> float:
    """1 - distance / max(len(a), len(b)): 1.0 for equal strings (two empty ones included),
    0.0 when nothing can be kept."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(a, b) / longest
