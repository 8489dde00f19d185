"""Whether a score passes or fails, and whether a run of an experiment failed (on one key, or
on any): what the experiment page colours and what its *failures only* filter keeps.

A score is judged only when it reads as pass/fail or on a 0-1 scale: ``True``/``False``, or a
number from 0 to 1, which fails below the pass mark. Other numbers (a latency, a count, a 1-5
rating) are shown as they are, neither passing nor failing. An evaluator's error fails its key;
a failed call of the target fails every key (the comparison counts it as the worst score).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

PASS_MARK = 0.5  # a 0-1 score passes from here up

Mark = Literal["pass", "fail"]

__all__ = ["PASS_MARK", "Mark", "check_pass_mark", "mark", "result_mark", "run_fails"]


def check_pass_mark(value: float) -> bool:
    return math.isfinite(value) and 0.0 <= value <= 1.0


def mark(score: Any, pass_mark: float = PASS_MARK) -> Mark | None:
    """``pass`` or ``fail`` for a pass/fail or 0-1 score, else None (not judged)."""
    if isinstance(score, bool):
        return "pass" if score else "fail"
    if not isinstance(score, int | float) or not math.isfinite(score):
        return None
    if not 0.0 <= score <= 1.0:
        return None
    return "pass" if score >= pass_mark else "fail"


def result_mark(result: Mapping[str, Any], pass_mark: float = PASS_MARK) -> Mark | None:
    """One stored result (``key``, ``score``, optional ``error``): an evaluator's error fails."""
    if result.get("error"):
        return "fail"
    return mark(result.get("score"), pass_mark)


def run_fails(
    error: str | None,
    results: Iterable[Mapping[str, Any]],
    key: str | None = None,
    pass_mark: float = PASS_MARK,
) -> bool:
    """Whether the run failed: the target's call failed, or a result (of ``key``, or of any key
    when None) is an evaluator error or a score below the pass mark."""
    if error:
        return True
    return any(
        result_mark(r, pass_mark) == "fail" for r in results if key is None or r.get("key") == key
    )
