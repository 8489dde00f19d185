"""Attachment blobs: ``GET /attachments/{token}`` (a signed URL, no API key: what the LangSmith
SDK and the dashboard fetch) and, with an API key, ``/api/v1/attachments/...``.

Every answer carries a type a browser will not execute (``domain.attachments.served``),
``X-Content-Type-Options: nosniff`` and a sandboxing Content-Security-Policy.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from goldloop.http.deps import Ctx, Who
from goldloop.services import attachments as svc

router = APIRouter(prefix="/attachments", tags=["attachments"])
signed_router = APIRouter(include_in_schema=False)


def blob_response(blob: svc.Blob) -> FileResponse:
    return FileResponse(
        blob.path,
        media_type=blob.served.content_type,
        headers={
            "Content-Disposition": blob.served.disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=300",
            "Referrer-Policy": "no-referrer",
        },
    )


@signed_router.get("/attachments/{token}")
async def signed_attachment(token: str, ctx: Ctx) -> FileResponse:
    """The blob a signed URL (``presigned_url``) grants, until the URL expires."""
    return blob_response(await run_in_threadpool(svc.open_signed, ctx, token))


@router.get("/usage")
def attachment_usage(ctx: Ctx, who: Who) -> dict[str, Any]:
    """What the workspace's attachments take: rows, distinct blobs and their bytes."""
    return svc.usage(ctx, who)


@router.get("/{digest}", response_class=FileResponse)
async def attachment_by_digest(digest: str, ctx: Ctx, who: Who) -> FileResponse:
    """A blob by its SHA-256 hex digest, if one of this workspace's runs or examples holds it
    (another workspace's blob is a 404, even by its digest)."""
    return blob_response(await run_in_threadpool(svc.open_by_digest, ctx, who, digest))
