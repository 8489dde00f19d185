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

import math
import re
from dataclasses import dataclass

from goldloop.domain.clock import from_iso
from goldloop.domain.errors import InvalidInput
from goldloop.domain.filter_ast import (
    Ago,
    And,
    Bool,
    Compare,
    Duration,
    Field,
    In,
    Node,
    Not,
    Null,
    Num,
    Or,
    Str,
    Time,
    Truthy,
    Value,
    quote,
    to_text,
    value_text,
)
from goldloop.domain.filter_fields import (
    ALIASES,
    ALL_OPS,
    COMPARE_OPS,
    DURATION_UNITS,
    EQUALITY_OPS,
    FEEDBACK_ATTRS,
    FEEDBACK_SOURCES,
    FIELDS,
    MAX_DEPTH,
    MAX_FILTER_CHARS,
    MAX_IN_VALUES,
    OPS_BY_TYPE,
    RUN_KINDS,
    RUN_STATUSES,
    TEXT_OPS,
    FieldSpec,
    parse_duration,
)

__all__ = [
    "ALL_OPS",
    "COMPARE_OPS",
    "EQUALITY_OPS",
    "FEEDBACK_SOURCES",
    "FIELDS",
    "RUN_KINDS",
    "RUN_STATUSES",
    "TEXT_OPS",
    "Ago",
    "And",
    "Bool",
    "Compare",
    "Duration",
    "Field",
    "In",
    "Node",
    "Not",
    "Null",
    "Num",
    "Or",
    "Str",
    "Time",
    "Truthy",
    "Value",
    "parse",
    "parse_duration",
    "quote",
    "to_text",
    "tokenize",
    "value_text",
]

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
            if m is None:  # a letter outside ASCII: names are ASCII
                raise fail(i, "a field, value, operator or parenthesis", text)
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

_LARGEST = 2**63 - 1  # a float of 2**63 compares as its nearest float, so it passes too
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
        allowed = OPS_BY_TYPE[spec.type]
        if spec.type == "metadata" and not fld.path:
            raise self.error("'.' and a metadata key, e.g. metadata.customer")
        if spec.type == "fb_any" and (self.tok.kind == "op" or self.is_keyword("in")):
            raise self.error("'.' and a feedback key, e.g. feedback.correctness < 0.5")
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
            if spec.type not in ("metadata", "feedback"):
                raise self.error(
                    f"an operator after {spec.name} (only metadata and feedback have keys)", dot
                )
            part = self.tok
            if part.kind in ("name", "string") or (part.kind == "number" and part.text.isdigit()):
                if not part.text or '"' in part.text:
                    raise self.error(f"a non-empty {spec.name} key without '\"'", part)
                if spec.type == "feedback" and len(path) == 1:
                    if part.text.lower() not in FEEDBACK_ATTRS:
                        attrs = ", ".join(FEEDBACK_ATTRS)
                        raise self.error(
                            f"one of {attrs} after feedback.KEY (quote a key that has dots: "
                            'feedback."a.b")',
                            part,
                        )
                    path.append(part.text.lower())
                elif spec.type == "feedback" and len(path) == 2:
                    raise self.error("an operator after feedback.KEY.ATTRIBUTE", dot)
                else:
                    path.append(part.text)
                self.advance()
            else:
                raise self.error(f"a {spec.name} key (a name or a quoted string)", part)
        if spec.type == "feedback":
            fb_type = (
                FEEDBACK_ATTRS[path[1]] if len(path) == 2 else "fb_score" if path else "fb_any"
            )
            spec = FieldSpec(
                spec.name, fb_type, FEEDBACK_SOURCES if fb_type == "fb_source" else spec.enum
            )
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
        factor = DURATION_UNITS.get(unit.lower(), 1)
        scaled = num * factor
        if isinstance(scaled, float):  # a duration is rounded to integer microseconds
            wrong = not math.isfinite(scaled) or (bool(unit) and abs(scaled) > _LARGEST)
        else:  # an integer is bound as a 64-bit integer
            wrong = abs(scaled) > _LARGEST
        if wrong:
            # the databases compare 64-bit numbers: a larger literal is refused, not overflowed
            raise fail(tok.pos, "a number between -9.2e18 and 9.2e18", self.text, repr(tok.text))
        if not unit:
            if self.is_keyword("ago"):
                raise self.error("a unit before 'ago', e.g. 1h ago")
            return Num(num)
        if unit.lower() not in DURATION_UNITS:
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
        no_null = ("enum", "bool", "tags", "text", "error")
        if op in EQUALITY_OPS and kind not in no_null and not kind.startswith("fb_"):
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
    if kind == "fb_score":
        if isinstance(raw, Num) or (isinstance(raw, Bool) and op in (*EQUALITY_OPS, "in")):
            return raw
        raise p.error(f"a number (or true/false with = != in) for {name}", tok)
    if kind in ("enum", "fb_source"):
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
    if kind in ("bool", "fb_flag"):
        if not isinstance(raw, Bool):
            raise p.error(f"true or false for {name}", tok)
        return raw
    # metadata and feedback values: strings, numbers and booleans compare as themselves
    if isinstance(raw, Duration | Ago):
        raise p.error(f"a string, number, true or false for {name} (no units)", tok)
    if op in (">", ">=", "<", "<=") and not isinstance(raw, Num):
        raise p.error(f"a number after {name} {op}", tok)
    return raw


# ---------------------------------------------------------------------------------------------
# Back to text (canonical form; ``parse(to_text(node)) == node``)
# ---------------------------------------------------------------------------------------------
