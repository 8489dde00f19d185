"""LangSmith's example filter (``list_examples(filter=...)``) as a tree the store compiles (pure).

The language is the runs filter's function-call syntax (the same parser, ``filter.parse``) on
an example's metadata:

- ``exists(metadata, "k")``: the metadata has the key ``k`` (even with a null value);
- ``has(metadata, '{"k": "v", "n": 1}')``: every listed key has exactly that value (a string,
  number, boolean or null);
- ``eq(metadata_key, "k")`` with ``eq(metadata_value, "v")`` inside ``and(...)``: as ``has``;
- ``and(...)``, ``or(...)``, ``not(...)`` of those.

The field may be written bare or quoted (``has("metadata", ...)``). Anything else is a 400 that
names what and where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from goldloop.domain.errors import InvalidInput
from goldloop.domain.langsmith.filter import Call, Name, parse

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
MAX_NODES = 200


@dataclass(frozen=True)
class Exists:
    key: str


@dataclass(frozen=True)
class Has:
    pairs: tuple[tuple[str, Any], ...]  # (key, scalar value or None)


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Match, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Match, ...]


@dataclass(frozen=True)
class Not:
    part: Match


Match = Exists | Has | AllOf | AnyOf | Not


def _fail(message: str) -> InvalidInput:
    return InvalidInput(f"filter: {message}", details={"field": "filter"})


def _key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise _fail(f"metadata key {key!r} is not valid (1-100 letters, digits, _ . -)")
    return key


def _scalar(key: str, value: Any) -> Any:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise _fail(f"the value of {key!r} must be a string, number, boolean or null")
    return value


def _field(arg: Any, fn: str) -> str:
    name = arg.text if isinstance(arg, Name) else arg
    if not isinstance(name, str):
        raise _fail(f"{fn}(...) needs a field first")
    if name.lower() != "metadata":
        raise _fail(f"{fn}(...) is supported on metadata only, not {name!r}")
    return "metadata"


def _has(args: list[Any]) -> Has:
    if len(args) != 2 or not isinstance(args[1], str):
        raise _fail('has(...) takes metadata and a JSON object: has(metadata, \'{"k": "v"}\')')
    _field(args[0], "has")
    try:
        wanted = orjson.loads(args[1])
    except orjson.JSONDecodeError as exc:
        raise _fail(f"has(...): the second argument is not valid JSON ({exc})") from None
    if not isinstance(wanted, dict) or not wanted:
        raise _fail("has(...): the second argument must be a non-empty JSON object")
    return Has(tuple((_key(k), _scalar(k, v)) for k, v in wanted.items()))


def _metadata_pair(args: list[Any]) -> Has | None:
    """``and(eq(metadata_key, "k"), eq(metadata_value, "v"))``."""
    named: dict[str, Any] = {}
    for call in args:
        if not (isinstance(call, Call) and call.fn == "eq" and len(call.args) == 2):
            return None
        if not isinstance(call.args[0], Name):
            return None
        named[call.args[0].text.lower()] = call.args[1]
    if len(args) != 2 or set(named) != {"metadata_key", "metadata_value"}:
        return None
    key = _key(named["metadata_key"])
    return Has(((key, _scalar(key, named["metadata_value"])),))


def _build(node: Any, count: list[int]) -> Match:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise _fail(f"more than {MAX_NODES} conditions")
    if not isinstance(node, Call):
        raise _fail('expected a function call such as exists(metadata, "k")')
    fn, args = node.fn, node.args
    if fn in ("and", "or"):
        if fn == "and" and (pair := _metadata_pair(args)) is not None:
            return pair
        if not args:
            raise _fail(f"{fn}() needs at least one argument")
        parts = tuple(_build(a, count) for a in args)
        return AllOf(parts) if fn == "and" else AnyOf(parts)
    if fn == "not":
        if len(args) != 1:
            raise _fail("not(...) takes one expression")
        return Not(_build(args[0], count))
    if fn == "exists":
        if len(args) != 2:
            raise _fail('exists(...) takes metadata and a key: exists(metadata, "k")')
        _field(args[0], "exists")
        return Exists(_key(args[1]))
    if fn == "has":
        return _has(args)
    raise _fail(f"the function {fn!r} is not supported on examples (use exists, has, and, or, not)")


def parse_filter(text: str | None) -> Match | None:
    """The filter as a tree, or None when it is empty."""
    tree = parse(text or "")
    return None if tree is None else _build(tree, [0])
