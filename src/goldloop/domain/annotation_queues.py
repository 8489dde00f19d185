"""Annotation queues: what a queue's settings and a reviewer's answer must look like."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from goldloop.domain.errors import InvalidInput
from goldloop.domain.feedback import MAX_TEXT, KeySpec, Score, check_key, check_score, check_value

MAX_NAME = 200
MAX_KEYS = 20
MAX_REVIEWERS = 20
LEASE_S = 600  # how long an item stays reserved for the reviewer it was given to
MAX_LEASE_S = 7 * 86400
MAX_RUNS_PER_ADD = 1000
# The key a review's correction and comment are stored on when the queue has no keys.
ANNOTATION_KEY = "annotation"


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise InvalidInput(
            f"a queue's name is 1-{MAX_NAME} characters (no NUL)", details={"field": "name"}
        )
    return name.strip()


def check_text(field: str, text: Any) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be text", details={"field": field})
    if len(text) > MAX_TEXT or "\x00" in text:
        raise InvalidInput(
            f"{field} is at most {MAX_TEXT} characters (no NUL)", details={"field": field}
        )
    return text or None


def check_keys(keys: Any) -> list[str]:
    if keys is None:
        return []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidInput("keys must be a list of feedback keys", details={"field": "keys"})
    if len(keys) > MAX_KEYS:
        raise InvalidInput(f"at most {MAX_KEYS} keys per queue", details={"field": "keys"})
    for key in keys:
        check_key(key)
    if len(set(keys)) != len(keys):
        raise InvalidInput("keys must be distinct", details={"field": "keys"})
    return list(keys)


def check_reviewers(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REVIEWERS:
        raise InvalidInput(
            f"reviewers_needed must be a whole number from 1 to {MAX_REVIEWERS}",
            details={"field": "reviewers_needed"},
        )
    return n


def check_lease(seconds: Any) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidInput(
            "lease_seconds must be a whole number", details={"field": "lease_seconds"}
        )
    if not 10 <= seconds <= MAX_LEASE_S:
        raise InvalidInput(
            f"lease_seconds must be from 10 to {MAX_LEASE_S}", details={"field": "lease_seconds"}
        )
    return seconds


@dataclass(frozen=True, slots=True)
class Answer:
    """One key's answer in a review: a score and/or a value (a category or free text)."""

    score: Score | None
    value: Any


def parse_scores(raw: Any, keys: list[str]) -> dict[str, Answer]:
    """A review's scores: ``{key: {"score": .., "value": ..}}``, or ``{key: scalar}`` where a
    number or boolean is a score and a string a value. Every key of the queue must be answered,
    and only those."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput(
            "scores must be an object keyed by feedback key", details={"field": "scores"}
        )
    extra = sorted(set(raw) - set(keys))
    if extra:
        raise InvalidInput(
            f"{extra[0]!r} is not one of the queue's keys ({', '.join(keys) or 'none'})",
            details={"field": "scores"},
        )
    out: dict[str, Answer] = {}
    for key in keys:
        given = raw.get(key)
        if isinstance(given, dict):
            unknown = sorted(set(given) - {"score", "value"})
            if unknown:
                raise InvalidInput(
                    f"scores[{key!r}] takes 'score' and 'value', not {unknown[0]!r}",
                    details={"field": "scores"},
                )
            answer = Answer(check_score(given.get("score")), check_value(given.get("value")))
        elif isinstance(given, str):
            answer = Answer(None, check_value(given))
        else:
            answer = Answer(check_score(given), None)
        if answer.score is None and answer.value in (None, ""):
            raise InvalidInput(
                f"score every key of the queue: {key!r} has no score or value",
                details={"field": "scores", "key": key},
            )
        out[key] = answer
    return out


def rating(spec: KeySpec | None, answer: dict[str, Any]) -> Any:
    """What agreement compares for one key's answer: the category for categorical keys, the
    boolean for boolean keys, the number for continuous ones (None when absent)."""
    score, value = answer.get("score"), answer.get("value")
    kind = spec.kind if spec is not None else None
    if kind == "freeform":
        return None
    if kind == "categorical":
        return value
    if kind == "boolean":
        return None if score is None else bool(score)
    if kind == "continuous":
        return score
    return value if value is not None else score


def level(spec: KeySpec | None) -> str:
    """How a key's answers are compared: ``nominal`` (categories, booleans) or ``interval``
    (continuous scores)."""
    if spec is not None and spec.kind == "continuous":
        return "interval"
    return "nominal"
