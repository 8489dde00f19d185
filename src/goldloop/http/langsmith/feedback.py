"""Feedback: ``/feedback``. Creation never 404s for an unknown run (the SDK would retry 10 times
with exponential sleeps, and evaluate() sends feedback before its runs arrive)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from goldloop.domain.clock import to_iso
from goldloop.http.deps import Ctx, Who
from goldloop.http.langsmith import params
from goldloop.http.langsmith.body import json_object
from goldloop.services.langsmith import feedback as svc
from goldloop.store.feedback import FeedbackRow

router = APIRouter()


def feedback_json(row: FeedbackRow) -> dict[str, Any]:
    """A LangSmith Feedback: ``run_id``, ``trace_id``, ``created_at``, ``modified_at`` always."""
    info = dict(row.source_info or {})
    kept: dict[str, Any] = info.pop("langsmith", None) or {}
    source = dict(kept.get("feedback_source") or {})
    source.setdefault("type", row.source)
    source.setdefault("metadata", {})
    value = row.value if row.value is not None else kept.get("value")
    return {
        "id": row.id,
        "created_at": to_iso(row.created_at),
        "modified_at": to_iso(row.updated_at),
        "run_id": row.run_id,
        "trace_id": row.trace_id,
        "key": row.key,
        "score": row.score,
        "value": value,
        "comment": row.comment,
        "correction": row.correction,
        "feedback_source": source,
        "session_id": kept.get("session_id") or row.project_id,
        "start_time": kept.get("start_time"),
        "comparative_experiment_id": kept.get("comparative_experiment_id"),
        "feedback_group_id": kept.get("feedback_group_id"),
        "extra": kept.get("extra"),
    }


@router.post("/feedback")
async def create_feedback(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes, "a feedback object")
    return feedback_json(await run_in_threadpool(svc.create, ctx, who, body))


@router.get("/feedback")
def list_feedback(request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    offset, limit = params.page(request)
    rows = svc.list_feedback(
        ctx,
        who,
        run_ids=params.many(request, "run"),
        keys=params.many(request, "key"),
        sources=params.many(request, "source"),
        offset=offset,
        limit=limit,
        sessions=params.many(request, "session"),
    )
    return [feedback_json(r) for r in rows]


@router.get("/feedback/{feedback_id}")
def read_feedback(feedback_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    return feedback_json(svc.get(ctx, who, feedback_id))


@router.patch("/feedback/{feedback_id}")
async def update_feedback(feedback_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes, "a feedback object")
    return feedback_json(await run_in_threadpool(svc.update, ctx, who, feedback_id, body))


@router.delete("/feedback/{feedback_id}")
def delete_feedback(feedback_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    svc.delete(ctx, who, feedback_id)
    return {}
