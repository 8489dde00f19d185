"""The run filter language: a hand-written tokenizer and recursive-descent parser into an AST.

One grammar, used by the run list, statistics, rules, alerts and the dashboard's filter bar.
``docs/filters.md`` is the user documentation; the summary::

    filter     := or_expr EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" or_expr ")" | predicate
    predicate  := field [op value | "in" "(" value ("," value)* ")"]
    field      := NAME ("." (NAME | STRING | INTEGER))*
    op         := "=" | "==" | "!=" | ">" | ">=" | "<" | "<=" | "~" | "!~"
    value      := STRING | NUMBER [UNIT] ["ago"] | "true" | "false" | "null"

A field with no operator is a truth test (``root``, ``error``, ``metadata.customer`` = the key
exists, ``model`` = is set). Field names and keywords are case-insensitive; metadata keys are not.

This module is pure: it knows the fields and which operators and values each accepts, so every
mistake is reported here with its character position. Compiling the AST to SQL is the store's
job (``goldloop.store.run_filters``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Literal

from goldloop.domain.clock import from_iso
from goldloop.domain.errors import InvalidInput

MAX_FILTER_CHARS = 4000
MAX_DEPTH = 50
MAX_IN_VALUES = 500

RUN_KINDS = frozenset(
    {
        *("llm", "chain", "tool", "retriever", "embedding", "agent", "prompt", "parser"),
        *("reranker", "guardrail", "evaluator", "unknown"),
    }
)
RUN_STATUSES = frozenset({"success", "error", "pending"})

# ---------------------------------------------------------------------------------------------
# Field catalogue
# ---------------------------------------------------------------------------------------------

FieldType = Literal["string", "enum", "int", "number", "duration", "time", "bool", "tags", "text"]

COMPARE_OPS = ("=", "!=", ">", ">=", "<", "<=")
EQUALITY_OPS = ("=", "!=")
TEXT_OPS = ("~", "!~")
ALL_OPS = (*COMPARE_OPS, *TEXT_OPS, "in")

_OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
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
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str  # canonical name
    type: str
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

# ---------------------------------------------------------------------------------------------
# AST
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Str:
    value: str


@dataclass(frozen=True, slots=True)
class Num:
    value: int | float


@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time, in microseconds (``2s``, ``150ms``)."""

    us: int


@dataclass(frozen=True, slots=True)
class Ago:
    """A moment relative to when the filter is evaluated (``1h ago``), microseconds back."""

    us: int


@dataclass(frozen=True, slots=True)
class Time:
    """An absolute moment, microseconds since the epoch (from an ISO string or an integer)."""

    us: int


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool


@dataclass(frozen=True, slots=True)
class Null:
    pass


Value = Str | Num | Duration | Ago | Time | Bool | Null


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # canonical field name, e.g. "latency" or "metadata"
    path: tuple[str, ...] = ()  # for metadata: the keys below it


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: str
    value: Value
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class In:
    field: Field
    values: tuple[Value, ...]
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Truthy:
    """A bare field: true / set / exists (see ``docs/filters.md``)."""

    field: Field
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Compare | In | Truthy | Not | And | Or

# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # name, string, number, op, ( ) , . or eof
    text: str
    pos: int


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:[A-Za-z]+)?")
_OPS = ("==", "!=", ">=", "<=", "!~", "=", ">", "<", "~")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def fail(pos: int, expected: str, text: str, found: str | None = None) -> InvalidInput:
    """The one error this module raises: where, what was expected, what was found."""
    if found is None:
        found = repr(text[pos : pos + 12]) if pos < len(text) else "the end of the filter"
    return InvalidInput(
        f"invalid filter at position {pos}: expected {expected}, found {found}",
        details={"field": "filter", "position": pos, "expected": expected, "filter": text},
    )


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),.":
            if ch == "." and i + 1 < n and text[i + 1].isdigit() and not _after_path(tokens):
                i = _number(text, i, tokens)
            else:
                tokens.append(Token(ch, ch, i))
                i += 1
        elif ch in "\"'":
            i = _string(text, i, tokens)
        elif ch.isdigit() or (ch == "-" and i + 1 < n and (text[i + 1].isdigit())):
            i = _number(text, i, tokens)
        elif ch.isalpha() or ch == "_":
            m = _NAME.match(text, i)
            assert m is not None
            tokens.append(Token("name", m.group(), i))
            i = m.end()
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                raise fail(i, "a field, value, operator or parenthesis", text)
            tokens.append(Token("op", op, i))
            i += len(op)
    tokens.append(Token("eof", "", n))
    return tokens


def _after_path(tokens: list[Token]) -> bool:
    return bool(tokens) and tokens[-1].kind == "name"


def _number(text: str, i: int, tokens: list[Token]) -> int:
    m = _NUMBER.match(text, i)
    if m is None:
        raise fail(i, "a number", text)
    tokens.append(Token("number", m.group(), i))
    return m.end()


def _string(text: str, start: int, tokens: list[Token]) -> int:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            tokens.append(Token("string", "".join(out), start))
            return i + 1
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in _ESCAPES:
                raise fail(i, "an escape: \\\\, \\\", \\', \\n, \\t or \\r", text)
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    raise fail(len(text), f"a closing {quote} for the string opened at position {start}", text)


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null", "ago"})


def parse(text: str) -> Node | None:
    """Parse a filter; ``None`` for an empty (or all-blank) one. Raises ``InvalidInput``."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidInput(
            f"filter is longer than {MAX_FILTER_CHARS} characters",
            details={"field": "filter", "position": MAX_FILTER_CHARS},
        )
    if not text.strip():
        return None
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers ------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_keyword(self, word: str) -> bool:
        return self.tok.kind == "name" and self.tok.text.lower() == word

    def error(self, expected: str, tok: Token | None = None) -> InvalidInput:
        tok = tok or self.tok
        found = "the end of the filter" if tok.kind == "eof" else repr(self._raw(tok))
        return fail(tok.pos, expected, self.text, found)

    def _raw(self, tok: Token) -> str:
        if tok.kind == "string":
            end = tok.pos + 1
            while end < len(self.text) and self.text[end] != self.text[tok.pos]:
                end += 2 if self.text[end] == "\\" else 1
            return self.text[tok.pos : end + 1]
        return tok.text

    # -- grammar ------------------------------------------------------------------------------
    def parse(self) -> Node:
        node = self.or_expr()
        if self.tok.kind != "eof":
            if self.tok.kind == ")":
                raise self.error("'and', 'or' or the end of the filter (unbalanced ')')")
            raise self.error("'and', 'or' or the end of the filter")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_keyword("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while self.is_keyword("and"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"at most {MAX_DEPTH} nested 'not' or parentheses")
        try:
            if self.is_keyword("not"):
                self.advance()
                return Not(self.unary())
            if self.tok.kind == "(":
                open_tok = self.advance()
                node = self.or_expr()
                if self.tok.kind != ")":
                    raise self.error(f"')' to close the '(' at position {open_tok.pos}")
                self.advance()
                return node
            return self.predicate()
        finally:
            self.depth -= 1

    def predicate(self) -> Node:
        start = self.tok
        fld, spec = self.field()
        allowed = _OPS_BY_TYPE[spec.type]
        if spec.type == "metadata" and not fld.path:
            raise self.error("'.' and a metadata key, e.g. metadata.customer")
        if self.tok.kind == "op":
            op_tok = self.advance()
            op = "=" if op_tok.text == "==" else op_tok.text
            if op not in allowed:
                raise self.error(_ops_text(fld, allowed), op_tok)
            value = self.value(fld, spec, op)
            return Compare(fld, op, value, start.pos)
        if self.is_keyword("in"):
            in_tok = self.advance()
            if "in" not in allowed:
                raise self.error(_ops_text(fld, allowed), in_tok)
            return In(fld, self.value_list(fld, spec), start.pos)
        if spec.type == "enum" or self.tok.kind in ("string", "number"):
            raise self.error(_ops_text(fld, allowed))
        return Truthy(fld, start.pos)

    def field(self) -> tuple[Field, FieldSpec]:
        tok = self.tok
        if tok.kind != "name" or tok.text.lower() in _KEYWORDS:
            raise self.error("a field name (e.g. kind, name, latency, tag, metadata.KEY) or '('")
        self.advance()
        lowered = tok.text.lower()
        spec = FIELDS.get(ALIASES.get(lowered, lowered))
        if spec is None:
            raise self.error(f"a field name; known fields: {', '.join(sorted(FIELDS))}", tok)
        path: list[str] = []
        while self.tok.kind == ".":
            dot = self.advance()
            if spec.type != "metadata":
                raise self.error(f"an operator after {spec.name} (only metadata has keys)", dot)
            part = self.tok
            if part.kind in ("name", "string") or (part.kind == "number" and part.text.isdigit()):
                if not part.text or '"' in part.text:
                    raise self.error("a non-empty metadata key without '\"'", part)
                path.append(part.text)
                self.advance()
            else:
                raise self.error("a metadata key (a name or a quoted string)", part)
        return Field(spec.name, tuple(path)), spec

    def value_list(self, fld: Field, spec: FieldSpec) -> tuple[Value, ...]:
        if self.tok.kind != "(":
            raise self.error("'(' to start the list after 'in'")
        open_tok = self.advance()
        values = [self.value(fld, spec, "in")]
        while self.tok.kind == ",":
            self.advance()
            values.append(self.value(fld, spec, "in"))
            if len(values) > MAX_IN_VALUES:
                raise self.error(f"at most {MAX_IN_VALUES} values in a list")
        if self.tok.kind != ")":
            raise self.error(f"',' or ')' to close the list opened at position {open_tok.pos}")
        self.advance()
        return tuple(values)

    def value(self, fld: Field, spec: FieldSpec, op: str) -> Value:
        tok = self.tok
        raw = self.literal()
        return _coerce(self, tok, raw, fld, spec, op)

    def literal(self) -> Value:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Str(tok.text)
        if tok.kind == "number":
            self.advance()
            return self.number(tok)
        if tok.kind == "name" and tok.text.lower() in ("true", "false", "null"):
            self.advance()
            word = tok.text.lower()
            return Null() if word == "null" else Bool(word == "true")
        raise self.error("a value: a quoted string, a number, a duration (2s), true, false, null")

    def number(self, tok: Token) -> Value:
        m = re.fullmatch(r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z]*)", tok.text)
        assert m is not None
        digits, unit = m.group(1), m.group(2)
        num: int | float = int(digits) if re.fullmatch(r"-?\d+", digits) else float(digits)
        if not unit:
            if self.is_keyword("ago"):
                raise self.error("a unit before 'ago', e.g. 1h ago")
            return Num(num)
        factor = DURATION_UNITS.get(unit.lower())
        if factor is None:
            units = ", ".join(DURATION_UNITS)
            raise fail(tok.pos + len(digits), f"a duration unit ({units})", self.text, repr(unit))
        us = round(num * factor)
        if self.is_keyword("ago"):
            self.advance()
            return Ago(us)
        return Duration(us)


def _ops_text(fld: Field, allowed: tuple[str, ...]) -> str:
    return f"an operator after {_field_text(fld)}: one of {' '.join(allowed)}"


def _field_text(fld: Field) -> str:
    return ".".join((fld.name, *fld.path))


def _coerce(p: _Parser, tok: Token, raw: Value, fld: Field, spec: FieldSpec, op: str) -> Value:
    """Check that a literal fits the field and operator; convert it where the type says how."""
    kind = spec.type
    name = _field_text(fld)
    if isinstance(raw, Null):
        if op in EQUALITY_OPS and kind not in ("enum", "bool", "tags", "text", "error"):
            return raw
        raise p.error(f"a non-null value for {name} {op} (use 'not {name}' to test for unset)", tok)
    if op in TEXT_OPS:
        if not isinstance(raw, Str):
            raise p.error(f"a quoted string to search for after {name} {op}", tok)
        return raw
    if kind in ("string", "tags"):
        if not isinstance(raw, Str):
            raise p.error(f"a quoted string for {name}", tok)
        return raw
    if kind == "enum":
        if not isinstance(raw, Str) or raw.value.lower() not in spec.enum:
            raise p.error(f"one of {', '.join(sorted(spec.enum))} for {name}", tok)
        return Str(raw.value.lower())
    if kind in ("int", "number"):
        if not isinstance(raw, Num):
            raise p.error(f"a number for {name}", tok)
        return raw
    if kind == "duration":
        if not isinstance(raw, Duration):
            raise p.error(f"a duration with a unit for {name}, e.g. 2s, 150ms, 1.5m", tok)
        return raw
    if kind == "time":
        if isinstance(raw, Ago):
            return raw
        if isinstance(raw, Num) and isinstance(raw.value, int):
            return Time(raw.value)
        if isinstance(raw, Str):
            try:
                return Time(from_iso(raw.value))
            except ValueError:
                pass
        raise p.error(
            f'a time for {name}: an ISO string ("2026-11-26T10:00:00Z"), '
            "integer microseconds, or a duration ago (1h ago)",
            tok,
        )
    if kind == "bool":
        if not isinstance(raw, Bool):
            raise p.error(f"true or false for {name}", tok)
        return raw
    # metadata: strings, numbers and booleans compare as themselves
    if isinstance(raw, Duration | Ago):
        raise p.error(f"a string, number, true or false for {name} (no units)", tok)
    if op in (">", ">=", "<", "<=") and not isinstance(raw, Num):
        raise p.error(f"a number after {name} {op}", tok)
    return raw


# ---------------------------------------------------------------------------------------------
# Back to text (canonical form; ``parse(to_text(node)) == node``)
# ---------------------------------------------------------------------------------------------


def to_text(node: Node) -> str:
    if isinstance(node, And | Or):
        word = " and " if isinstance(node, And) else " or "
        return "(" + word.join(to_text(i) for i in node.items) + ")"
    if isinstance(node, Not):
        return "not " + to_text(node.item)
    if isinstance(node, Truthy):
        return _path_text(node.field)
    if isinstance(node, In):
        return f"{_path_text(node.field)} in ({', '.join(value_text(v) for v in node.values)})"
    return f"{_path_text(node.field)} {node.op} {value_text(node.value)}"


def _path_text(fld: Field) -> str:
    return ".".join([fld.name, *(quote(k) for k in fld.path)])


def quote(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    body = body.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{body}"'


def value_text(v: Value) -> str:
    if isinstance(v, Str):
        return quote(v.value)
    if isinstance(v, Num):
        return repr(v.value)
    if isinstance(v, Duration):
        return f"{v.us}us"
    if isinstance(v, Ago):
        return f"{v.us}us ago"
    if isinstance(v, Time):
        return str(v.us)
    if isinstance(v, Bool):
        return "true" if v.value else "false"
    return "null"


def parse_duration(text: str) -> int:
    """``"1h"``, ``"15m"``, ``"500ms"`` → microseconds; raises ``ValueError`` naming the units."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", text)
    factor = DURATION_UNITS.get(m.group(2).lower()) if m else None
    if m is None or factor is None:
        units = ", ".join(DURATION_UNITS)
        raise ValueError(f"expected a duration such as 1h or 15m (units: {units}), not {text!r}")
    return round(float(m.group(1)) * factor)
