"""A plain-Python evaluator of the filter language, written from docs/filters.md, used as the
oracle the compiled SQL must agree with."""

from __future__ import annotations

from typing import Any

import orjson

from goldloop.domain import filters as f

_COLUMN = {
    "latency": "latency_us",
    "tokens": "total_tokens",
    "root": "is_root",
}
_MISSING = object()


def _value(v: f.Value, now: int) -> Any:
    if isinstance(v, f.Str | f.Num | f.Bool):
        return v.value
    if isinstance(v, f.Duration | f.Time):
        return v.us
    if isinstance(v, f.Ago):
        return now - v.us
    return None


def _cmp(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return False
    return {
        "=": actual == expected,
        ">": actual > expected,
        ">=": actual >= expected,
        "<": actual < expected,
        "<=": actual <= expected,
    }[op]


def _contains(actual: Any, needle: str) -> bool:
    return actual is not None and needle.lower() in str(actual).lower()


def _json_contains(doc: Any, needle: str) -> bool:
    if doc is None:
        return False
    encoded = orjson.dumps(needle).decode()[1:-1].lower()
    return encoded in orjson.dumps(doc).decode().lower()


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _meta_equals(found: Any, v: f.Value) -> bool:
    if isinstance(v, f.Null):
        return found is _MISSING or found is None
    if found is _MISSING:
        return False
    if isinstance(v, f.Bool):
        return isinstance(found, bool) and found == v.value
    if isinstance(v, f.Num):
        return _is_number(found) and found == v.value
    return isinstance(found, str) and found == v.value


def evaluate(node: f.Node, run: dict[str, Any], project_name: str, now: int) -> bool:
    if isinstance(node, f.And):
        return all(evaluate(i, run, project_name, now) for i in node.items)
    if isinstance(node, f.Or):
        return any(evaluate(i, run, project_name, now) for i in node.items)
    if isinstance(node, f.Not):
        return not evaluate(node.item, run, project_name, now)
    name = node.field.name
    if name == "metadata":
        found: Any = run["metadata"]
        for key in node.field.path:
            found = found.get(key, _MISSING) if isinstance(found, dict) else _MISSING
        if isinstance(node, f.Truthy):
            return found is not _MISSING
        if isinstance(node, f.In):
            return any(_meta_equals(found, v) for v in node.values)
        if node.op == "=":
            return _meta_equals(found, node.value)
        if node.op == "!=":
            return not _meta_equals(found, node.value)
        if node.op in ("~", "!~"):
            hit = isinstance(found, str) and _contains(found, _value(node.value, now))
            return hit if node.op == "~" else not hit
        return _is_number(found) and _cmp(found, node.op, _value(node.value, now))
    if name == "tags":
        tags = run["tags"] or []
        if isinstance(node, f.Truthy):
            return len(tags) > 0
        values = node.values if isinstance(node, f.In) else (node.value,)
        has = any(_value(v, now) in tags for v in values)
        return not has if isinstance(node, f.Compare) and node.op == "!=" else has
    if name == "project":
        if isinstance(node, f.Truthy):
            return True
        names = {project_name, run["project_id"]}
        if isinstance(node, f.In):
            return any(_value(v, now) in names for v in node.values)
        if node.op in ("~", "!~"):
            hit = _contains(project_name, _value(node.value, now))
            return hit if node.op == "~" else not hit
        hit = _value(node.value, now) in names
        return hit if node.op == "=" else not hit
    if name == "error" and isinstance(node, f.Truthy):
        return run["status"] == "error"
    if name in ("error", "inputs", "outputs", "text"):
        docs = {"error": ["error"], "text": ["inputs", "outputs"]}.get(name, [name])
        if isinstance(node, f.Truthy):
            return any(run[d] is not None for d in docs)
        assert isinstance(node, f.Compare)
        hit = any(_json_contains(run[d], _value(node.value, now)) for d in docs)
        return hit if node.op == "~" else not hit
    actual = run[_COLUMN.get(name, name)]
    if isinstance(node, f.Truthy):
        return bool(actual) if name == "root" else actual is not None
    if isinstance(node, f.In):
        return actual is not None and actual in [_value(v, now) for v in node.values]
    if isinstance(node.value, f.Null):
        return (actual is None) == (node.op == "=")
    expected = _value(node.value, now)
    if node.op == "!=":
        return not _cmp(actual, "=", expected)
    if node.op == "~":
        return _contains(actual, expected)
    if node.op == "!~":
        return not _contains(actual, expected)
    return _cmp(actual, node.op, expected)
