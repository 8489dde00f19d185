"""Run reads: ``POST /runs/query`` (``list_runs``), ``POST /runs/stats`` (``get_run_stats``) and
``GET /runs/{id}`` (``read_run``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from goldloop.domain.errors import InvalidInput
from goldloop.http.deps import Ctx, Who
from goldloop.http.langsmith import attachment_urls
from goldloop.http.langsmith.body import json_body
from goldloop.services.langsmith import run_reads as svc
from goldloop.services.langsmith import run_stats

router = APIRouter()


@router.post("/runs/query")
async def query_runs(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a run query object")
    page = await run_in_threadpool(svc.query_runs, ctx, who, body)
    await run_in_threadpool(attachment_urls.add_to_runs, request, ctx, who, page["runs"])
    return page


@router.post("/runs/stats")
async def stats(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a run query object")
    return await run_in_threadpool(run_stats.run_stats, ctx, who, body)


@router.get("/runs/{run_id}")
def read_run(run_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    run = svc.read_run(ctx, who, run_id)
    attachment_urls.add_to_runs(request, ctx, who, [run])
    return run
