"""Annotation queues: ``/annotation-queues`` (create, list, read, update, delete), their runs
(add, list, read by index, remove), onto Goldloop's annotation queues. Creating, changing and
deleting a queue and removing a run need an admin key (checked before the body is read)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from goldloop.http.deps import Admin, Ctx, Who
from goldloop.http.langsmith import params
from goldloop.http.langsmith.body import json_body, json_object
from goldloop.services.langsmith import annotation_queues as svc

router = APIRouter()


@router.post("/annotation-queues")
async def create_queue(request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes, "an annotation queue")
    return await run_in_threadpool(svc.create, ctx, who, body)


@router.get("/annotation-queues")
def list_queues(request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    offset, limit = params.page(request)
    return svc.list_queues(
        ctx,
        who,
        ids=params.many(request, "ids"),
        name=params.one(request, "name"),
        name_contains=params.one(request, "name_contains"),
        offset=offset,
        limit=limit,
    )


@router.get("/annotation-queues/{queue_id}")
def read_queue(queue_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    return svc.read(ctx, who, queue_id)


@router.patch("/annotation-queues/{queue_id}")
async def update_queue(queue_id: str, request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes, "an annotation queue")
    return await run_in_threadpool(svc.update, ctx, who, queue_id, body)


@router.delete("/annotation-queues/{queue_id}")
def delete_queue(queue_id: str, ctx: Ctx, who: Admin) -> dict[str, Any]:
    svc.delete(ctx, who, queue_id)
    return {}


@router.post("/annotation-queues/{queue_id}/runs")
@router.post("/annotation-queues/{queue_id}/runs/by-key")
async def add_runs(queue_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    await run_in_threadpool(svc.add_runs, ctx, who, queue_id, body)
    return {}


@router.get("/annotation-queues/{queue_id}/runs")
def list_runs(queue_id: str, request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    offset, limit = params.page(request)
    status = params.one(request, "status")
    return svc.list_runs(ctx, who, queue_id, status=status, offset=offset, limit=limit)


@router.get("/annotation-queues/{queue_id}/run/{index}")
def run_at(queue_id: str, index: int, ctx: Ctx, who: Who) -> dict[str, Any]:
    return svc.run_at(ctx, who, queue_id, max(index, 0))


@router.delete("/annotation-queues/{queue_id}/runs/{run_id}")
def remove_run(queue_id: str, run_id: str, ctx: Ctx, who: Admin) -> Response:
    svc.remove_run(ctx, who, queue_id, run_id)
    return Response(status_code=204)
