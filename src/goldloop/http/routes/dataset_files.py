"""/api/v1/datasets/{dataset}/export and /import: JSONL, CSV and Parquet."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from goldloop.domain import example_formats as formats
from goldloop.domain.errors import InvalidInput
from goldloop.http.deps import Ctx, Who
from goldloop.http.routes.datasets import AS_OF_HELP
from goldloop.http.routes.examples import WriteOut
from goldloop.services import dataset_io as svc

router = APIRouter(prefix="/datasets/{dataset}", tags=["datasets"])


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {t: {} for t in formats.MEDIA_TYPES.values()}}},
)
def export_dataset(
    dataset: str,
    ctx: Ctx,
    who: Who,
    format: str = Query(default="jsonl", description="jsonl, csv or parquet."),
    as_of: str | None = Query(default=None, description=AS_OF_HELP),
) -> Response:
    """The examples of one version as a file (see docs/datasets.md for the formats). Headers
    `X-Goldloop-Dataset-Version` and `X-Goldloop-Example-Count` say what was exported."""
    out = svc.export(ctx, who, dataset, format, as_of)
    return Response(
        content=out.data,
        media_type=out.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(out.filename)}",
            "X-Goldloop-Dataset-Version": str(out.version),
            "X-Goldloop-Example-Count": str(out.count),
        },
    )


@router.post(
    "/import",
    status_code=201,
    response_model=WriteOut,
    openapi_extra={
        "requestBody": {"content": {t: {} for t in formats.MEDIA_TYPES.values()}, "required": True}
    },
)
async def import_dataset(
    dataset: str,
    request: Request,
    ctx: Ctx,
    who: Who,
    format: str | None = Query(
        default=None, description="jsonl, csv or parquet; default from the Content-Type."
    ),
    message: str | None = Query(default=None, description="Note stored on the new version."),
) -> WriteOut:
    """Add a file's examples as one new version. Examples whose id exists are updated when
    different and kept when equal: importing the same file twice changes nothing."""
    fmt = format or formats.format_for_media_type(request.headers.get("content-type"))
    if fmt is None:
        raise InvalidInput(
            "say which format the body is: ?format=jsonl|csv|parquet, or Content-Type "
            "application/x-ndjson, text/csv or application/vnd.apache.parquet",
            details={"field": "format"},
        )
    formats.check_format(fmt)
    body = await request.body()
    result = await run_in_threadpool(svc.import_file, ctx, who, dataset, body, fmt, message=message)
    return WriteOut.of(result)
