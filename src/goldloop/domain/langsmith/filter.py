"""LangSmith's function-call filter DSL -> Goldloop's run filter language (pure).

``and(eq(run_type, "llm"), gt(latency, 2))`` becomes ``(kind = "llm" and latency > 2s)``; the
result is parsed and compiled (parameterized) by Goldloop's own filter parser, so nothing here
ever touches SQL. Supported: ``eq neq gt gte lt lte has exists search and or not`` on run fields;
anything else is a 400 that names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from goldloop.domain.errors import InvalidInput
from goldloop.domain.filters import quote

MAX_CHARS = 4000
MAX_DEPTH = 50

# LangSmith field -> Goldloop field.
FIELDS = {
    "id": "id",
    "name": "name",
    "run_type": "kind",
    "status": "status",
    "trace_id": "trace_id",
    "parent_run_id": "parent_id",
    "start_time": "start_time",
    "end_time": "end_time",
    "latency": "latency",
    "total_tokens": "tokens",
    "prompt_tokens": "input_tokens",
    "completion_tokens": "output_tokens",
    "total_cost": "cost",
    "tags": "tags",
    "is_root": "root",
    "thread_id": "session_id",
    "user_id": "user_id",
    "model": "model",
}
COMPARISONS = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"""
    r"""|(?P<name>[A-Za-z_][\w.]*)|(?P<punct>[(),]))"""
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True)
class Call:
    fn: str
    args: list[Any]  # Call | Name | str | int | float | None | bool


@dataclass(frozen=True)
class Name:
    text: str


def _fail(message: str) -> InvalidInput:
    return InvalidInput(f"filter: {message}", details={"field": "filter"})


def _unquote(token: str) -> str:
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            i += 1
            out.append(_ESCAPES.get(body[i], body[i]))
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, str]]:
    return _scan(text)[0]


def _scan(text: str) -> tuple[list[tuple[str, str]], list[int]]:
    """The tokens, and where each starts (a 0-based character position)."""
    tokens: list[tuple[str, str]] = []
    starts: list[int] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _fail(f"unexpected character at position {pos}: {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        starts.append(match.start(kind))
        pos = match.end()
    return tokens, starts


def parse(text: str) -> Call | None:
    if len(text) > MAX_CHARS:
        raise _fail(f"longer than {MAX_CHARS} characters")
    tokens, starts = _scan(text)
    if not tokens:
        return None
    position = 0

    def at(index: int) -> str:
        return f"at position {starts[index] if index < len(starts) else len(text)}"

    def value(depth: int) -> Any:
        nonlocal position
        if depth > MAX_DEPTH:
            raise _fail(f"nested deeper than {MAX_DEPTH}")
        if position >= len(tokens):
            raise _fail(f"ends too early {at(position)}")
        kind, raw = tokens[position]
        position += 1
        if kind == "str":
            return _unquote(raw)
        if kind == "num":
            number = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if number != number or abs(number) > 2**63 - 1:  # NaN, inf, or wider than 64 bits
                raise _fail(f"number {raw[:30]!r} is out of range")
            return number
        if kind != "name":
            raise _fail(f"unexpected {raw!r} {at(position - 1)}")
        if position < len(tokens) and tokens[position] == ("punct", "("):
            position += 1
            args: list[Any] = []
            while True:
                if position < len(tokens) and tokens[position] == ("punct", ")"):
                    position += 1
                    return Call(raw.lower(), args)
                args.append(value(depth + 1))
                if position < len(tokens) and tokens[position] == ("punct", ","):
                    position += 1
                elif not (position < len(tokens) and tokens[position] == ("punct", ")")):
                    raise _fail(
                        f"expected ',' or ')' after an argument of {raw}(...) {at(position)}"
                    )
        lowered = raw.lower()
        if lowered in ("null", "none"):
            return None
        if lowered in ("true", "false"):
            return lowered == "true"
        return Name(raw)

    tree = value(0)
    if position != len(tokens):
        raise _fail(f"unexpected {tokens[position][1]!r} after the expression {at(position)}")
    if not isinstance(tree, Call):
        raise _fail(f'expected a function call such as eq(name, "x") {at(0)}')
    return tree


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    raise _fail("a value must be a string, a number, true, false or null")


def _field(arg: Any, fn: str) -> str:
    if not isinstance(arg, Name):
        raise _fail(f"{fn}(...) needs a field name first")
    return arg.text.lower()


def _metadata_pair(args: list[Any]) -> str | None:
    """``and(eq(metadata_key, "k"), eq(metadata_value, "v"))`` -> ``metadata."k" = "v"``."""
    if len(args) != 2 or not all(isinstance(a, Call) and a.fn == "eq" for a in args):
        return None
    named = {}
    for call in args:
        if len(call.args) != 2 or not isinstance(call.args[0], Name):
            return None
        named[call.args[0].text.lower()] = call.args[1]
    if set(named) != {"metadata_key", "metadata_value"} or not isinstance(
        named["metadata_key"], str
    ):
        return None
    return f"metadata.{quote(named['metadata_key'])} = {_literal(named['metadata_value'])}"


def _compare(fn: str, args: list[Any]) -> str:
    if len(args) != 2:
        raise _fail(f"{fn}(...) takes a field and a value")
    name, value = _field(args[0], fn), args[1]
    op = COMPARISONS[fn]
    if name == "error":
        if fn not in ("eq", "neq") or not (value is None or isinstance(value, bool)):
            raise _fail("error can only be compared with null, true or false")
        has_error = fn == "neq" if value is None else value == (fn == "eq")
        return 'status = "error"' if has_error else 'status != "error"'
    if name not in FIELDS:
        if name.startswith("feedback") or name in ("session_id", "reference_example_id"):
            raise _fail(f"the field {name!r} is not supported by this server")
        raise _fail(f"unknown field {name!r}")
    ours = FIELDS[name]
    if ours == "latency":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail("latency is compared with a number of seconds")
        return f"latency {op} {value!r}s"
    if ours == "kind" and isinstance(value, str):
        value = value.lower()
    if value is None:
        if fn not in ("eq", "neq"):
            raise _fail(f"{fn}(...) cannot compare with null")
        return f"not {ours}" if fn == "eq" else ours
    return f"{ours} {op} {_literal(value)}"


def translate(node: Any) -> str:
    if not isinstance(node, Call):
        raise _fail("expected a function call")
    fn, args = node.fn, node.args
    if fn in ("and", "or"):
        if fn == "and" and (pair := _metadata_pair(args)) is not None:
            return pair
        if not args:
            raise _fail(f"{fn}() needs at least one argument")
        return "(" + f" {fn} ".join(translate(a) for a in args) + ")"
    if fn == "not":
        if len(args) != 1:
            raise _fail("not(...) takes one expression")
        return f"not ({translate(args[0])})"
    if fn in COMPARISONS:
        return _compare(fn, args)
    if fn == "has":
        if len(args) != 2 or _field(args[0], fn) != "tags" or not isinstance(args[1], str):
            raise _fail('has(...) is supported on tags: has(tags, "prod")')
        return f"tags = {quote(args[1])}"
    if fn == "exists":
        if len(args) != 2 or _field(args[0], fn) != "metadata" or not isinstance(args[1], str):
            raise _fail('exists(...) is supported on metadata: exists(metadata, "key")')
        return f"metadata.{quote(args[1])}"
    if fn == "search":
        if len(args) != 1 or not isinstance(args[0], str):
            raise _fail('search(...) takes one string: search("refund")')
        return f"text ~ {quote(args[0])}"
    raise _fail(f"the function {fn!r} is not supported")


def to_goldloop(text: str | None) -> str | None:
    """A LangSmith filter string as a Goldloop filter string (None when empty)."""
    tree = parse(text or "")
    return None if tree is None else translate(tree)
