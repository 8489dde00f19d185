"""Read routes for runs and traces: /runs/{id}, /runs (list), /runs/query, /traces/{id},
/projects/{id}/stats. The filter language is documented in docs/filters.md.

Answers are serialized with orjson straight from the service's dicts (a 10,000-run trace must be
fast); the pydantic models below describe them for the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from goldloop.http.deps import Ctx, Who
from goldloop.services import run_queries as svc

router = APIRouter(tags=["runs"])

Select = Literal["full", "light"]
SELECT_HELP = "`light` leaves out inputs, outputs, events and extra (for tables and trees)."
SelectParam = Annotated[Select, Query(description="`light` omits inputs, outputs, events, extra.")]
FILTER_HELP = 'Filter expression, e.g. `kind = "llm" and latency > 2s` (see docs/filters.md).'


class RunOut(BaseModel):
    """A run as read back (``light`` views omit inputs, outputs, events and extra)."""

    model_config = ConfigDict(extra="allow")
    id: str
    trace_id: str
    parent_id: str | None
    project_id: str
    is_root: bool
    name: str
    kind: str
    status: str
    start_time: int | None = Field(description="Microseconds since the Unix epoch (UTC).")
    end_time: int | None
    start_time_iso: str | None
    end_time_iso: str | None
    latency_ms: float | None
    error: Any
    model: str | None
    provider: str | None
    usage: dict[str, Any]
    cost: float | None
    tags: list[Any]
    metadata: dict[str, Any]
    session_id: str | None
    user_id: str | None
    reference_example_id: str | None
    seq: int
    inputs: Any = None
    outputs: Any = None
    events: list[Any] | None = None
    extra: dict[str, Any] | None = None


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page.")


class TreeRunOut(RunOut):
    depth: int
    children: list[str]
    orphan: bool = Field(description="Has a parent_id whose run is not in the trace.")


class TraceOut(BaseModel):
    trace_id: str
    run_count: int
    root_ids: list[str]
    start_time: int | None
    end_time: int | None
    runs: list[TreeRunOut] = Field(description="Depth-first pre-order; siblings by start time.")


class BucketOut(BaseModel):
    start: int
    start_iso: str | None
    count: int
    errors: int
    error_rate: float | None
    latency_ms: dict[str, float | None] = Field(description="p50, p95, p99 and avg.")
    tokens: dict[str, int]
    cost: float


class StatsOut(BaseModel):
    project_id: str
    start: int
    end: int
    start_iso: str | None
    end_iso: str | None
    bucket_us: int
    filter: str
    buckets: list[BucketOut]


class RunQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str | None = Field(default=None, description="Project id or name.")
    filter: str | None = Field(default=None, description=FILTER_HELP)
    sort: Literal["start_time", "latency", "cost", "tokens"] = "start_time"
    order: Literal["asc", "desc"] = "desc"
    limit: int = Field(default=50, ge=1, le=svc.MAX_LIMIT)
    cursor: str | None = None
    select: Select = Field(default="full", description=SELECT_HELP)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: str, ctx: Ctx, who: Who) -> Response:
    return _json(svc.get_run(ctx, who, run_id))


@router.get("/runs", response_model=RunPage)
def list_runs(
    ctx: Ctx,
    who: Who,
    project: str | None = Query(default=None, description="Project id or name."),
    filter: str | None = Query(default=None, description=FILTER_HELP),
    sort: Literal["start_time", "latency", "cost", "tokens"] = Query(default="start_time"),
    order: Literal["asc", "desc"] = Query(default="desc"),
    limit: int = Query(default=50, ge=1, le=svc.MAX_LIMIT),
    cursor: str | None = Query(default=None),
    select: SelectParam = "full",
) -> Response:
    q = RunQuery(
        project=project,
        filter=filter,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        select=select,
    )
    return query_runs(q, ctx, who)


@router.post("/runs/query", response_model=RunPage)
def query_runs(body: RunQuery, ctx: Ctx, who: Who) -> Response:
    """The same as `GET /runs`, with the parameters in a JSON body (for long filters)."""
    page = svc.list_runs(
        ctx,
        who,
        project=body.project,
        filter=body.filter,
        sort=body.sort,
        order=body.order,
        limit=body.limit,
        cursor=body.cursor,
        light=body.select == "light",
    )
    return _json(page)


@router.get("/traces/{trace_id}", response_model=TraceOut)
def get_trace(
    trace_id: str,
    ctx: Ctx,
    who: Who,
    select: SelectParam = "full",
) -> Response:
    # Serialized before anything else is allocated, so the 10,000-run answer is freed at once
    # instead of being scanned by the garbage collector's next run (see run_views.GCPaused).
    body = orjson.dumps(svc.get_trace(ctx, who, trace_id, light=select == "light"))
    return Response(body, media_type="application/json")


@router.get("/projects/{project_id}/stats", response_model=StatsOut)
def project_stats(
    project_id: str,
    ctx: Ctx,
    who: Who,
    bucket: str = Query(default="1h", description="Bucket width: 1m, 15m, 1h, 1d, ..."),
    start: str | None = Query(default=None, description="ISO time or µs; default end - 24h."),
    end: str | None = Query(default=None, description="ISO time or µs; default now."),
    filter: str | None = Query(default=None, description=FILTER_HELP),
) -> Response:
    stats = svc.project_stats(
        ctx, who, project_id, bucket=bucket, start=start, end=end, filter=filter
    )
    return _json(stats)
