"""The multipart examples endpoints (``dataset_examples_multipart_enabled``,
``examples_multipart_enabled`` in ``/info``):

- ``POST /v1/platform/datasets/{id}/examples``: create examples, with attachments;
- ``PATCH /v1/platform/datasets/{id}/examples``: update them (fields, attachments, operations);
- ``POST /v1/platform/examples/multipart``: upsert, each example naming its dataset.

Each path is also served without its ``/v1`` (the SDK drops it when its endpoint ends in
``/v1``). The answer is ``{"example_ids": [...], "count": N}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from goldloop.domain import multipart
from goldloop.domain.errors import InvalidInput
from goldloop.domain.langsmith import example_parts
from goldloop.domain.langsmith.example_parts import ExampleUpload
from goldloop.http.deps import Ctx, Who
from goldloop.http.langsmith.body import raw_body
from goldloop.services.langsmith import example_uploads as svc

router = APIRouter()


async def _uploads(request: Request, limit: int) -> list[ExampleUpload]:
    body = await raw_body(request, limit)
    try:
        parts = multipart.parse(body, request.headers.get("content-type", ""))
        return example_parts.assemble(parts)
    except (multipart.MultipartError, example_parts.PartsError) as exc:
        raise InvalidInput(f"invalid multipart body: {exc}") from None


@router.post("/v1/platform/datasets/{dataset_id}/examples")
@router.post("/platform/datasets/{dataset_id}/examples")
async def create_examples(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    uploads = await _uploads(request, ctx.settings.max_request_bytes)
    return await run_in_threadpool(svc.create, ctx, who, dataset_id, uploads)


@router.patch("/v1/platform/datasets/{dataset_id}/examples")
@router.patch("/platform/datasets/{dataset_id}/examples")
async def update_examples(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    uploads = await _uploads(request, ctx.settings.max_request_bytes)
    return await run_in_threadpool(svc.update, ctx, who, dataset_id, uploads)


@router.post("/v1/platform/examples/multipart")
@router.post("/platform/examples/multipart")
async def upsert_examples(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    uploads = await _uploads(request, ctx.settings.max_request_bytes)
    return await run_in_threadpool(svc.create, ctx, who, None, uploads)
