"""A bound on ingestion requests in flight, checked before their bodies are read.

Ingestion bodies can be large (up to ``max_request_bytes`` each) and are read in full before a
handler runs, so the number of such requests in the process bounds the memory they hold. Beyond
``ingest_max_inflight`` the server answers 503 with ``Retry-After`` at once, without reading the
body; every OTLP exporter and the Goldloop SDK retry 503.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from goldloop.http.errors import error_response

INGEST_PATHS = frozenset({"/v1/traces", "/v1/logs", "/api/v1/runs/batch"})


def ingest_paths(otlp_prefix: str = "") -> frozenset[str]:
    """The gated paths, including the OTLP ones under an extra prefix."""
    extra = {f"{otlp_prefix}/v1/traces", f"{otlp_prefix}/v1/logs"} if otlp_prefix else set()
    return INGEST_PATHS | extra


class IngestGateMiddleware:
    def __init__(self, app: ASGIApp, max_inflight: int, paths: frozenset[str] = INGEST_PATHS):
        self.app = app
        self.max_inflight = max_inflight
        self.paths = paths
        self.inflight = 0
        self.rejected = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            self.rejected += 1
            response = error_response(
                503,
                "overloaded",
                f"{self.inflight} ingestion requests are already in progress "
                "(setting ingest_max_inflight); retry shortly",
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        self.inflight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
