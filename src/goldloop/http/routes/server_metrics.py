"""``GET /metrics``: the server's own health in Prometheus text format, for an admin key.

Requests by route, ingestion, the write queue, the database pool, worker liveness and the rule
backlog (see ``services.server_health``). The rules listed are the admin's workspace's; the
operator's metrics port (``metrics_port``, ``http.metrics_port``) lists every workspace's.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from goldloop.http.deps import Admin, Ctx
from goldloop.services import server_health

router = APIRouter(tags=["metrics"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=PlainTextResponse)
def server_metrics(ctx: Ctx, who: Admin) -> PlainTextResponse:
    """Server health for a Prometheus scrape with an admin API key (bearer token)."""
    return PlainTextResponse(server_health.exposition(ctx, who), media_type=CONTENT_TYPE)
