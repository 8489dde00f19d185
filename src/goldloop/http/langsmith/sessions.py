"""Sessions (LangSmith's name for projects): ``/sessions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import InvalidInput
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.http.langsmith import params
from goldloop.http.langsmith.body import json_body
from goldloop.services.context import Principal
from goldloop.services.langsmith import run_stats
from goldloop.services.langsmith import sessions as svc

router = APIRouter()


def session_json(s: svc.Session, who: Principal) -> dict[str, Any]:
    """A TracerSession: ``tenant_id`` (a UUID) and ``reference_dataset_id`` must always be there."""
    return {
        "id": s.project.id,
        "name": s.project.name,
        "description": s.project.description,
        "tenant_id": who.workspace_id,
        "reference_dataset_id": s.reference_dataset_id,
        "start_time": to_iso(s.project.created_at),
        "end_time": to_iso(s.end_time),
        "extra": s.extra,
    }


@router.post("/sessions")
async def create_session(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a session object")
    upsert = bool(params.flag(request, "upsert"))
    session = await run_in_threadpool(svc.create, ctx, who, body, upsert=upsert)
    return session_json(session, who)


@router.get("/sessions")
def list_sessions(request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    offset, limit = params.page(request)
    sessions = svc.list_sessions(
        ctx,
        who,
        ids=params.many(request, "id"),
        name=params.one(request, "name"),
        name_contains=params.one(request, "name_contains"),
        reference_dataset=params.many(request, "reference_dataset"),
        reference_free=params.flag(request, "reference_free"),
        offset=offset,
        limit=limit,
    )
    stats = params.flag(request, "include_stats")
    return [_with_stats(session_json(s, who), ctx, who, stats) for s in sessions]


def _with_stats(
    session: dict[str, Any], ctx: Ctx, who: Principal, include: bool | None
) -> dict[str, Any]:
    """The session with its statistics when the caller asked for them (``include_stats``)."""
    if include:
        session.update(run_stats.session_stats(ctx, who, session["id"]))
    return session


@router.get("/sessions/{session_id}")
def read_session(session_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    session = session_json(svc.get(ctx, who, session_id), who)
    return _with_stats(session, ctx, who, params.flag(request, "include_stats"))


@router.patch("/sessions/{session_id}")
async def update_session(session_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a session object")
    session = await run_in_threadpool(svc.update, ctx, who, session_id, body)
    return session_json(session, who)


@router.delete("/sessions/{session_id}")
def delete_session(session_id: str, ctx: Ctx, who: Admin) -> dict[str, Any]:
    svc.delete(ctx, who, session_id)
    return {}
