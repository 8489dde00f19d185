"""The runs table of a project: filter, time range, sort, keyset pages, the columns the reader
picks (previews, scores, trace totals), the number of matching runs, and actions on the rows
the reader selects: add to a dataset, export as JSON Lines or CSV (here), add to a review queue
(the same form, posted to ``queue_pages``' ``/queues/add-runs``)."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.http.dashboard import feedback_view, formatting, run_columns, time_range, web
from goldloop.http.dashboard.run_pages import (
    DEFAULT_FILTER,
    FACETS,
    SORTABLE,
    and_filter,
    filter_string,
)
from goldloop.services import (
    annotation_queues,
    dataset_runs,
    datasets,
    projects,
    run_queries,
    run_table,
)

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

PAGE_SIZE = 50
# A text search (``text ~``, a substring scan no index serves) reads at most this many runs per
# page; when it has not filled the page, the page says how far back it searched and links on.
SEARCH_SCAN = 5_000
BULK_ACTIONS = ("dataset", "jsonl", "csv", "queue")


def review_queues(request: Request) -> list[tuple[str, str]]:
    """The annotation queues (id, name) the selected runs can be added to; the form posts them
    to ``REVIEW_QUEUE_FORM`` (``queue`` plus repeated ``run_id`` fields, and ``back``)."""
    found = annotation_queues.list_queues(
        web.ctx_of(request), request.state.session.principal, limit=200
    )
    return [(q.queue.id, q.queue.name) for q in found]


REVIEW_QUEUE_FORM = "/queues/add-runs"


@router.get("/projects/{project_id}/runs")
def run_list(
    request: Request,
    project_id: str,
    session: web.SignedIn,
    filter: str | None = None,
    sort: str = "start_time",
    order: str = "desc",
    cursor: str | None = None,
    range: str | None = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    col: Annotated[list[str] | None, Query()] = None,
    columns: str | None = None,
    bulk: str | None = None,
    n: int = 0,
    skipped: int = 0,
    dataset: str | None = None,
    added: int = 0,
    queue: str | None = None,
    count: bool = False,
    why: str | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    text = DEFAULT_FILTER if filter is None else filter
    sort = sort if sort in SORTABLE else "start_time"
    order = order if order in ("asc", "desc") else "desc"
    span = time_range.choose(ctx.clock(), range, start, end, default=None)
    picked = (col or []) if columns is not None else None
    shown = run_columns.chosen(picked, request.cookies.get(run_columns.COOKIE))
    base = f"/projects/{web.seg(project.id)}/runs"
    problem: dict[str, Any] | None = None
    items: list[dict[str, Any]] = []
    next_cursor = None
    matching: int | None = None
    searched: str | None = None
    try:
        page = run_queries.list_runs(
            ctx,
            who,
            project=project.id,
            filter=text,
            sort=sort,
            order=order,
            limit=PAGE_SIZE,
            cursor=cursor,
            light=True,
            start=span.start,
            end=span.end,
            scan=SEARCH_SCAN,
        )
        items, next_cursor = page["items"], page["next_cursor"]
        searched = searched_to(page.get("searched_to"), order)
        if count or run_table.count_is_cheap(text):
            matching = run_table.count_runs(
                ctx, who, project.id, filter=text, start=span.start, end=span.end
            )
    except InvalidInput as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        position = details.get("position")
        problem = {
            "message": exc.message,
            "position": position if isinstance(position, int) else None,
            "field": details.get("field"),
        }
    extras = run_table.page_extras(
        ctx,
        who,
        items,
        documents="input" in shown or "output" in shown,
        totals="tokens" in shown or "cost" in shown,
        scores="feedback" in shown or "evals" in shown,
    )
    kept_cols = {"col": shown, "columns": "1"} if columns is not None else {}

    def url(**changes: Any) -> str:
        params = {"filter": text, "sort": sort, "order": order, **span.params(), **changes}
        if params["filter"] == DEFAULT_FILTER:
            params.pop("filter")  # the default is implied; an empty filter (all runs) is kept
        path = web.query_keep_empty(base, params, keep=("filter",))
        if kept_cols:
            path += ("&" if "?" in path else "?") + "&".join(
                ["columns=1", *(f"col={c}" for c in shown)]
            )
        return path

    def sort_url(column: str) -> str:
        flip = "asc" if (column == sort and order == "desc") else "desc"
        return url(sort=column, order=flip, cursor=None)

    def export_url(whole_traces: bool) -> str:
        params = {"filter": text, "whole_traces": "1" if whole_traces else None}
        return web.query_keep_empty(f"{base}/export", params, keep=("filter",))

    def range_url(key: str | None) -> str:
        return url(range=key or "all", cursor=None, **{"from": None, "to": None})

    notice = _notice(request, bulk, n, skipped, dataset)
    bulk_problem = BULK_PROBLEMS.get(why or "") if bulk == "failed" else None
    queue_notice = _queue_notice(request, added, queue)
    response = web.render(
        request,
        "runs.html",
        project=project,
        runs=items,
        previews={
            run_id: (
                run_columns.preview(doc[0], output=False),
                run_columns.preview(doc[1], output=True),
            )
            for run_id, doc in extras.documents.items()
        },
        totals=extras.trace_totals,
        feedback_scores=extras.feedback,
        eval_scores=extras.evals,
        feedback_keys=run_columns.score_keys(extras.feedback),
        eval_keys=run_columns.score_keys(extras.evals),
        shown=shown,
        all_columns=run_columns.COLUMNS,
        matching=matching,
        count_cap=run_table.COUNT_CAP,
        fb_marks=feedback_view.marks(ctx, who, [r["id"] for r in items]),
        export_url=export_url,
        filter_text=text,
        problem=problem,
        span=span,
        presets=[(k, label, range_url(k)) for k, (label, _) in time_range.PRESETS.items()],
        all_time_url=range_url(None),
        from_value=time_range.input_value(span.start) if span.key == "custom" else "",
        to_value=time_range.input_value(span.end) if span.key == "custom" else "",
        range_key=span.key,
        sort=sort,
        order=order,
        sortable=SORTABLE,
        sort_url=sort_url,
        next_url=url(cursor=next_cursor) if next_cursor else None,
        searched_to=searched,
        search_scan=SEARCH_SCAN,
        first_url=url(cursor=None) if cursor else None,
        facets=[(label, url(filter=and_filter(text, p), cursor=None)) for label, p in FACETS],
        all_url=url(filter="", cursor=None),
        narrow=lambda field, value: url(
            filter=and_filter(text, f"{field} = {filter_string(str(value))}"), cursor=None
        ),
        here=url(cursor=cursor),
        count_url=url(cursor=cursor, count="1"),
        dataset_names=[d.row.name for d in datasets.list_datasets(ctx, who, limit=200).items],
        queues=review_queues(request),
        queue_form=REVIEW_QUEUE_FORM,
        notice=notice,
        queue_notice=queue_notice,
        bulk_problem=bulk_problem,
    )
    if columns is not None:  # the picker was submitted: remember the choice
        response.set_cookie(
            run_columns.COOKIE,
            run_columns.cookie_value(shown),
            max_age=365 * 86_400,
            path="/",
            httponly=True,
            samesite="lax",
            secure=web.cookie_secure(request),
        )
    return response


def searched_to(bound: dict[str, Any] | None, order: str) -> str | None:
    """Where a bounded search stopped, as the runs it read: "started at or after 2026-12-07
    10:00:00" (newest first), "with a latency of 1.20 s or more", ..."""
    if bound is None:
        return None
    value, sort = bound["value"], bound["sort"]
    down = order == "desc"
    if value is None:  # it stopped among the runs without a value (listed last, or first)
        what = {"start_time": "a start time", "latency": "a latency"}.get(sort, f"a {sort}")
        return f"with {what} and the first of those without" if down else f"without {what}"
    shown = {
        "start_time": formatting.timestamp,
        "latency": formatting.duration_us,
    }.get(sort, formatting.number)(value)
    if sort == "start_time":
        return f"that started at or {'after' if down else 'before'} {shown}"
    name = {"latency": "a latency", "cost": "a cost", "tokens": "a token count"}.get(sort, sort)
    return f"with {name} of {shown} or {'more' if down else 'less'}"


def _notice(
    request: Request, bulk: str | None, n: int, skipped: int, dataset: str | None
) -> dict[str, Any] | None:
    """What the last bulk action did (it redirected here with these parameters)."""
    if bulk != "added" or not dataset:
        return None
    try:
        info = datasets.get(web.ctx_of(request), request.state.session.principal, dataset)
    except (NotFound, InvalidInput):
        return None
    return {"added": max(n, 0), "skipped": max(skipped, 0), "dataset": info.row}


NOTICE_PARAMS = ("bulk", "n", "skipped", "dataset", "added", "queue", "why")
# Why a selected-rows action did nothing: fixed texts, so the URL cannot put words on the page.
BULK_PROBLEMS = {
    "none_selected": "Select at least one run first.",
    "too_many": f"Select at most {run_table.MAX_SELECTED} runs at a time.",
    "not_found": "None of the selected runs exists in this workspace any more.",
    "no_dataset": "Choose or name a dataset to add the selected runs to.",
    "refused": "The dataset did not take these runs: check its name, and that the runs' inputs "
    "and outputs fit its example schema (the trace page's Add to dataset shows the exact reason).",
}


def _queue_notice(request: Request, added: int, queue: str | None) -> dict[str, Any] | None:
    """What adding the selected runs to a review queue did (its form redirects back here)."""
    if not queue:
        return None
    try:
        view = annotation_queues.get(web.ctx_of(request), request.state.session.principal, queue)
    except (NotFound, InvalidInput):
        return None
    return {"added": max(added, 0), "queue": view.queue}


def _back(form: dict[str, list[str]], base: str) -> str:
    """The runs page the form came from (only this project's runs pages), without the notice
    of an earlier action."""
    back = web.local_path((form.get("back") or [""])[-1], base)
    if back != base and not back.startswith(base + "?"):
        return base
    _, _, query = back.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in NOTICE_PARAMS]
    return f"{base}?{urlencode(kept)}" if kept else base


@router.post("/projects/{project_id}/runs/selected")
def selected_runs_action(
    request: Request, project_id: str, session: web.SignedIn, form: web.FormLists
) -> Response:
    """Act on the rows selected in the table (``run_id`` fields): add them to a dataset, or
    download them as JSON Lines or CSV."""
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    action = (form.get("action") or [""])[-1]
    if action not in BULK_ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(BULK_ACTIONS)}")
    run_ids = [r for r in form.get("run_id", []) if r]
    base = f"/projects/{web.seg(project.id)}/runs"
    back = _back(form, base)

    def again(**params: Any) -> Response:
        joined = "&".join(f"{k}={web.seg(v)}" for k, v in params.items())
        return web.redirect(f"{back}{'&' if '?' in back else '?'}{joined}")

    if action == "queue":  # the queue button posts to REVIEW_QUEUE_FORM instead
        raise InvalidInput(f"review queues take the selected runs at {REVIEW_QUEUE_FORM}")
    if not run_ids:
        return again(bulk="failed", why="none_selected")
    if len(set(run_ids)) > run_table.MAX_SELECTED:
        return again(bulk="failed", why="too_many")
    views = run_table.selected_runs(ctx, who, run_ids)
    if not views:
        return again(bulk="failed", why="not_found")
    if action in ("jsonl", "csv"):
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", project.name)[:80] or "project"
        body = run_table.jsonl(views) if action == "jsonl" else run_table.csv_lines(views)
        media = "application/x-ndjson" if action == "jsonl" else "text/csv; charset=utf-8"
        disposition = f'attachment; filename="{name}-selected-runs.{action}"'
        response = StreamingResponse(
            body, media_type=media, headers={"content-disposition": disposition}
        )
        return web.secure_headers(response)
    name = (form.get("dataset") or [""])[-1].strip()
    if not name:
        return again(bulk="failed", why="no_dataset")
    try:
        try:
            info = datasets.get(ctx, who, name)
        except NotFound:
            info = datasets.create(ctx, who, name)
        result = dataset_runs.add_runs(
            ctx,
            who,
            info.row.id,
            [v["id"] for v in views],
            prefer_correction=(form.get("prefer_correction") or [""])[-1] == "on",
            message=f"added {len(views)} selected runs from the dashboard",
        )
    except (InvalidInput, Conflict):
        return again(bulk="failed", why="refused")
    return again(
        bulk="added",
        n=len(result.added) + len(result.updated),
        skipped=len(result.skipped),
        dataset=info.row.id,
    )
