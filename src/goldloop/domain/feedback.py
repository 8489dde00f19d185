"""Feedback rules: sources, key declarations, and whether a score or value fits its key."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from goldloop.domain.errors import InvalidInput

SOURCES = ("human", "api", "app", "model", "rule", "online-evaluator")
KINDS = ("continuous", "categorical", "boolean", "freeform")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\- ]{0,99}$")
MAX_ID = 64
MAX_CATEGORIES = 50
MAX_LABEL = 100
MAX_TEXT = 20_000

Score = float | bool


@dataclass(frozen=True, slots=True)
class Category:
    """One named value of a categorical key, with the score it stands for (if any)."""

    label: str
    score: float | None = None


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A declared feedback key (a score config): what its scores and values must look like,
    and what reviewers are told about it."""

    key: str
    kind: str
    min_score: float | None = None
    max_score: float | None = None
    categories: tuple[Category, ...] | None = None
    description: str | None = None
    rubric: str | None = None
    correction_expected: bool = False
    lower_is_better: bool = False

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.label for c in self.categories or ())


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            f"feedback key {key!r} is not valid: use 1-100 letters, digits, spaces or _ . : -, "
            "starting with a letter or digit",
            details={"field": "key"},
        )
    return key


def check_id(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_ID:
        raise InvalidInput(f"{name} must be 1-{MAX_ID} characters", details={"field": name})
    if "\x00" in value:
        raise InvalidInput(
            f"{name} must not contain a NUL character (U+0000)", details={"field": name}
        )
    return value


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise InvalidInput(
            f"source must be one of {', '.join(SOURCES)}, not {source!r}",
            details={"field": "source"},
        )
    return source


def make_spec(
    key: str,
    kind: str,
    *,
    min_score: float | None,
    max_score: float | None,
    categories: list[Any] | None,
    description: str | None,
    rubric: str | None = None,
    correction_expected: bool = False,
    lower_is_better: bool = False,
) -> KeySpec:
    """Check a declaration and return it; raises ``InvalidInput`` naming what is wrong.

    Categories are labels (``"calm"``) or ``{"label": "calm", "score": 1}`` objects.
    """
    check_key(key)
    if kind not in KINDS:
        raise InvalidInput(
            f"kind must be one of {', '.join(KINDS)}, not {kind!r}", details={"field": "kind"}
        )
    if kind != "continuous" and (min_score is not None or max_score is not None):
        raise InvalidInput(
            f"min and max apply only to continuous keys, not {kind}", details={"field": "min"}
        )
    if kind == "continuous":
        for name, bound in (("min", min_score), ("max", max_score)):
            if bound is not None and not math.isfinite(bound):
                raise InvalidInput(f"{name} must be a finite number", details={"field": name})
        if min_score is not None and max_score is not None and min_score > max_score:
            raise InvalidInput(
                f"min ({min_score}) is greater than max ({max_score})", details={"field": "min"}
            )
    cats: tuple[Category, ...] | None = None
    if kind == "categorical":
        if not categories:
            raise InvalidInput(
                "a categorical key needs a non-empty list of categories",
                details={"field": "categories"},
            )
        cats = _categories(categories)
    elif categories:
        raise InvalidInput(
            f"categories apply only to categorical keys, not {kind}",
            details={"field": "categories"},
        )
    for name, text in (("description", description), ("rubric", rubric)):
        if text is not None and len(text) > MAX_TEXT:
            raise InvalidInput(
                f"{name} is longer than {MAX_TEXT} characters", details={"field": name}
            )
        if text is not None and "\x00" in text:
            raise InvalidInput(
                f"{name} must not contain a NUL character (U+0000)", details={"field": name}
            )
    return KeySpec(
        key,
        kind,
        min_score,
        max_score,
        cats,
        description,
        rubric or None,
        bool(correction_expected),
        bool(lower_is_better),
    )


def _categories(raw: list[Any]) -> tuple[Category, ...]:
    if len(raw) > MAX_CATEGORIES:
        raise InvalidInput(f"at most {MAX_CATEGORIES} categories", details={"field": "categories"})
    out: list[Category] = []
    for i, item in enumerate(raw):
        where = f"categories[{i}]"
        label: Any
        score: Any
        if isinstance(item, str):
            label, score = item, None
        elif isinstance(item, dict) and set(item) <= {"label", "score"}:
            label, score = item.get("label"), item.get("score")
        else:
            raise InvalidInput(
                f"{where} must be a label or an object with 'label' and 'score'",
                details={"field": "categories"},
            )
        if not isinstance(label, str) or not 1 <= len(label) <= MAX_LABEL or "\x00" in label:
            raise InvalidInput(
                f"{where}: a label is a string of 1-{MAX_LABEL} characters",
                details={"field": "categories"},
            )
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise InvalidInput(
                    f"{where}: score must be a number", details={"field": "categories"}
                )
            if not math.isfinite(score):
                raise InvalidInput(
                    f"{where}: score must be a finite number", details={"field": "categories"}
                )
            score = float(score)
        out.append(Category(label, score))
    if len({c.label for c in out}) != len(out):
        raise InvalidInput("category labels must be distinct", details={"field": "categories"})
    scored = [c.score for c in out if c.score is not None]
    if scored and len(scored) != len(out):
        raise InvalidInput(
            "give every category a score, or none of them", details={"field": "categories"}
        )
    if len(set(scored)) != len(scored):
        raise InvalidInput("category scores must be distinct", details={"field": "categories"})
    return tuple(out)


def check_score(score: Any) -> Score | None:
    """A score is a finite number or a boolean (or absent)."""
    if score is None or isinstance(score, bool):
        return score
    if isinstance(score, int | float):
        value = float(score)
        if not math.isfinite(value):
            raise InvalidInput("score must be a finite number", details={"field": "score"})
        return value
    raise InvalidInput(
        f"score must be a number or a boolean, not {type(score).__name__}",
        details={"field": "score"},
    )


def check_value(value: Any) -> Any:
    """A value is a category or free text: a string, a number or a boolean (or absent)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise InvalidInput(
        f"value must be a string (a category or free text), not {type(value).__name__}",
        details={"field": "value"},
    )


def fit(spec: KeySpec | None, score: Score | None, value: Any) -> tuple[Score | None, Any]:
    """Check a score and value against the key's declaration; returns the score and value to
    store.

    Undeclared keys take anything well-typed. A boolean key also takes the numbers 0 and 1. A
    categorical key whose categories have scores maps a category to its score and a score to
    its category, so either may be sent (both must then agree).
    """
    if spec is None or spec.kind == "freeform":
        return score, value
    where = f"feedback key {spec.key!r} is declared {spec.kind}"
    if spec.kind == "boolean":
        if value is not None:
            raise InvalidInput(
                f"{where}: send a boolean score, not a value", details={"field": "value"}
            )
        if score is None or isinstance(score, bool):
            return score, None
        if score in (0.0, 1.0):
            return score == 1.0, None
        raise InvalidInput(
            f"{where}: score must be true or false, not {score}", details={"field": "score"}
        )
    if spec.kind == "continuous":
        if value is not None:
            raise InvalidInput(
                f"{where}: send a numeric score, not a value", details={"field": "value"}
            )
        if isinstance(score, bool):
            raise InvalidInput(
                f"{where}: score must be a number, not a boolean", details={"field": "score"}
            )
        if score is not None:
            low, high = spec.min_score, spec.max_score
            if (low is not None and score < low) or (high is not None and score > high):
                raise InvalidInput(
                    f"{where}: score {score:g} is outside its range "
                    f"[{_bound(low, '-inf')}, {_bound(high, 'inf')}]",
                    details={"field": "score"},
                )
        return score, None
    return _fit_category(spec, where, score, value)


def _fit_category(
    spec: KeySpec, where: str, score: Score | None, value: Any
) -> tuple[Score | None, Any]:
    if isinstance(score, bool):
        raise InvalidInput(
            f"{where}: score must be a number, not a boolean", details={"field": "score"}
        )
    categories = spec.categories or ()
    scored = any(c.score is not None for c in categories)
    if value is None:
        if score is None or not scored:
            return score, None
        for c in categories:
            if c.score == score:
                return score, c.label
        allowed = ", ".join(f"{c.score:g} ({c.label})" for c in categories if c.score is not None)
        raise InvalidInput(
            f"{where}: score {score:g} is not the score of any of its categories ({allowed})",
            details={"field": "score"},
        )
    match = next((c for c in categories if c.label == value), None)
    if match is None:
        allowed = ", ".join(repr(c.label) for c in categories)
        raise InvalidInput(
            f"{where}: value {value!r} is not one of its categories ({allowed})",
            details={"field": "value"},
        )
    if match.score is None:
        return score, value
    if score is not None and score != match.score:
        raise InvalidInput(
            f"{where}: score {score:g} does not match category {value!r}, "
            f"whose score is {match.score:g}",
            details={"field": "score"},
        )
    return match.score, value


def _bound(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:g}"


def request_hash(body: dict[str, Any]) -> str:
    """A stable hash of a creation request (key order and float formatting do not matter)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_bucket(text: str) -> int:
    """A bucket width such as ``30s``, ``15m``, ``1h``, ``1d``, ``1w`` (or plain seconds) -> µs."""
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in _UNITS else "s"
    number = raw[:-1] if raw[-1:] in _UNITS else raw
    if not number.isdigit() or int(number) == 0:
        raise InvalidInput(
            f"bucket {text!r} is not a duration: use e.g. 30s, 15m, 1h, 1d or 1w",
            details={"field": "bucket"},
        )
    return int(number) * _UNITS[unit] * 1_000_000
