"""POST /api/v1/runs/batch: the native run ingestion endpoint (contract in CONTRACTS.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from goldloop.domain.body_encoding import decode_body
from goldloop.http.deps import Ctx, Who
from goldloop.services import ingest

router = APIRouter(tags=["ingestion"])

PROJECT_HEADER = "x-goldloop-project"


class Accepted(BaseModel):
    accepted: int


_BATCH_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["runs"],
                    "properties": {
                        "project": {"type": "string", "description": "Project name."},
                        "runs": {
                            "type": "array",
                            "items": {"type": "object", "required": ["id", "trace_id"]},
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/runs/batch",
    status_code=202,
    response_model=Accepted,
    openapi_extra=_BATCH_SCHEMA,
    summary="Create or update runs (upsert by id; gzip accepted)",
)
async def runs_batch(request: Request, ctx: Ctx, who: Who) -> JSONResponse:
    """Each item is an upsert of one run keyed by ``id``; absent or null fields are unchanged.
    Answers 202 only after the batch is committed; 503 + Retry-After when the server is full."""
    raw = await request.body()
    body = decode_body(raw, request.headers.get("content-encoding"), ctx.settings.max_request_bytes)
    project = request.headers.get(PROJECT_HEADER)
    count = await run_in_threadpool(
        ingest.ingest_native_body, ctx, who, body, header_project=project
    )
    return JSONResponse({"accepted": count}, status_code=202)
