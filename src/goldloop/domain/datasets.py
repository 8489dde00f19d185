"""Dataset rules: names, tags, example ids, the ``as_of`` selector, canonical inputs hashing and
JSON Schema checks of example inputs and reference outputs."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import orjson
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from goldloop.domain.clock import from_iso
from goldloop.domain.errors import InvalidInput

MAX_NAME = 200
TAG_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9._\-]{0,63}$")
METADATA_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
MAX_REPORTED = 20


def check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput("dataset name must not be empty", details={"field": "name"})
    if len(cleaned) > MAX_NAME:
        raise InvalidInput(
            f"dataset name is longer than {MAX_NAME} characters", details={"field": "name"}
        )
    if "/" in cleaned or "\x00" in cleaned:
        raise InvalidInput(
            "dataset name must not contain '/' or a NUL character", details={"field": "name"}
        )
    return cleaned


def check_tag(tag: str) -> str:
    if not TAG_PATTERN.match(tag):
        raise InvalidInput(
            f"tag {tag!r} is not valid: 1-64 letters, digits or . _ -, starting with a letter "
            "(so it is never mistaken for a version number or a time)",
            details={"field": "tag"},
        )
    return tag


def inputs_hash(inputs: Any) -> str:
    """SHA-256 of the canonical JSON (sorted keys) of an example's inputs."""
    return hashlib.sha256(orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)).hexdigest()


def new_example_ids(now_us: int, count: int) -> list[str]:
    """``count`` time-ordered UUIDs (version 7, monotonic within the batch), so listing examples
    by id lists them in the order they were added."""
    millis = (now_us // 1000) & ((1 << 48) - 1)
    start = secrets.randbits(64)
    ids = []
    for i in range(count):
        counter = start + i
        rand_a = (counter >> 62) & 0xFFF
        rand_b = counter & ((1 << 62) - 1)
        value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
        ids.append(str(uuid.UUID(int=value)))
    return ids


def check_example_id(example_id: str) -> str:
    if not 1 <= len(example_id) <= 64:
        raise InvalidInput("example id must be 1-64 characters", details={"field": "id"})
    if "\x00" in example_id:
        raise InvalidInput("example id must not contain a NUL character", details={"field": "id"})
    return example_id


@dataclass(frozen=True, slots=True)
class AsOf:
    """Which version to read: exactly one of a version number, a tag or a time (µs)."""

    version: int | None = None
    tag: str | None = None
    time: int | None = None


def parse_as_of(text: str | None) -> AsOf | None:
    """``as_of`` is a version number (``3``), a tag (``prod``) or an ISO-8601 time."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:  # not "³", nor past 64 bits
        return AsOf(version=int(raw))
    if TAG_PATTERN.match(raw):
        return AsOf(tag=raw)
    try:
        return AsOf(time=from_iso(raw))
    except ValueError:
        raise InvalidInput(
            f"as_of {text!r} is not a version number, a tag or an ISO-8601 time",
            details={"field": "as_of"},
        ) from None


def check_splits(splits: Any) -> list[str] | None:
    if splits is None:
        return None
    if isinstance(splits, str):
        splits = [splits]
    if not isinstance(splits, list) or not all(isinstance(s, str) and s for s in splits):
        raise InvalidInput(
            "splits must be a list of non-empty strings", details={"field": "splits"}
        )
    return sorted(set(splits))


DATA_TYPES = ("kv", "llm", "chat")


def check_data_type(data_type: str) -> str:
    """LangSmith's dataset type; Goldloop stores it and treats every type alike."""
    if data_type not in DATA_TYPES:
        raise InvalidInput(
            f"data_type must be one of {', '.join(DATA_TYPES)}, not {data_type!r}",
            details={"field": "data_type"},
        )
    return data_type


def check_metadata_filter(filters: dict[str, Any]) -> dict[str, Any]:
    for key, value in filters.items():
        if not METADATA_KEY_PATTERN.match(key):
            raise InvalidInput(
                f"metadata filter key {key!r} is not valid (letters, digits, _ . -)",
                details={"field": "metadata"},
            )
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput(
                f"metadata filter on {key!r} must compare with a string, number or boolean",
                details={"field": "metadata"},
            )
    return filters


# --- JSON Schema ---------------------------------------------------------------------------


def compile_schema(schema: dict[str, Any] | None, field: str) -> Validator | None:
    """A validator for the schema (its ``$schema`` picks the draft; default 2020-12)."""
    if schema is None:
        return None
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(
            f"{field} is not a valid JSON Schema: {exc.message}",
            details={"field": field, "path": json_path(exc.absolute_path)},
        ) from None
    validator: Validator = cls(schema)
    return validator


def json_path(parts: Sequence[Any] | Iterator[Any]) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


@dataclass(frozen=True, slots=True)
class Violation:
    index: int
    example_id: str | None
    field: str
    path: str
    problem: str

    def describe(self) -> str:
        who = f"example {self.index}" + (f" (id {self.example_id})" if self.example_id else "")
        return f"{who}: {self.field} at {self.path}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ExampleSchemas:
    inputs: Validator | None
    outputs: Validator | None

    def violations(
        self, index: int, example_id: str | None, inputs: Any, outputs: Any
    ) -> list[Violation]:
        found = []
        for field, validator, doc in (
            ("inputs", self.inputs, inputs),
            ("outputs", self.outputs, outputs),
        ):
            if validator is None or (field == "outputs" and doc is None):
                continue  # an example without reference outputs is not checked against them
            errors = sorted(
                validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))
            )
            found += [
                Violation(index, example_id, field, json_path(e.absolute_path), e.message)
                for e in errors
            ]
        return found


def raise_violations(violations: list[Violation]) -> None:
    if not violations:
        return
    first = violations[0]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    raise InvalidInput(
        f"schema violation: {first.describe()}{more}",
        details=[
            {
                "index": v.index,
                "example_id": v.example_id,
                "field": v.field,
                "path": v.path,
                "problem": v.problem,
            }
            for v in violations[:MAX_REPORTED]
        ],
    )
