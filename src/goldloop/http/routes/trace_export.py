"""GET /api/v1/projects/{id}/export: a project's runs (or a filtered set) as OTLP/JSON Lines."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from goldloop.http.deps import Ctx, Who
from goldloop.services import trace_export

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
