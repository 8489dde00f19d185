"""GET /api/v1/projects/{id}/export: a project's runs (or a filtered set) as OTLP/JSON Lines;
GET /api/v1/export: the whole workspace as a .tar.gz (admin; docs/export.md)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from goldloop.http.deps import Admin, Ctx, Who
from goldloop.services import trace_export, workspace_export

router = APIRouter(tags=["projects"])


@router.get(
    "/projects/{project_id}/export",
    response_class=StreamingResponse,
    summary="Export a project's runs as OTLP/JSON Lines",
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export_project(
    project_id: str,
    ctx: Ctx,
    who: Who,
    filter: str | None = Query(
        None, description="Only the runs that match this filter (the run filter language)."
    ),
    whole_traces: bool = Query(
        False, description="With a filter: every run of each trace that has a matching run."
    ),
) -> StreamingResponse:
    """Each line is an OTLP/JSON ExportTraceServiceRequest with GenAI attribute names; post the
    lines to ``/v1/traces`` (``goldloop traces import``) to load them again. The project is an
    id or a name. An invalid filter is a 400 naming the position, before anything is
    streamed."""
    lines = trace_export.export_project(
        ctx, who, project_id, filter=filter, whole_traces=whole_traces
    )
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.get(
    "/export",
    response_class=FileResponse,
    tags=["export"],
    summary="Export the whole workspace (admin): JSON Lines with a manifest, as .tar.gz",
    responses={200: {"content": {"application/gzip": {}}}},
)
def export_workspace(
    ctx: Ctx,
    who: Admin,
    project: Annotated[
        list[str], Query(description="Only these projects (ids or names; repeat the parameter).")
    ] = [],  # noqa: B006 (FastAPI copies a list default per request)
    dataset: Annotated[
        list[str], Query(description="Only these datasets (ids or names; repeat the parameter).")
    ] = [],  # noqa: B006
    otlp: bool = Query(True, description="Include traces.otlp.jsonl."),
) -> FileResponse:
    """The format of `goldloop export` (docs/export.md), secrets left out. The archive is built
    in full before the first byte is sent, so a large workspace takes a while to answer; load
    it into another server with `goldloop import`."""
    path = workspace_export.export_archive(
        ctx, who, project_refs=project, dataset_refs=dataset, otlp=otlp
    )
    return FileResponse(
        path,
        media_type="application/gzip",
        filename=path.name,
        background=BackgroundTask(partial(workspace_export.discard, path)),
    )
