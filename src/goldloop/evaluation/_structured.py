"""Structured-output built-ins: JSON parse, JSON Schema, required fields, numeric tolerance."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from goldloop.domain.json_schema import SchemaError, check_schema, schema_errors
from goldloop.evaluation._protocol import Evaluator
from goldloop.evaluation._registry import register_evaluator
from goldloop.evaluation._select import MISSING, get_path, output_value, reference_value
from goldloop.evaluation._types import EvaluationResult, ExampleData, RunData

__all__ = ["JsonParse", "JsonSchema", "NumericTolerance", "RequiredFields"]


def _parse(value: Any) -> tuple[Any, str | None]:
    """A string is parsed as JSON (code fences around it are allowed); other values are
    already structured. Returns (value, error)."""
    if not isinstance(value, str | bytes):
        return value, None
    text = value.decode() if isinstance(value, bytes) else value
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0].strip()
    try:
        return orjson.loads(stripped), None
    except orjson.JSONDecodeError as exc:
        return MISSING, f"not valid JSON: {exc}"


def _structured_output(run: RunData, field: str | None) -> Any:
    # structured checks look at the whole outputs unless a field is named (no unwrapping)
    return get_path(run.outputs, field) if field else run.outputs


@register_evaluator("json_parse")
class JsonParse(Evaluator):
    """Score 1 when the output is (or parses as) JSON; ``expect_type`` optionally demands
    ``object`` or ``array``."""

    name = "json_parse"
    version = "1"

    def __init__(
        self, *, key: str = "json_valid", field: str | None = None, expect_type: str | None = None
    ) -> None:
        if expect_type not in (None, "object", "array"):
            raise ValueError("expect_type must be 'object' or 'array'")
        self.key, self.field, self.expect_type = key, field, expect_type

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        raw = output_value(run, self.field)
        if raw is MISSING:
            return [self.result(self.key, score=0.0, comment=f"no field {self.field!r}")]
        value, error = _parse(raw)
        if error is None and self.expect_type == "object" and not isinstance(value, Mapping):
            error = "JSON is not an object"
        if error is None and self.expect_type == "array" and not isinstance(value, list):
            error = "JSON is not an array"
        return [self.result(self.key, score=0.0 if error else 1.0, comment=error)]


@register_evaluator("json_schema")
class JsonSchema(Evaluator):
    """Score 1 when the output (parsed if it is a string) is valid against ``schema``; the
    violations (``$.path: message``) go in the comment and ``value``."""

    name = "json_schema"
    version = "1"

    def __init__(
        self,
        *,
        schema: Mapping[str, Any] | bool,
        key: str = "json_schema",
        field: str | None = None,
    ) -> None:
        try:
            check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"invalid schema: {exc}") from None
        self.schema, self.key, self.field = schema, key, field

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        raw = _structured_output(run, self.field)
        if raw is MISSING:
            return [self.result(self.key, score=0.0, comment=f"no field {self.field!r}")]
        value, error = _parse(raw)
        if error is not None:
            return [self.result(self.key, score=0.0, comment=error)]
        errors = schema_errors(value, self.schema)
        if not errors:
            return [self.result(self.key, score=1.0)]
        return [self.result(self.key, score=0.0, value=errors, comment="; ".join(errors[:5]))]


@register_evaluator("required_fields")
class RequiredFields(Evaluator):
    """Score 1 when every path in ``fields`` (dotted, e.g. ``booking.refundable``) is present in
    the outputs and, unless ``allow_empty``, not null or an empty string/list/object."""

    name = "required_fields"
    version = "1"

    def __init__(
        self,
        *,
        fields: Sequence[str],
        key: str = "required_fields",
        field: str | None = None,
        allow_empty: bool = False,
    ) -> None:
        if isinstance(fields, str) or not fields:
            raise ValueError("fields must be a non-empty list of paths")
        self.fields = list(fields)
        self.key, self.field, self.allow_empty = key, field, allow_empty

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        raw = _structured_output(run, self.field)
        value, error = _parse(raw) if raw is not MISSING else (MISSING, None)
        if error is not None:
            return [self.result(self.key, score=0.0, comment=error)]
        missing = []
        for path in self.fields:
            got = get_path(value, path) if value is not MISSING else MISSING
            empty = got is None or (isinstance(got, str | list | dict) and len(got) == 0)
            if got is MISSING or (empty and not self.allow_empty):
                missing.append(path)
        if not missing:
            return [self.result(self.key, score=1.0)]
        return [
            self.result(
                self.key,
                score=0.0,
                value=missing,
                comment=f"missing or empty: {', '.join(missing)}",
            )
        ]


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


@register_evaluator("numeric_tolerance")
class NumericTolerance(Evaluator):
    """Score 1 when ``|output - reference| <= abs_tol + rel_tol * |reference|``. Numeric strings
    (``"1,250.5"``) are read as numbers."""

    name = "numeric_tolerance"
    version = "1"

    def __init__(
        self,
        *,
        key: str = "numeric_match",
        field: str | None = None,
        reference_field: str | None = None,
        expected: float | None = None,
        abs_tol: float = 0.0,
        rel_tol: float = 0.0,
    ) -> None:
        if abs_tol < 0 or rel_tol < 0:
            raise ValueError("tolerances must be non-negative")
        self.key, self.field, self.reference_field = key, field, reference_field
        self.expected = MISSING if expected is None else expected
        self.abs_tol, self.rel_tol = abs_tol, rel_tol

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        want_raw = reference_value(
            example, self.reference_field, self.expected, evaluator=self.name
        )
        want = _as_number(want_raw)
        if want is None:
            raise ValueError(f"the reference {want_raw!r} is not a number")
        got_raw = output_value(run, self.field)
        got = None if got_raw is MISSING else _as_number(got_raw)
        if got is None or math.isnan(got):
            return [self.result(self.key, score=0.0, comment=f"output {got_raw!r} is not a number")]
        diff = abs(got - want)
        ok = diff <= self.abs_tol + self.rel_tol * abs(want)
        comment = None if ok else f"{got} differs from {want} by {diff:.6g}"
        return [self.result(self.key, score=1.0 if ok else 0.0, value=got - want, comment=comment)]
