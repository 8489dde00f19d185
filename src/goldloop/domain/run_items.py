"""The run write model: validating native wire items into ``RunPatch`` objects.

A wire item (see CONTRACTS.md, ``POST /api/v1/runs/batch``) is an upsert of one run keyed by
``id``. A field that is absent or ``null`` means "unchanged", so a patch holds only the fields the
sender actually gave, already converted to the stored form (column names, integer microseconds).
Unknown fields are ignored; a field of the wrong type raises ``InvalidInput`` naming the run (its
index in the batch and its id) and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from goldloop._kinds import KINDS, STATUSES
from goldloop.domain.clock import from_iso
from goldloop.domain.errors import InvalidInput
from goldloop.domain.safe_values import (
    OutOfRange,
    check_cost,
    check_id,
    check_time,
    check_tokens,
    has_nul,
    scrub,
)

MAX_ID = 64
MAX_NAME = 500
MAX_SHORT = 200
# usage keys stored in their own columns; every other usage key goes to extra.usage.
USAGE_COLUMNS = ("input_tokens", "output_tokens", "total_tokens")


@dataclass(slots=True)
class RunPatch:
    """What one item says about one run: only the fields it gave (column name -> value).

    ``extra`` holds what has no column (usage details, events, OTel attributes, ...); it is merged
    key by key into the stored ``extra`` document.
    """

    id: str
    trace_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    project: str | None = None


class _Bad(Exception):
    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field_name
        self.problem = problem


def _str(value: Any, name: str, max_len: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _Bad(name, f"must be a string, not {_type(value)}")
    if not value and not allow_empty:
        raise _Bad(name, "must not be empty")
    if len(value) > max_len:
        raise _Bad(name, f"is longer than {max_len} characters")
    return value


def _type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def parse_time(value: Any, name: str) -> int:
    """Integer microseconds since the epoch, or an ISO-8601 string with offset."""
    if isinstance(value, bool):
        raise _Bad(name, "must be integer microseconds since the epoch or an ISO-8601 string")
    if isinstance(value, int):
        if value < 0:
            raise _Bad(name, "must not be negative")
        return value  # the range is checked by ``screen``
    if isinstance(value, str):
        try:
            return from_iso(value)
        except ValueError:
            raise _Bad(name, f"is not an ISO-8601 time: {value[:40]!r}") from None
    raise _Bad(name, f"must be integer microseconds or an ISO-8601 string, not {_type(value)}")


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(name, f"must be a whole number, not {_type(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise _Bad(name, "must be a whole number")
    if value < 0:
        raise _Bad(name, "must not be negative")
    try:
        return check_tokens(int(value), name)
    except OutOfRange as bad:
        raise _Bad(bad.field, bad.problem) from None


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(name, f"must be a number, not {_type(value)}")
    try:
        return check_cost(float(value), name)
    except (OutOfRange, OverflowError):
        raise _Bad(name, "is out of range: a finite cost between 0 and 1e9") from None


def _error(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"message": value}
    if isinstance(value, dict):
        for key in ("type", "message", "stacktrace"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise _Bad(f"error.{key}", f"must be a string, not {_type(value[key])}")
        return {k: v for k, v in value.items() if v is not None}
    raise _Bad("error", f"must be an object or a string, not {_type(value)}")


def _usage(value: Any, patch: RunPatch) -> None:
    if not isinstance(value, dict):
        raise _Bad("usage", f"must be an object, not {_type(value)}")
    details: dict[str, Any] = {}
    for key, raw in value.items():
        if raw is None:
            continue
        if key in USAGE_COLUMNS:
            patch.fields[key] = _count(raw, f"usage.{key}")
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            details[key] = _count(raw, f"usage.{key}")
        else:
            details[key] = raw  # nested details (e.g. per-modality) are kept as given
    if details:
        patch.extra["usage"] = details


COST_DETAILS = ("input_details", "output_details")


def _cost_details(value: Any, name: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise _Bad(name, f"must be an object of numbers, not {_type(value)}")
    return {str(k): _number(v, f"{name}.{k}") for k, v in value.items() if v is not None}


def _cost(value: Any, patch: RunPatch) -> None:
    if isinstance(value, dict):
        details = {
            k: _cost_details(value[k], f"cost.{k}")
            for k in COST_DETAILS
            if value.get(k) is not None
        }
        parts = {
            k: _number(v, f"cost.{k}")
            for k, v in value.items()
            if v is not None and k not in COST_DETAILS
        }
        total = parts.get("total")
        if total is None and parts:
            total = sum(v for k, v in parts.items() if k in ("input", "output"))
        if total is not None:
            patch.fields["cost"] = _number(total, "cost")
        patch.extra["cost"] = {**parts, **details, "source": "sender"}
        return
    patch.fields["cost"] = _number(value, "cost")
    patch.extra["cost"] = {"total": patch.fields["cost"], "source": "sender"}


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _Bad("tags", f"must be an array of strings, not {_type(value)}")
    for i, tag in enumerate(value):
        if not isinstance(tag, str):
            raise _Bad(f"tags[{i}]", f"must be a string, not {_type(tag)}")
    return list(dict.fromkeys(value))


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(name, f"must be an object, not {_type(value)}")
    return value


def screen(patch: RunPatch) -> RunPatch:
    """The store's rules (``safe_values``) applied to a patch from any source (native,
    LangSmith, OTLP): ids without NUL, times, token counts and costs in range, every other NUL
    replaced. Raises ``OutOfRange`` naming the field; the patch is changed in place."""
    check_id(patch.id, "id")
    check_id(patch.trace_id, "trace_id")
    f = patch.fields
    for name in ("parent_id", "reference_example_id"):
        if isinstance(f.get(name), str):
            check_id(f[name], name)
    for name in ("start_time", "end_time"):
        if f.get(name) is not None:
            check_time(f[name], name)
    for name in ("input_tokens", "output_tokens", "total_tokens"):
        if f.get(name) is not None:
            check_tokens(f[name], f"usage.{name}")
    if f.get("cost") is not None:
        check_cost(f["cost"], "cost")
    if has_nul([f, patch.extra, patch.project]):  # rare: one scan of the whole patch first
        for name, value in f.items():
            f[name] = scrub(value)
        patch.extra = scrub(patch.extra)
        if patch.project is not None:
            patch.project = scrub(patch.project)
    return patch


def parse_item(item: Any) -> RunPatch:
    """One wire item -> a patch. Raises ``_Bad`` (converted by ``parse_batch``)."""
    try:
        return screen(_parse_item(item))
    except OutOfRange as bad:
        raise _Bad(bad.field, bad.problem) from None


def _parse_item(item: Any) -> RunPatch:
    if not isinstance(item, dict):
        raise _Bad("(item)", f"must be an object, not {_type(item)}")
    if item.get("id") is None:
        raise _Bad("id", "is required")
    if item.get("trace_id") is None:
        raise _Bad("trace_id", "is required")
    patch = RunPatch(
        id=_str(item["id"], "id", MAX_ID), trace_id=_str(item["trace_id"], "trace_id", MAX_ID)
    )
    f = patch.fields
    get = item.get
    if "parent_id" in item and (v := get("parent_id")) is not None:
        f["parent_id"] = _str(v, "parent_id", MAX_ID)
    if (v := get("name")) is not None:
        f["name"] = _str(v, "name", MAX_NAME)
    if (v := get("kind")) is not None:
        kind = _str(v, "kind", 32).lower()
        if kind not in KINDS:
            raise _Bad("kind", f"must be one of {', '.join(KINDS)}, not {v!r}")
        f["kind"] = kind
    if (v := get("status")) is not None:
        status = _str(v, "status", 16).lower()
        if status not in STATUSES:
            raise _Bad("status", f"must be one of {', '.join(STATUSES)}, not {v!r}")
        f["status"] = status
    for name in ("start_time", "end_time"):
        if (v := get(name)) is not None:
            f[name] = parse_time(v, name)
    for name in ("inputs", "outputs"):
        if (v := get(name)) is not None:
            f[name] = v
    if (v := get("error")) is not None:
        f["error"] = _error(v)
    for name, limit in (("model", MAX_SHORT), ("provider", 100)):
        if (v := get(name)) is not None:
            f[name] = _str(v, name, limit)
    for name in ("session_id", "user_id"):
        if (v := get(name)) is not None:
            f[name] = _str(v, name, MAX_SHORT)
    if (v := get("reference_example_id")) is not None:
        f["reference_example_id"] = _str(v, "reference_example_id", 36)
    if (v := get("usage")) is not None:
        _usage(v, patch)
    if (v := get("cost")) is not None:
        _cost(v, patch)
    if (v := get("tags")) is not None:
        f["tags"] = _tags(v)
    if (v := get("metadata")) is not None:
        f["metadata"] = _object(v, "metadata")
    if (v := get("events")) is not None:
        if not isinstance(v, list):
            raise _Bad("events", f"must be an array, not {_type(v)}")
        patch.extra["events"] = v
    if (v := get("extra")) is not None:
        for key, value in _object(v, "extra").items():
            patch.extra.setdefault(key, value)
    if (v := get("project")) is not None:
        patch.project = _str(v, "project", MAX_SHORT).strip() or None
    return patch


def parse_batch(runs: Any, *, max_errors: int = 20) -> list[RunPatch]:
    """Validate every item; raise one ``InvalidInput`` listing the problems (first ones)."""
    if not isinstance(runs, list):
        raise InvalidInput(
            f"'runs' must be an array of run objects, not {_type(runs)}",
            details=[{"field": "runs", "problem": "must be an array"}],
        )
    patches: list[RunPatch] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(runs):
        try:
            patches.append(parse_item(item))
        except _Bad as bad:
            run_id = item.get("id") if isinstance(item, Mapping) else None
            problems.append(
                {
                    "index": index,
                    "id": run_id if isinstance(run_id, str) else None,
                    "field": bad.field,
                    "problem": bad.problem,
                }
            )
            if len(problems) >= max_errors:
                break
    if problems:
        first = problems[0]
        who = f"runs[{first['index']}]" + (f" (id {first['id']!r})" if first["id"] else "")
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise InvalidInput(
            f"invalid run {who}: field '{first['field']}' {first['problem']}{more}",
            details=problems,
        )
    return patches
