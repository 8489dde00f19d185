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


def _feedback_of(run: dict[str, Any], feedback: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A run's feedback: by run_id, or trace-level feedback (no run_id) on the trace's root."""
    return [
        fb
        for fb in feedback
        if fb["workspace_id"] == run["workspace_id"]
        and (
            fb["run_id"] == run["id"]
            or (fb["run_id"] is None and fb["trace_id"] == run["trace_id"] and run["is_root"])
        )
    ]


def _feedback(node: f.Compare | f.In | f.Truthy, mine: list[dict[str, Any]], now: int) -> bool:
    path = node.field.path
    if node.field.name == "has_correction":
        attr = "has_correction"
    else:
        if path:
            mine = [fb for fb in mine if fb["key"] == path[0]]
        attr = path[1] if len(path) == 2 else "score" if path else "any"
    if isinstance(node, f.Truthy):
        present = {
            "has_correction": lambda fb: fb["has_correction"],
            "comment": lambda fb: fb["comment"] is not None,
            "value": lambda fb: fb["value"] is not None,
            "score": lambda fb: len(path) < 2 or fb["score"] is not None,
        }.get(attr, lambda fb: True)
        return any(present(fb) for fb in mine)
    if attr == "has_correction":
        assert isinstance(node, f.Compare)
        assert isinstance(node.value, f.Bool)
        has = any(fb["has_correction"] for fb in mine)
        return has if node.value.value == (node.op == "=") else not has
    op = "in" if isinstance(node, f.In) else node.op
    values = node.values if isinstance(node, f.In) else (node.value,)
    positive = {"!=": "=", "!~": "~"}.get(op, op)

    def match(fb: dict[str, Any]) -> bool:
        if attr == "value":
            if positive == "~":
                return isinstance(fb["value"], str) and _contains(fb["value"], values[0].value)
            return any(_meta_equals(fb["value"], v) for v in values)
        if attr == "comment":
            return _contains(fb["comment"], values[0].value)
        if attr == "source":
            return fb["source"] in [_value(v, now) for v in values]
        wanted = [float(v.value) if isinstance(v, f.Bool) else _value(v, now) for v in values]
        if positive == "in":
            return fb["score"] is not None and fb["score"] in wanted
        return _cmp(fb["score"], positive, wanted[0])

    found = any(match(fb) for fb in mine)
    return not found if op in ("!=", "!~") else found


def evaluate(
    node: f.Node,
    run: dict[str, Any],
    project_name: str,
    now: int,
    feedback: list[dict[str, Any]] | None = None,
) -> bool:
    if isinstance(node, f.And):
        return all(evaluate(i, run, project_name, now, feedback) for i in node.items)
    if isinstance(node, f.Or):
        return any(evaluate(i, run, project_name, now, feedback) for i in node.items)
    if isinstance(node, f.Not):
        return not evaluate(node.item, run, project_name, now, feedback)
    name = node.field.name
    if name in ("feedback", "has_correction"):
        return _feedback(node, _feedback_of(run, feedback or []), now)
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
