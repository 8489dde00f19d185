"""Levenshtein edit distance and its normalised similarity."""

from __future__ import annotations

__all__ = ["levenshtein", "levenshtein_similarity"]


def levenshtein(a: str, b: str) -> int:
    """Fewest single-character insertions, deletions and substitutions turning ``a`` into ``b``.

    Bit-parallel (Myers 1999, in Hyyrö's 2001 formulation for edit distance): one column of the
    dynamic-programming matrix is held as two bit vectors of vertical +1/-1 differences, so
    each character of the longer string costs a handful of big-integer operations instead of
    a loop over the shorter one. O(len(a) * len(b) / word size) time.
    """
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
    if len(a) > len(b):
        a, b = b, a
    m = len(a)
    if m == 0:
        return len(b)
    peq: dict[str, int] = {}
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = full, 0, m
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score


def levenshtein_similarity(a: str, b: str) -> float:
    """1 - distance / max(len(a), len(b)): 1.0 for equal strings (two empty ones included),
    0.0 when nothing can be kept."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(a, b) / longest
