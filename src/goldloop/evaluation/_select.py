"""Picking the value a built-in evaluator checks out of a run's outputs or an example's reference
outputs, and normalising text. Shared by the built-ins; the rules are documented in
docs/evaluators.md ("Which value is checked")."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from goldloop.evaluation._types import ExampleData, RunData

__all__ = [
    "MISSING",
    "MissingReference",
    "Normaliser",
    "get_path",
    "output_value",
    "reference_value",
    "to_text",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class MissingReference(ValueError):
    """The evaluator needs a reference value and neither its config nor the example has one."""


def get_path(value: Any, path: str | None) -> Any:
    """``a.b.0.c`` into nested mappings and lists; :data:`MISSING` when absent. ``None`` or an
    empty path is the value itself; a single key that contains dots is tried first."""
    if not path:
        return value
    if isinstance(value, Mapping) and path in value:
        return value[path]
    current = value
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, Sequence) and not isinstance(current, str | bytes):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return MISSING
        else:
            return MISSING
    return current


def _unwrap(value: Any) -> Any:
    # {"answer": "x"} -> "x": a one-key mapping stands for its value
    if isinstance(value, Mapping) and len(value) == 1:
        return next(iter(value.values()))
    return value


def output_value(run: RunData, field: str | None) -> Any:
    """The checked value of the run: ``outputs[field]`` when configured, else the outputs,
    unwrapped when they are a one-key mapping. :data:`MISSING` when the field is absent."""
    if field:
        return get_path(run.outputs, field)
    return _unwrap(run.outputs)


def reference_value(
    example: ExampleData | None,
    field: str | None,
    expected: Any = MISSING,
    *,
    evaluator: str,
) -> Any:
    """The value to compare with: the configured ``expected`` if given, else the example's
    reference outputs (``[field]`` or unwrapped); raises :class:`MissingReference`."""
    if expected is not MISSING and expected is not None:
        return expected
    if example is None or example.outputs is None:
        raise MissingReference(
            f"{evaluator} needs reference outputs (an example) or an expected value in its config"
        )
    value = get_path(example.outputs, field) if field else _unwrap(example.outputs)
    if value is MISSING:
        raise MissingReference(f"{evaluator}: the reference outputs have no field {field!r}")
    return value


def to_text(value: Any) -> str:
    """Strings as they are; anything else as compact JSON with sorted keys."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


_WS = re.compile(r"\s+")
_PUNCT = {ord(c): None for c in string.punctuation}


class Normaliser:
    """Text normalisation options shared by the text evaluators."""

    def __init__(
        self,
        *,
        case_sensitive: bool = True,
        strip: bool = True,
        collapse_whitespace: bool = False,
        ignore_punctuation: bool = False,
        unicode_normalise: bool = True,
    ) -> None:
        self.case_sensitive = case_sensitive
        self.strip = strip
        self.collapse_whitespace = collapse_whitespace
        self.ignore_punctuation = ignore_punctuation
        self.unicode_normalise = unicode_normalise

    def __call__(self, value: Any) -> str:
        text = to_text(value)
        if self.unicode_normalise:
            text = unicodedata.normalize("NFC", text)
        if self.ignore_punctuation:
            text = text.translate(_PUNCT)
        if self.collapse_whitespace:
            text = _WS.sub(" ", text)
        if self.strip:
            text = text.strip()
        if not self.case_sensitive:
            text = text.casefold()
        return text
