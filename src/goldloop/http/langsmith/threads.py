"""LangSmith's thread resource (``client.threads.*``): ``/api/v2/threads/...``.

The SDK's generated client sends these to ``/api/v2`` beside the endpoint it is given with
``/api/v1`` or ``/api`` cut off, so they are mounted under ``/langsmith`` only. See
``goldloop.services.langsmith.threads``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from goldloop.domain.errors import InvalidInput
from goldloop.http.deps import Ctx, Who
from goldloop.http.langsmith import params
from goldloop.http.langsmith.body import json_body
from goldloop.services.langsmith import threads as svc

router = APIRouter(prefix="/api/v2/threads")


def _filters(request: Request) -> dict[str, Any]:
    return {name: params.one(request, name) for name in svc.UNSUPPORTED_FILTERS}


@router.post("/query")
async def query_threads(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a thread query object")
    return await run_in_threadpool(svc.query_threads, ctx, who, body)


@router.get("/{thread_id:path}/traces")
def list_traces(thread_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    return svc.list_traces(
        ctx,
        who,
        thread_id,
        project_id=params.one(request, "project_id"),
        page_size=params.one(request, "page_size"),
        cursor=params.one(request, "cursor"),
        selects=params.many(request, "selects"),
        filters=_filters(request),
    )


@router.get("/{thread_id:path}/stats")
def thread_stats(thread_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    return svc.thread_stats(
        ctx,
        who,
        thread_id,
        project_id=params.one(request, "session_id"),
        selects=params.many(request, "selects"),
        filters=_filters(request),
    )
