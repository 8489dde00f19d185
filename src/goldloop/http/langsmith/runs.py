"""Run ingestion: ``POST /runs/batch``, ``/runs``, ``/runs/multipart``; ``PATCH /runs/{id}``.

Every answer is ``202 {}`` after the runs are committed. A resent batch is an upsert of the same
runs, so retries and duplicates never get a 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from goldloop.domain import multipart
from goldloop.domain.errors import InvalidInput
from goldloop.domain.langsmith import ops as langsmith_ops
from goldloop.http.deps import Ctx, Who
from goldloop.http.langsmith.body import json_body, raw_body
from goldloop.services.langsmith import runs as svc
from goldloop.services.langsmith.runs import RunOp

router = APIRouter()


def _accepted() -> JSONResponse:
    return JSONResponse({}, status_code=202)


def _runs(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"'{key}' must be an array of runs", details={"field": key})
    return value


@router.post("/runs/batch")
async def runs_batch(request: Request, ctx: Ctx, who: Who) -> JSONResponse:
    doc = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(doc, dict):
        raise InvalidInput("the body must be an object with 'post' and/or 'patch' arrays")
    ops = [RunOp(run, True) for run in _runs(doc.get("post"), "post")]
    ops += [RunOp(run, False) for run in _runs(doc.get("patch"), "patch")]
    await run_in_threadpool(svc.ingest_runs, ctx, who, ops)
    return _accepted()


@router.post("/runs")
async def create_run(request: Request, ctx: Ctx, who: Who) -> JSONResponse:
    run = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(run, dict):
        raise InvalidInput("the body must be a run object")
    await run_in_threadpool(svc.ingest_runs, ctx, who, [RunOp(run, True)])
    return _accepted()


@router.patch("/runs/{run_id}")
async def update_run(run_id: str, request: Request, ctx: Ctx, who: Who) -> JSONResponse:
    run = await json_body(request, ctx.settings.max_request_bytes)
    if not isinstance(run, dict):
        raise InvalidInput("the body must be a run object")
    await run_in_threadpool(svc.ingest_runs, ctx, who, [RunOp({**run, "id": run_id}, False)])
    return _accepted()


@router.post("/runs/multipart")
async def runs_multipart(request: Request, ctx: Ctx, who: Who) -> JSONResponse:
    body = await raw_body(request, ctx.settings.max_request_bytes)
    try:
        parts = multipart.parse(body, request.headers.get("content-type", ""))
        batch = langsmith_ops.assemble(parts)
    except (multipart.MultipartError, langsmith_ops.OpsError) as exc:
        raise InvalidInput(f"invalid multipart body: {exc}") from None
    await run_in_threadpool(svc.ingest_operations, ctx, who, batch)
    return _accepted()
