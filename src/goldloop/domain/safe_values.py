"""The values every backend can store and every page can show: one rule for NUL, one set of ranges.

- **NUL** (U+0000): PostgreSQL cannot store it in text or JSONB, SQLite can. So that both
  backends store the same thing, every U+0000 in a text field, a JSON string or a JSON key is
  replaced by U+FFFD (the Unicode replacement character) before the store, on every write path.
  Identifiers (run, trace and parent ids) are not rewritten: an id with a NUL is refused, item by
  item, so a retry is refused the same way instead of failing the whole batch.
- **Ranges**: times between the epoch and 2262-04-11 (signed 64-bit nanoseconds), token
  counts up to ``MAX_TOKENS`` per run, costs finite, non-negative and up to ``MAX_COST``.
  Sums over millions of runs then stay far below the 64-bit limits of both databases.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

NUL = "\x00"
REPLACEMENT = "\ufffd"

# The latest time a signed 64-bit count of nanoseconds holds (2262-04-11T23:47:16.854775Z), the
# OTLP and OpenTelemetry SDK range; every date library can show it.
MAX_TIME_US = (2**63 - 1) // 1000
MAX_TOKENS = 10**12
MAX_COST = 1e9


class OutOfRange(ValueError):
    """A value outside what is stored; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def has_nul(value: Any) -> bool:
    """Whether any string or key in ``value`` may hold a NUL (one serialisation, in C; a
    literal backslash-u0000 in a text also answers True, which only costs a closer look)."""
    try:
        return b"\\u0000" in orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # not JSON-shaped (bytes, say): look closer
        return True


def scrub(value: Any) -> Any:
    """``value`` with every NUL in its strings and keys replaced by U+FFFD; the same object
    when it holds none (the usual case costs one scan, in C for JSON-shaped values)."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if not isinstance(value, dict | list | tuple):
        return value
    try:
        if b"\\u0000" not in orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS):
            return value
    except TypeError:  # not JSON-shaped (bytes, say): walk it
        pass
    return _rebuild(value)


def _rebuild(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT)
    if isinstance(value, dict):
        return {_rebuild(k): _rebuild(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rebuild(v) for v in value]
    return value


def check_id(value: str, field: str) -> str:
    if NUL in value:
        raise OutOfRange(field, "must not contain a NUL character (U+0000)")
    return value


def check_time(value: int, field: str) -> int:
    if not 0 <= value <= MAX_TIME_US:
        raise OutOfRange(
            field, f"is out of range: microseconds between 0 and {MAX_TIME_US} (2262-04-11)"
        )
    return value


def check_tokens(value: int, field: str) -> int:
    if not 0 <= value <= MAX_TOKENS:
        raise OutOfRange(field, f"is out of range: a count between 0 and {MAX_TOKENS}")
    return value


def check_cost(value: float, field: str) -> float:
    if not math.isfinite(value) or not 0 <= value <= MAX_COST:
        raise OutOfRange(field, f"is out of range: a finite cost between 0 and {MAX_COST:g}")
    return value
