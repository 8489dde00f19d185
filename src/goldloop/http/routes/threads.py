"""Conversation threads: ``/projects/{id}/threads`` and ``/projects/{id}/threads/{thread_id}``.

A thread is the runs of a project that share a thread id (``session_id`` on Goldloop's API,
``session_id`` / ``thread_id`` / ``conversation_id`` metadata from the LangSmith SDK, the OTel
session attributes); its turns are the root runs of its traces (docs/query-api.md).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from goldloop.http.deps import Ctx, Who
from goldloop.services import threads as svc

router = APIRouter(tags=["threads"])


class ThreadOut(BaseModel):
    thread_id: str
    run_count: int = Field(description="Runs carrying the thread id.")
    turn_count: int = Field(description="Traces in the thread (one per turn).")
    error_count: int
    first_time: int | None = Field(description="First run start, µs since the Unix epoch.")
    last_time: int | None = Field(description="Last run start, µs since the Unix epoch.")
    first_time_iso: str | None
    last_time_iso: str | None


class ThreadPage(BaseModel):
    project_id: str
    items: list[ThreadOut] = Field(description="Most recently active first.")
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page.")


class TurnOut(BaseModel):
    trace_id: str
    run_id: str = Field(description="The root run of the turn's trace.")
    name: str
    kind: str
    status: str
    start_time: int | None
    end_time: int | None
    start_time_iso: str | None
    end_time_iso: str | None
    latency_ms: float | None
    inputs: Any
    outputs: Any
    error: Any
    usage: dict[str, Any]
    cost: float | None
    user_id: str | None


class ThreadDetail(ThreadOut):
    project_id: str
    offset: int
    turns: list[TurnOut] = Field(description="In start order.")


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/projects/{project_id}/threads", response_model=ThreadPage)
def list_threads(
    project_id: str,
    ctx: Ctx,
    who: Who,
    start: str | None = Query(default=None, description="Runs that started at or after (ISO/µs)."),
    end: str | None = Query(default=None, description="Runs that started before (ISO or µs)."),
    limit: int = Query(default=50, ge=1, le=svc.MAX_LIMIT),
    cursor: str | None = Query(default=None),
) -> Response:
    """The project's conversation threads with run and turn counts and first/last time."""
    page = svc.list_threads(ctx, who, project_id, start=start, end=end, limit=limit, cursor=cursor)
    return _json(page)


@router.get("/projects/{project_id}/threads/{thread_id:path}", response_model=ThreadDetail)
def get_thread(
    project_id: str,
    thread_id: str,
    ctx: Ctx,
    who: Who,
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=200, ge=1, le=svc.MAX_TURNS),
) -> Response:
    """One thread read as a conversation: its turns in order, each with trace id, inputs and
    outputs."""
    return _json(svc.get_thread(ctx, who, project_id, thread_id, offset=offset, limit=limit))
