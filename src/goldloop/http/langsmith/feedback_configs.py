"""Feedback configs: ``/feedback-configs`` (create, list, update, delete), onto Goldloop's
declared feedback keys. Writing needs an admin key (checked before the body is read)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from goldloop.http.deps import Admin, Ctx, Who
from goldloop.http.langsmith import params
from goldloop.http.langsmith.body import json_object
from goldloop.services.langsmith import feedback_configs as svc

router = APIRouter()


@router.post("/feedback-configs")
async def create_config(request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes, "a feedback config")
    return await run_in_threadpool(svc.create, ctx, who, body)


@router.get("/feedback-configs")
def list_configs(request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    offset, limit = params.page(request)
    return svc.list_configs(
        ctx,
        who,
        keys=params.many(request, "key"),
        name_contains=params.one(request, "name_contains"),
        offset=offset,
        limit=limit,
    )


@router.patch("/feedback-configs")
async def update_config(request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes, "a feedback config")
    return await run_in_threadpool(svc.update, ctx, who, body)


@router.delete("/feedback-configs")
def delete_config(request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    svc.delete(ctx, who, params.one(request, "feedback_key"), params.one(request, "id"))
    return {}
