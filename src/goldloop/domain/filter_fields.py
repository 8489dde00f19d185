"""The fields of the run filter language: names, aliases, types and the operators each type
takes. ``docs/filters.md`` documents them for users; keep both in step."""

from __future__ import annotations

import re
from dataclasses import dataclass

from goldloop._kinds import KINDS, STATUSES
from goldloop.domain.feedback import SOURCES

MAX_FILTER_CHARS = 4000
MAX_DEPTH = 50
MAX_IN_VALUES = 500

RUN_KINDS = frozenset(KINDS)
RUN_STATUSES = frozenset(STATUSES)
FEEDBACK_SOURCES = frozenset(SOURCES)

# ---------------------------------------------------------------------------------------------
# Field catalogue
# ---------------------------------------------------------------------------------------------

COMPARE_OPS = ("=", "!=", ">", ">=", "<", "<=")
EQUALITY_OPS = ("=", "!=")
TEXT_OPS = ("~", "!~")
ALL_OPS = (*COMPARE_OPS, *TEXT_OPS, "in")

OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": (*EQUALITY_OPS, *TEXT_OPS, "in"),
    "enum": (*EQUALITY_OPS, "in"),
    "int": (*COMPARE_OPS, "in"),
    "number": COMPARE_OPS,
    "duration": COMPARE_OPS,
    "time": COMPARE_OPS,
    "bool": EQUALITY_OPS,
    "tags": (*EQUALITY_OPS, "in"),
    "text": TEXT_OPS,
    "error": TEXT_OPS,
    "metadata": ALL_OPS,
    # feedback.KEY[.ATTRIBUTE]: each predicate is an EXISTS over the run's feedback
    "fb_any": (),
    "fb_score": (*COMPARE_OPS, "in"),
    "fb_value": (*EQUALITY_OPS, *TEXT_OPS, "in"),
    "fb_source": (*EQUALITY_OPS, "in"),
    "fb_flag": EQUALITY_OPS,
    "fb_comment": TEXT_OPS,
}
FEEDBACK_ATTRS = {
    "score": "fb_score",
    "value": "fb_value",
    "source": "fb_source",
    "has_correction": "fb_flag",
    "comment": "fb_comment",
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str  # canonical name
    type: str  # a key of OPS_BY_TYPE, or "feedback" (resolved by the parser from the path)
    enum: frozenset[str] = frozenset()


_SPECS = [
    FieldSpec("id", "string"),
    FieldSpec("trace_id", "string"),
    FieldSpec("parent_id", "string"),
    FieldSpec("project", "string"),
    FieldSpec("name", "string"),
    FieldSpec("kind", "enum", RUN_KINDS),
    FieldSpec("status", "enum", RUN_STATUSES),
    FieldSpec("error", "error"),
    FieldSpec("model", "string"),
    FieldSpec("provider", "string"),
    FieldSpec("session_id", "string"),
    FieldSpec("user_id", "string"),
    FieldSpec("tags", "tags"),
    FieldSpec("latency", "duration"),
    FieldSpec("tokens", "int"),
    FieldSpec("input_tokens", "int"),
    FieldSpec("output_tokens", "int"),
    FieldSpec("cost", "number"),
    FieldSpec("start_time", "time"),
    FieldSpec("end_time", "time"),
    FieldSpec("root", "bool"),
    FieldSpec("inputs", "text"),
    FieldSpec("outputs", "text"),
    FieldSpec("text", "text"),
    FieldSpec("metadata", "metadata"),
    FieldSpec("feedback", "feedback"),
    FieldSpec("has_correction", "fb_flag"),
]
FIELDS: dict[str, FieldSpec] = {s.name: s for s in _SPECS}
ALIASES = {
    "trace": "trace_id",
    "parent": "parent_id",
    "session": "session_id",
    "user": "user_id",
    "tag": "tags",
    "time": "start_time",
    "start": "start_time",
    "end": "end_time",
    "total_tokens": "tokens",
    "is_root": "root",
    "meta": "metadata",
}

DURATION_UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "min": 60_000_000}
DURATION_UNITS |= {"h": 3_600_000_000, "d": 86_400_000_000, "w": 7 * 86_400_000_000}


def parse_duration(text: str) -> int:
    """``"1h"``, ``"15m"``, ``"500ms"`` → microseconds; raises ``ValueError`` naming the units."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", text)
    factor = DURATION_UNITS.get(m.group(2).lower()) if m else None
    if m is None or factor is None:
        units = ", ".join(DURATION_UNITS)
        raise ValueError(f"expected a duration such as 1h or 15m (units: {units}), not {text!r}")
    return round(float(m.group(1)) * factor)
