"""A small JSON Schema validator (the structural core of draft 2020-12 / draft 7), pure Python.

Supported: boolean schemas, ``type`` (one or a list; ``integer`` excludes booleans and accepts
integral floats), ``enum``, ``const``, ``properties``, ``required``, ``additionalProperties``,
``patternProperties``, ``propertyNames``, ``minProperties``/``maxProperties``, ``items``
(a schema, or a list = draft-7 tuple form), ``prefixItems``, ``additionalItems``,
``contains``, ``minItems``/``maxItems``, ``uniqueItems``, ``minimum``/``maximum``,
``exclusiveMinimum``/``exclusiveMaximum`` (number form), ``multipleOf``,
``minLength``/``maxLength`` (code points), ``pattern`` (Python ``re.search``), ``allOf``,
``anyOf``, ``oneOf``, ``not``, ``if``/``then``/``else``, and local ``$ref``
(``#``, ``#/$defs/...``, ``#/definitions/...``). Other keywords (``format``, ``title``...) are
annotations and are ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import orjson

__all__ = ["SchemaError", "check_schema", "schema_errors"]

_DATA_KEYWORDS = {"enum", "const", "default", "examples"}
_TYPES = {"null", "boolean", "object", "array", "number", "integer", "string"}


class SchemaError(ValueError):
    """The schema itself is not usable."""


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise SchemaError(f"invalid pattern {pattern!r}: {exc}") from None


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "object":
        return isinstance(value, Mapping)
    if name == "array":
        return isinstance(value, list | tuple)
    if name == "string":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if name == "number":
        return isinstance(value, int | float)
    # integer
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0, but true != 1
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _pointer(path: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


class _Validator:
    def __init__(self, root: Any) -> None:
        self.root = root

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise SchemaError(f"only local $ref is supported, got {ref!r}")
        node = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} does not resolve")
        return node

    def errors(
        self, value: Any, schema: Any, path: tuple[str | int, ...], depth: int = 0
    ) -> Iterator[str]:
        if depth > 100:
            raise SchemaError("schema recursion too deep (a $ref cycle?)")
        if schema is True:
            return
        if schema is False:
            yield f"{_pointer(path)}: no value is allowed here"
            return
        if not isinstance(schema, Mapping):
            raise SchemaError(f"a schema must be an object or a boolean, got {schema!r}")
        if "$ref" in schema:
            yield from self.errors(value, self.resolve(str(schema["$ref"])), path, depth + 1)
        yield from self._generic(value, schema, path, depth)
        if isinstance(value, Mapping):
            yield from self._object(value, schema, path, depth)
        elif isinstance(value, list | tuple):
            yield from self._array(value, schema, path, depth)
        elif isinstance(value, str):
            yield from self._string(value, schema, path)
        elif _is_type(value, "number"):
            yield from self._number(value, schema, path)

    def _generic(
        self, value: Any, schema: Mapping[str, Any], path: tuple[str | int, ...], depth: int
    ) -> Iterator[str]:
        at = _pointer(path)
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            unknown = [t for t in types if t not in _TYPES]
            if unknown:
                raise SchemaError(f"unknown type {unknown[0]!r}")
            if not any(_is_type(value, t) for t in types):
                yield f"{at}: expected {' or '.join(types)}, got {_type_name(value)}"
        if "enum" in schema and not any(_equal(value, e) for e in schema["enum"]):
            yield f"{at}: {_short(value)} is not one of {_short(schema['enum'])}"
        if "const" in schema and not _equal(value, schema["const"]):
            yield f"{at}: expected {_short(schema['const'])}"
        for sub in schema.get("allOf", ()):
            yield from self.errors(value, sub, path, depth + 1)
        if "anyOf" in schema and not any(
            self.valid(value, s, path, depth) for s in schema["anyOf"]
        ):
            yield f"{at}: matches none of anyOf"
        if "oneOf" in schema:
            hits = sum(1 for s in schema["oneOf"] if self.valid(value, s, path, depth))
            if hits != 1:
                yield f"{at}: matches {hits} of oneOf, expected exactly 1"
        if "not" in schema and self.valid(value, schema["not"], path, depth):
            yield f"{at}: must not match the 'not' schema"
        if "if" in schema:
            branch = "then" if self.valid(value, schema["if"], path, depth) else "else"
            if branch in schema:
                yield from self.errors(value, schema[branch], path, depth + 1)

    def valid(self, value: Any, schema: Any, path: tuple[str | int, ...], depth: int) -> bool:
        return next(iter(self.errors(value, schema, path, depth + 1)), None) is None

    def _object(
        self,
        value: Mapping[str, Any],
        schema: Mapping[str, Any],
        path: tuple[str | int, ...],
        depth: int,
    ) -> Iterator[str]:
        at = _pointer(path)
        for name in schema.get("required", ()):
            if name not in value:
                yield f"{at}: missing required property {name!r}"
        props: Mapping[str, Any] = schema.get("properties", {})
        patterns: Mapping[str, Any] = schema.get("patternProperties", {})
        for name, item in value.items():
            sub_path = (*path, str(name))
            matched = False
            if name in props:
                matched = True
                yield from self.errors(item, props[name], sub_path, depth + 1)
            for pattern, sub in patterns.items():
                if _regex(pattern).search(str(name)):
                    matched = True
                    yield from self.errors(item, sub, sub_path, depth + 1)
            if not matched and "additionalProperties" in schema:
                extra = schema["additionalProperties"]
                if extra is False:
                    yield f"{at}: unexpected property {name!r}"
                else:
                    yield from self.errors(item, extra, sub_path, depth + 1)
            if "propertyNames" in schema:
                yield from self.errors(name, schema["propertyNames"], sub_path, depth + 1)
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            yield f"{at}: fewer than {schema['minProperties']} properties"
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            yield f"{at}: more than {schema['maxProperties']} properties"

    def _array(
        self,
        value: list[Any] | tuple[Any, ...],
        schema: Mapping[str, Any],
        path: tuple[str | int, ...],
        depth: int,
    ) -> Iterator[str]:
        at = _pointer(path)
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(items, list):  # draft 7 tuple form
            prefix, items = items, schema.get("additionalItems")
        prefix = prefix or []
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else items
            if sub is not None:
                if sub is False and i >= len(prefix):
                    yield f"{at}: no items allowed beyond position {len(prefix)}"
                    break
                yield from self.errors(item, sub, (*path, i), depth + 1)
        if "contains" in schema and not any(
            self.valid(v, schema["contains"], (*path, i), depth) for i, v in enumerate(value)
        ):
            yield f"{at}: no item matches 'contains'"
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield f"{at}: fewer than {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield f"{at}: more than {schema['maxItems']} items"
        if schema.get("uniqueItems"):
            seen: list[Any] = []
            for item in value:
                if any(_equal(item, s) for s in seen):
                    yield f"{at}: items are not unique"
                    break
                seen.append(item)

    def _string(
        self, value: str, schema: Mapping[str, Any], path: tuple[str | int, ...]
    ) -> Iterator[str]:
        at = _pointer(path)
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield f"{at}: shorter than {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{at}: longer than {schema['maxLength']} characters"
        if "pattern" in schema and not _regex(str(schema["pattern"])).search(value):
            yield f"{at}: does not match pattern {schema['pattern']!r}"

    def _number(
        self, value: float, schema: Mapping[str, Any], path: tuple[str | int, ...]
    ) -> Iterator[str]:
        at = _pointer(path)
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{at}: {value} < minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{at}: {value} > maximum {schema['maximum']}"
        ex_min = schema.get("exclusiveMinimum")
        if isinstance(ex_min, int | float) and not isinstance(ex_min, bool) and value <= ex_min:
            yield f"{at}: {value} <= exclusiveMinimum {ex_min}"
        ex_max = schema.get("exclusiveMaximum")
        if isinstance(ex_max, int | float) and not isinstance(ex_max, bool) and value >= ex_max:
            yield f"{at}: {value} >= exclusiveMaximum {ex_max}"
        if "multipleOf" in schema:
            step = schema["multipleOf"]
            quotient = value / step
            if not math.isclose(quotient, round(quotient), rel_tol=1e-9, abs_tol=1e-9):
                yield f"{at}: {value} is not a multiple of {step}"


def _short(value: Any) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 80 else text[:79] + "…"


def check_schema(schema: Any) -> None:
    """Raise :class:`SchemaError` when ``schema`` cannot be used (not an object/boolean, an
    unknown type, a bad pattern or an unresolvable ``$ref``)."""
    if not isinstance(schema, Mapping | bool):
        raise SchemaError("a schema must be a JSON object or a boolean")
    validator = _Validator(schema)

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            types = node.get("type")
            for t in types if isinstance(types, list) else [types] if types else []:
                if t not in _TYPES:
                    raise SchemaError(f"unknown type {t!r}")
            if "pattern" in node and isinstance(node["pattern"], str):
                _regex(node["pattern"])
            for pattern in node.get("patternProperties", {}) or {}:
                _regex(pattern)
            if isinstance(node.get("$ref"), str):
                validator.resolve(node["$ref"])
            for name, child in node.items():
                if name not in _DATA_KEYWORDS:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema)


def schema_errors(value: Any, schema: Any, *, limit: int = 20) -> list[str]:
    """Every way ``value`` breaks ``schema`` (at most ``limit``), each as ``$.path: message``;
    an empty list means valid."""
    out: list[str] = []
    for error in _Validator(schema).errors(value, schema, ()):
        out.append(error)
        if len(out) >= limit:
            break
    return out
