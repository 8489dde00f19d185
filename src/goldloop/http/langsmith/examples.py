"""Examples: ``/examples`` (JSON path; the multipart examples endpoint is not served)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from goldloop.domain.errors import InvalidInput
from goldloop.http.deps import Ctx, Who
from goldloop.http.langsmith import attachment_urls, params
from goldloop.http.langsmith.body import json_body
from goldloop.services.langsmith import examples as svc

router = APIRouter()


@router.post("/examples")
async def create_example(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be an example object")
    created = await run_in_threadpool(svc.create_many, ctx, who, [body])
    return created[0]


@router.post("/examples/bulk")
async def create_examples(request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, list):
        raise InvalidInput("the body must be an array of examples")
    return await run_in_threadpool(svc.create_many, ctx, who, body)


@router.patch("/examples/bulk")
async def update_examples(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, list):
        raise InvalidInput("the body must be an array of example updates")
    return await run_in_threadpool(svc.update_many, ctx, who, body)


@router.get("/examples")
def list_examples(request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    offset, limit = params.page(request)
    found = svc.list_examples(
        ctx,
        who,
        dataset=params.one(request, "dataset"),
        ids=params.many(request, "id"),
        splits=params.many(request, "splits"),
        as_of=params.one(request, "as_of"),
        metadata=params.one(request, "metadata"),
        offset=offset,
        limit=limit,
        filter=params.one(request, "filter"),
    )
    if "attachment_urls" in params.many(request, "select"):  # include_attachments=True
        attachment_urls.add_to_examples(request, ctx, who, found)
    return found


@router.delete("/examples")
def delete_examples(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    svc.delete(ctx, who, params.many(request, "example_ids"))
    return {}


@router.get("/examples/{example_id}")
def read_example(example_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    example = svc.read(ctx, who, example_id, params.one(request, "as_of"))
    attachment_urls.add_to_examples(request, ctx, who, [example])
    return example


@router.patch("/examples/{example_id}")
async def update_example(example_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be an example object")
    return await run_in_threadpool(svc.update, ctx, who, example_id, body)


@router.delete("/examples/{example_id}")
def delete_example(example_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    svc.delete(ctx, who, [example_id])
    return {}
