"""Runs: the export of a project's run table, a trace, and one run (the table itself is
``run_list_pages``)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from goldloop.domain.errors import NotFound
from goldloop.http.dashboard import attachment_view, feedback_view, trace_layout, web
from goldloop.http.dashboard.chat_view import as_chat
from goldloop.http.dashboard.json_view import render_json
from goldloop.services import (
    annotation_queues,
    datasets,
    feedback,
    projects,
    run_queries,
    trace_export,
)
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.sessions import Session

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

DEFAULT_FILTER = "root"
SORTABLE = {"start_time": "Start", "latency": "Latency", "tokens": "Tokens", "cost": "Cost"}
FACETS = [
    ("Traces", "root"),
    ("Errors", 'status = "error"'),
    ("LLM calls", 'kind = "llm"'),
    ("Tools", 'kind = "tool"'),
    ("Slower than 5 s", "latency > 5s"),
    ("Last hour", "start_time > 1h ago"),
]


def filter_string(value: str) -> str:
    """``value`` as a double-quoted string literal of the filter language."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def and_filter(current: str, predicate: str) -> str:
    current = current.strip()
    if not current:
        return predicate
    if predicate in current:
        return current
    return f"({current}) and {predicate}" if " or " in current else f"{current} and {predicate}"


@router.get("/projects/{project_id}/runs/export")
def run_export(
    request: Request,
    project_id: str,
    session: web.SignedIn,
    filter: str = DEFAULT_FILTER,
    whole_traces: bool = False,
) -> Response:
    """The runs the table shows (its filter), or their whole traces, as an OTLP/JSON Lines
    download: what ``goldloop traces export`` writes. An invalid filter is a 400 page."""
    ctx = web.ctx_of(request)
    project = projects.get(ctx, session.principal, project_id)
    lines = trace_export.export_project(
        ctx, session.principal, project.id, filter=filter, whole_traces=whole_traces
    )
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", project.name)[:80] or "project"
    suffix = "traces" if whole_traces else "runs"
    response = StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"content-disposition": f'attachment; filename="{name}-{suffix}.otlp.jsonl"'},
    )
    return web.secure_headers(response)


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, session: web.SignedIn) -> Response:
    run = run_queries.get_run(web.ctx_of(request), session.principal, run_id)
    return web.redirect(
        web.query(f"/traces/{web.seg(run['trace_id'])}", {"run": run["id"]}) + "#selected"
    )


@router.get("/traces/{trace_id}")
def trace_page(
    request: Request,
    trace_id: str,
    session: web.SignedIn,
    run: str | None = None,
    saved: str | None = None,
    deleted: str | None = None,
    q: str | None = None,
) -> Response:
    return render_trace(request, session, trace_id, run, saved=saved, deleted=deleted, q=q)


@router.get("/traces/{trace_id}/panel")
def trace_panel(request: Request, trace_id: str, session: web.SignedIn, run: str) -> Response:
    """Only the side panel of one run (the trace page's script swaps it in)."""
    ctx = web.ctx_of(request)
    selected = run_queries.get_run(ctx, session.principal, run)
    if selected["trace_id"] != trace_id:
        raise NotFound(f"no run {run!r} in trace {trace_id!r}")
    return web.render(request, "_run_panel.html", **panel_context(request, session, selected))


@router.get("/traces/{trace_id}/subtree")
def trace_subtree(request: Request, trace_id: str, session: web.SignedIn, run: str) -> Response:
    """The rows under one run of the trace (the page's script fetches them when a collapsed
    subtree is opened)."""
    trace = run_queries.get_trace(web.ctx_of(request), session.principal, trace_id, light=True)
    rows = trace_layout.subtree(trace, run)
    if rows is None:
        raise NotFound(f"no run {run!r} in trace {trace_id!r}")
    return web.render(
        request,
        "_tree_rows.html",
        rows=rows,
        selected_id=None,
        timeline=trace_layout.TIMELINE,
        fb_marks=feedback_view.marks(
            web.ctx_of(request), session.principal, [r.run["id"] for r in rows]
        ),
    )


def panel_context(
    request: Request,
    session: Session,
    selected: dict[str, Any],
    saved: str | None = None,
    form: dict[str, str] | None = None,
    problem: str | None = None,
    dataset_problem: str | None = None,
    deleted: str | None = None,
) -> dict[str, Any]:
    ctx = web.ctx_of(request)
    who = session.principal
    run_feedback = feedback.for_runs(ctx, who, [selected["id"]])
    return {
        "selected": selected,
        "panels": run_panels(selected),
        "feedback": run_feedback,
        "saved": saved if any(f.id == saved for f in run_feedback) else None,
        "editor": {
            "key": "correctness",
            "score": "",
            "value": "",
            "comment": "",
            "correction": correction_text(selected.get("outputs")),
            **(form or {}),
        },
        "problem": problem,
        "deleted_id": deleted,
        **feedback_view.section(ctx, who, selected["id"], run_feedback),
        "dataset_names": [d.row.name for d in datasets.list_datasets(ctx, who, limit=200).items],
        "dataset_problem": dataset_problem,
        "review_queues": [
            (v.queue.id, v.queue.name) for v in annotation_queues.list_queues(ctx, who, limit=200)
        ],
        "attachments": attachment_view.files(ctx, who, "run", [selected["id"]]).get(
            selected["id"], []
        ),
    }


def render_trace(
    request: Request,
    session: Session,
    trace_id: str,
    run_id: str | None,
    *,
    saved: str | None = None,
    form: dict[str, str] | None = None,
    problem: str | None = None,
    dataset_problem: str | None = None,
    deleted: str | None = None,
    q: str | None = None,
) -> Response:
    """The trace page; ``form`` and ``problem`` re-show a refused feedback form; ``q`` searches
    the trace's runs (names, inputs and outputs)."""
    ctx = web.ctx_of(request)
    who = session.principal
    trace = run_queries.get_trace(ctx, who, trace_id, light=True)
    runs = trace["runs"]
    selected_id = run_id if run_id and any(r["id"] == run_id for r in runs) else None
    selected = run_queries.get_run(ctx, who, selected_id or trace["root_ids"][0])
    project = projects.get(ctx, who, selected["project_id"])
    root = next(r for r in runs if r["id"] == trace["root_ids"][0])
    totals = {
        "runs": len(runs),
        "errors": sum(1 for r in runs if r["status"] == "error"),
        "tokens": sum((r["usage"].get("total_tokens") or 0) for r in runs),
        "cost": sum((r["cost"] or 0.0) for r in runs),
        "llm_calls": sum(1 for r in runs if r["kind"] == "llm"),
    }
    search = trace_search(ctx, who, trace_id, q)
    duration = (
        trace["end_time"] - trace["start_time"]
        if trace["start_time"] is not None and trace["end_time"] is not None
        else None
    )
    return web.render(
        request,
        "trace.html",
        status_code=400 if problem or dataset_problem else 200,
        project=project,
        trace=trace,
        root=root,
        rows=trace_layout.layout(trace, selected["id"]),
        selected_id=selected["id"],
        totals=totals,
        duration_us=duration,
        timeline=trace_layout.TIMELINE,
        fb_marks=feedback_view.marks(ctx, who, [r["id"] for r in runs]),
        search=search,
        **panel_context(request, session, selected, saved, form, problem, dataset_problem, deleted),
    )


SEARCH_LIMIT = 50
SEARCH_MAX_CHARS = 200


def trace_search(
    ctx: ServiceContext, who: Principal, trace_id: str, q: str | None
) -> dict[str, Any] | None:
    """The runs of the trace whose name, inputs or outputs contain ``q`` (case-insensitive), in
    start order, at most ``SEARCH_LIMIT``; None without a search."""
    text = (q or "").strip()[:SEARCH_MAX_CHARS]
    if not text:
        return None
    needle = filter_string(text)
    query = f"trace_id = {filter_string(trace_id)} and (name ~ {needle} or text ~ {needle})"
    page = run_queries.list_runs(
        ctx, who, filter=query, sort="start_time", order="asc", limit=SEARCH_LIMIT, light=True
    )
    hits = page["items"]
    return {
        "q": text,
        "runs": hits,
        "ids": {r["id"] for r in hits},
        "more": page["next_cursor"] is not None,
    }


def correction_text(outputs: Any) -> str:
    """The run's output as the correction editor starts with it."""
    if outputs is None:
        return ""
    if isinstance(outputs, str):
        return outputs
    return orjson.dumps(outputs, option=orjson.OPT_INDENT_2).decode()


def run_panels(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Inputs and outputs as chat messages when they are messages, else as JSON."""
    out = []
    for label, key in (("Inputs", "inputs"), ("Outputs", "outputs")):
        value = run.get(key)
        chat = as_chat(value)
        out.append(
            {
                "label": label,
                "key": key,
                "value": value,
                "chat": chat,
                "json": render_json(value),
                "rest": render_json(chat.rest) if chat and chat.rest else None,
            }
        )
    return out
