"""Content attributes stored once: moved into inputs/outputs on ingest, restored on export.

A GenAI span usually carries its content in one attribute (``gen_ai.input.messages``,
``input.value``, ``gen_ai.tool.call.result``, ...) which the mapping parses into the run's
``inputs``/``outputs``. Keeping the attribute as well would store every prompt twice. So when the
value at the run path equals the (parsed) attribute, the attribute is left out of
``extra.otel.attributes`` and ``extra.otel.moved`` records, per attribute, whether it was a JSON
string and in which common spelling (compact, compact with ``", "``/``": "`` separators, or
Python's ``json.dumps`` with or without ``ensure_ascii``); the run path is fixed by
``MOVABLE``. Export puts back exactly the same string. An attribute whose text cannot be
reproduced exactly is simply kept as it is. (On PostgreSQL, JSONB keeps no object key order, so
there a restored string is equal as JSON, like every JSON value stored there.)

Content that is not a whole attribute is stored once too: a long string attribute whose exact text
sits somewhere inside the run's inputs or outputs (each OpenInference
``llm.input_messages.{i}.message.content`` is the text of one part of ``inputs.messages``) is left
out, and ``extra.otel.refs`` records the path to that text (``["inputs", "messages", 0, "parts", 0,
"content"]``). Export reads it back from there; only an exact match is ever referenced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from goldloop.domain.otel.messages import parse_json_value

# attribute -> (run field, key inside it or None for the whole field)
MOVABLE: dict[str, tuple[str, str | None]] = {
    "gen_ai.input.messages": ("inputs", "messages"),
    "gen_ai.system_instructions": ("inputs", "system"),
    "gen_ai.output.messages": ("outputs", "messages"),
    "gen_ai.tool.call.arguments": ("inputs", None),
    "gen_ai.tool.call.result": ("outputs", None),
    "gen_ai.retrieval.query.text": ("inputs", None),
    "gen_ai.retrieval.documents": ("outputs", "documents"),
    "input.value": ("inputs", None),
    "output.value": ("outputs", None),
    "langfuse.observation.input": ("inputs", None),
    "langfuse.observation.output": ("outputs", None),
    "traceloop.entity.input": ("inputs", None),
    "traceloop.entity.output": ("outputs", None),
}
_MISSING = object()
# Checked in this order. "spaced" is the compact text with ", " and ": " between items, which is
# what Python's json.dumps writes for ASCII content; it is tried before "python" because it is
# derived from orjson's output in a few string operations (json.dumps takes ~50x longer).
_STYLES = ("compact", "spaced", "python", "python-utf8")


_c_spaced: Callable[[str], str] | None
try:  # the C extension built at install (see _otlp_wire.c): the same text, ~15x faster
    from goldloop._otlp_wire import json_spaced as _c_spaced
except ImportError:  # installed without a C compiler
    _c_spaced = None


def spaced(compact: str) -> str:
    """Compact JSON text with a space after every ``,`` and ``:`` that is not inside a string."""
    if _c_spaced is not None and compact.isascii():
        return _c_spaced(compact)
    return spaced_py(compact)


def spaced_py(compact: str) -> str:
    """``spaced`` in Python: any text, and the reference the C version is tested against."""
    parts = compact.split('"')
    inside = False
    for i, part in enumerate(parts):
        if not inside:
            parts[i] = part.replace(",", ", ").replace(":", ": ")
            inside = True
        elif (len(part) - len(part.rstrip("\\"))) % 2 == 0:  # else an escaped quote: still inside
            inside = False
    return '"'.join(parts)


def _dump(value: Any, style: str) -> str:
    if style == "python":
        return json.dumps(value)
    if style == "python-utf8":
        return json.dumps(value, ensure_ascii=False)
    if style == "spaced":
        return spaced(orjson.dumps(value).decode())
    return orjson.dumps(value).decode()


def _style(value: Any, raw: str) -> str | None:
    """The style in which ``value`` is written exactly as ``raw``, if any."""
    compact = orjson.dumps(value).decode()
    if compact == raw:
        return "compact"
    if len(raw) > len(compact) and spaced(compact) == raw:
        return "spaced"
    return next((s for s in _STYLES[2:] if _dump(value, s) == raw), None)


def _at(fields: Mapping[str, Any], field: str, key: str | None) -> Any:
    value = fields.get(field, _MISSING)
    if key is None or value is _MISSING:
        return value
    return value.get(key, _MISSING) if isinstance(value, dict) else _MISSING


def move_content(
    attrs: dict[str, Any], fields: Mapping[str, Any], parsed: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attributes without the moved ones, {attribute: JSON spelling, or "" if not JSON}).

    ``parsed`` maps attributes to the values the mapping parsed from them: a run field that *is*
    such a value (identity) is known to equal the parsed attribute without parsing it again.
    """
    moved: dict[str, Any] = {}
    parsed = parsed or {}
    for name in [name for name in MOVABLE if name in attrs]:  # most spans carry one or two
        raw = attrs[name]
        if raw is None:
            continue
        target = _at(fields, *MOVABLE[name])
        if target is _MISSING:
            continue
        style: str
        if target == raw:
            style = ""
        elif isinstance(raw, str) and (
            target is parsed.get(name, _MISSING) or target == parse_json_value(raw)
        ):
            found = _style(target, raw)
            if found is None:
                continue
            style = found
        else:
            continue
        moved[name] = style
    if not moved:
        return attrs, moved
    kept = dict(attrs)  # a copy in C, then the few moved keys out: the order is kept
    for name in moved:
        del kept[name]
    return kept, moved


def restore_content(
    attrs: Mapping[str, Any], moved: Mapping[str, Any], run: Mapping[str, Any]
) -> dict[str, Any]:
    """The attributes as sent, with moved content read back from the run."""
    out = dict(attrs)
    for name, style in moved.items():
        if name not in MOVABLE:
            continue
        value = _at(run, *MOVABLE[name])
        if value is _MISSING or value is None:
            continue
        if style:
            value = _dump(value, str(style))
        out[name] = value
    return out


# Shorter strings cost less than the path that would point at them.
MIN_REFERENCED = 64
# Bounds on the walk over a run's inputs and outputs (a hostile payload stays cheap to index).
_MAX_NODES = 20_000
_MAX_DEPTH = 32

Path = list[str | int]


def _find(
    root: Any,
    field: str,
    wanted: dict[int, list[tuple[str, str]]],
    refs: dict[str, Path],
    budget: list[int],
) -> None:
    """Point each wanted attribute (by text length: [(name, text)]) at the first string under
    ``root`` with exactly its text. Iterative, one path per container (the leaves are checked in
    place): this runs on every mapped span, so it must stay a few microseconds."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, (field,))]
    while stack and budget[0] > 0:
        container, path = stack.pop()
        budget[0] -= 1
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for step, item in items:
            if isinstance(item, str):
                for name, text in wanted.get(len(item), ()):
                    if name not in refs and item == text:
                        refs[name] = [*path, step]
            elif isinstance(item, (dict, list)) and len(path) < _MAX_DEPTH:
                stack.append((item, (*path, step)))


def reference_content(
    attrs: dict[str, Any], fields: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Path]]:
    """(attributes without those whose long text is in the run's inputs or outputs, {attribute:
    path to that text}). Only strings of at least ``MIN_REFERENCED`` characters are referenced."""
    wanted: dict[int, list[tuple[str, str]]] = {}
    for name, value in attrs.items():
        if isinstance(value, str) and len(value) >= MIN_REFERENCED:
            wanted.setdefault(len(value), []).append((name, value))
    if not wanted:
        return attrs, {}
    refs: dict[str, Path] = {}
    budget = [_MAX_NODES]
    for field in ("inputs", "outputs"):
        value = fields.get(field)
        if isinstance(value, (dict, list)):  # a whole string field: move_content's case
            _find(value, field, wanted, refs, budget)
    if not refs:
        return attrs, refs
    return {k: v for k, v in attrs.items() if k not in refs}, refs


def _follow(run: Mapping[str, Any], path: Any) -> Any:
    value: Any = run
    for step in path if isinstance(path, list) else ():
        if isinstance(value, dict) and isinstance(step, str):
            value = value.get(step, _MISSING)
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        else:
            return _MISSING
    return value


def restore_references(
    attrs: Mapping[str, Any], refs: Mapping[str, Any], run: Mapping[str, Any]
) -> dict[str, Any]:
    """The attributes with referenced text read back from the run (a path that no longer leads
    to a string, after the run was edited, restores nothing)."""
    out = dict(attrs)
    for name, path in refs.items():
        value = _follow(run, path)
        if isinstance(value, str):
            out[name] = value
    return out
