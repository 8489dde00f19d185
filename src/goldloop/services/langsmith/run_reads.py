"""LangSmith run reads (``read_run``, ``list_runs``) on Goldloop's run query service.

A ``/runs/query`` body becomes one Goldloop filter string (parsed and parameterized by
Goldloop's own filter language) and the runs come back in LangSmith's shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from goldloop.domain import filters
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.domain.filters import quote
from goldloop.domain.langsmith.filter import to_goldloop
from goldloop.domain.langsmith.runs import dotted_ids, dotted_segment, feedback_stats
from goldloop.services import run_queries
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import feedback as feedback_store
from goldloop.store import run_stats
from goldloop.store.run_filters import compile_filter

MAX_PAGE = 100


def as_uuid(value: str) -> str:
    """LangSmith ids are UUIDs; a hex id (OTLP span/trace ids) is zero-padded into one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        pass
    if len(value) <= 32 and all(c in "0123456789abcdefABCDEF" for c in value):
        return str(uuid.UUID(value.rjust(32, "0")))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "goldloop:" + value))


def error_text(error: Any) -> str | None:
    if not isinstance(error, Mapping):
        return None if error is None else str(error)
    head = error.get("message") or ""
    if error.get("type"):
        head = f"{error['type']}({head!r})"
    stack = error.get("stacktrace")
    return f"{head}\n\n{stack}" if stack else head


def ls_run(view: Mapping[str, Any], tenant_id: str) -> dict[str, Any]:
    """A Goldloop run view as a LangSmith Run."""
    extra = dict(view.get("extra") or {})
    langsmith = extra.pop("langsmith", None) or {}
    dotted = langsmith.get("dotted_order")
    run_id = as_uuid(view["id"])
    if not dotted and view.get("start_time") is not None:
        dotted = dotted_segment(view["start_time"], run_id)
    ls_extra = dict(langsmith.get("extra") or {})
    ls_extra["metadata"] = view.get("metadata") or {}
    usage = view.get("usage") or {}
    ancestors = dotted_ids(dotted)[:-1] if dotted else []
    project_id = view.get("project_id")
    return {
        "id": run_id,
        "name": view.get("name") or "",
        "run_type": view.get("kind") or "chain",
        "start_time": view.get("start_time_iso"),
        "end_time": view.get("end_time_iso"),
        "trace_id": as_uuid(view["trace_id"]),
        "parent_run_id": as_uuid(view["parent_id"]) if view.get("parent_id") else None,
        "parent_run_ids": ancestors,
        "dotted_order": dotted or "",
        "session_id": project_id,
        "status": view.get("status"),
        "inputs": view.get("inputs") or {},
        "outputs": view.get("outputs"),
        "error": error_text(view.get("error")),
        "events": view.get("events") or [],
        "tags": view.get("tags") or [],
        "extra": ls_extra,
        "serialized": langsmith.get("serialized"),
        "reference_example_id": view.get("reference_example_id"),
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
        **_costs(view, usage),
        "thread_id": view.get("session_id"),
        "app_path": f"/o/{tenant_id}/projects/p/{project_id}/r/{run_id}?poll=true",
    }


def _token_details(usage: Mapping[str, Any], given: str, derived: dict[str, str]) -> Any:
    """The sender's ``*_token_details`` map, else one built from Goldloop's usage counters."""
    if isinstance(usage.get(given), Mapping):
        return usage[given]
    built = {theirs: usage[ours] for theirs, ours in derived.items() if usage.get(ours) is not None}
    return built or None


def _costs(view: Mapping[str, Any], usage: Mapping[str, Any]) -> dict[str, Any]:
    """LangSmith's cost and token-detail fields: the sender's figures where it sent them, else
    Goldloop's price estimate (``extra.cost``)."""
    cost = (view.get("extra") or {}).get("cost")
    cost = cost if isinstance(cost, Mapping) else {}
    return {
        "total_cost": view.get("cost"),
        "prompt_cost": cost.get("input"),
        "completion_cost": cost.get("output"),
        "prompt_cost_details": cost.get("input_details"),
        "completion_cost_details": cost.get("output_details"),
        "prompt_token_details": _token_details(
            usage,
            "input_token_details",
            {"cache_read": "cache_read_tokens", "cache_creation": "cache_write_tokens"},
        ),
        "completion_token_details": _token_details(
            usage, "output_token_details", {"reasoning": "reasoning_tokens"}
        ),
    }


def read_run(ctx: ServiceContext, who: Principal, run_id: str) -> dict[str, Any]:
    try:
        view = run_queries.get_run(ctx, who, run_id)
    except NotFound:
        parsed = uuid.UUID(run_id) if _is_uuid(run_id) else None
        if parsed is None or not parsed.hex.startswith("0" * 16):
            raise
        view = run_queries.get_run(ctx, who, parsed.hex[16:])  # a padded OTLP span id
    return _with_feedback_stats(ctx, who, [view], [ls_run(view, who.workspace_id)])[0]


def _with_feedback_stats(
    ctx: ServiceContext,
    who: Principal,
    views: list[Mapping[str, Any]],
    ls_runs: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Set each LangSmith run's ``feedback_stats`` (None for a run with no feedback), in one
    read of the page's feedback."""
    ids = [str(v["id"]) for v in views]
    rows = ctx.db.read(lambda c: feedback_store.scores_of_runs(c, who.workspace_id, ids))
    stats = feedback_stats(rows)
    for view, run in zip(views, ls_runs, strict=True):
        run["feedback_stats"] = stats.get(str(view["id"]))
    return ls_runs


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [str(v) for v in values if v is not None]


def _in(field: str, values: list[str]) -> str:
    return f"{field} in ({', '.join(quote(v) for v in values)})"


def query_filter(body: Mapping[str, Any]) -> str | None:
    """The Goldloop filter string a LangSmith ``/runs/query`` body asks for (its trace and tree
    filters, and reference examples, are conditions of their own: ``trace_conditions``)."""
    parts: list[str] = []
    projects = _strings(body, "session") + _strings(body, "session_id")
    if projects:
        parts.append(_in("project", projects))
    if body.get("run_type"):
        parts.append(f"kind = {quote(str(body['run_type']).lower())}")
    if isinstance(body.get("is_root"), bool):
        parts.append(f"root = {'true' if body['is_root'] else 'false'}")
    order = body.get("execution_order")
    if order is not None:
        # LangSmith's execution_order only ever selects root runs (1); it has no other use.
        if order != 1 or isinstance(order, bool):
            raise InvalidInput(
                "'execution_order' must be 1 (root runs only)",
                details={"field": "execution_order"},
            )
        parts.append("root = true")
    if isinstance(body.get("error"), bool):
        parts.append('status = "error"' if body["error"] else 'status != "error"')
    ids = _strings(body, "id")
    if ids:
        parts.append(_in("id", ids))
    if body.get("trace"):
        parts.append(f"trace_id = {quote(str(body['trace']))}")
    if body.get("parent_run"):
        parts.append(f"parent_id = {quote(str(body['parent_run']))}")
    if body.get("start_time"):
        parts.append(f"start_time >= {quote(str(body['start_time']))}")
    if body.get("end_time"):  # runs that started by then (LangSmith's end of the time range)
        parts.append(f"start_time <= {quote(str(body['end_time']))}")
    if body.get("query"):
        parts.append(f"text ~ {quote(str(body['query']))}")
    translated = to_goldloop(body.get("filter") if isinstance(body.get("filter"), str) else None)
    if translated:
        parts.append(f"({translated})")
    return " and ".join(parts) or None


def _compiled(ctx: ServiceContext, who: Principal, text: str | None) -> run_stats.Cond:
    return compile_filter(
        filters.parse(text or ""),
        dialect=ctx.db.dialect,
        workspace_id=who.workspace_id,
        now=ctx.clock(),
    )


def _tree_filter(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{key}' must be a filter string", details={"field": key})
    try:
        return to_goldloop(value)
    except InvalidInput as exc:  # say which of the filters was wrong
        raise InvalidInput(f"{key}: {exc.message}", details={"field": key}) from None


def trace_conditions(
    ctx: ServiceContext, who: Principal, body: Mapping[str, Any]
) -> list[run_stats.Cond]:
    """The conditions of a LangSmith run query that are not a Goldloop filter string, compiled
    and parameterized: ``trace_filter`` (on the root run of a run's trace), ``tree_filter`` (on
    any run of its trace) and ``reference_example``."""
    conditions = []
    for key, roots_only in (("trace_filter", True), ("tree_filter", False)):
        text = _tree_filter(body, key)
        if text:
            inner = _compiled(ctx, who, text)
            conditions.append(run_stats.in_traces(who.workspace_id, inner, roots_only=roots_only))
    examples = _strings(body, "reference_example")
    if examples:
        conditions.append(run_stats.reference_examples(examples))
    return conditions


def query_conditions(
    ctx: ServiceContext, who: Principal, body: Mapping[str, Any]
) -> list[run_stats.Cond]:
    """Every condition of a LangSmith run query: its filter fields, then ``trace_conditions``."""
    return [_compiled(ctx, who, query_filter(body)), *trace_conditions(ctx, who, body)]


def query_runs(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """One page: ``{"runs": [...], "cursors": {"next": ...}}``."""
    limit = body.get("limit")
    size = max(1, min(limit if isinstance(limit, int) else MAX_PAGE, MAX_PAGE))
    order = "asc" if str(body.get("order", "desc")).lower() == "asc" else "desc"
    text = query_filter(body)
    extra = trace_conditions(ctx, who, body)
    cursor = body.get("cursor") if isinstance(body.get("cursor"), str) else None
    page = run_queries.list_runs(
        ctx, who, filter=text, order=order, limit=size, cursor=cursor, conditions=extra
    )
    views = page["items"]
    runs = _with_feedback_stats(ctx, who, views, [ls_run(v, who.workspace_id) for v in views])
    return {
        "runs": runs,
        "cursors": {"next": page["next_cursor"]},
    }
