"""Every request gets an id, a duration, a log line and a count (the outermost middleware).

- ``X-Request-ID``: taken from the request when it is a sane token (1-128 letters, digits and
  ``._:-``), else a new one; always echoed on the response and on the request's log line.
- One log record per request on ``goldloop.http``: method, route template, status, duration in
  ms, request id. The path is logged without its query string; headers never are. Successful
  health probes (``/healthz``, ``/readyz``) log at debug level.
- ``Telemetry``: requests and durations by method and *route template* (``/api/v1/rules/{id}``,
  never the raw path: the number of series is bounded by the number of routes); ingestion
  requests refused, by reason.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from goldloop.domain.telemetry import UNMATCHED_ROUTE, Telemetry, rejection_reason

log = logging.getLogger("goldloop.http")

HEADER = "x-request-id"
PROBES = frozenset({"/healthz", "/readyz"})
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == HEADER.encode():
            text = value.decode("latin-1")
            if _SANE_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``/api/v1/projects/{project_id}``).

    A route included under a prefix knows its path without the prefix; the prefix is the part
    of the request path before where the route's own pattern matches (our prefixes are fixed
    strings, so the label stays one of a bounded set whatever the client sends)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str) or pattern is None:
        return UNMATCHED_ROUTE
    path = str(scope.get("path", ""))
    suffix = "/{path}" if isinstance(route, Mount) else ""
    for at in [i for i, ch in enumerate(path) if ch == "/"]:
        if pattern.match(path[at:]):
            return path[:at] + template + suffix
    return template + suffix


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, telemetry: Telemetry, ingest_paths: frozenset[str]):
        self.app = app
        self.telemetry = telemetry
        self.ingest_paths = ingest_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(list(scope.get("headers") or ()))
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500  # what the client sees when the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, rid, status, time.perf_counter() - started)

    def _record(self, scope: Scope, rid: str, status: int, duration_s: float) -> None:
        method = str(scope.get("method", ""))
        route = route_of(scope)
        path = str(scope.get("path", ""))
        self.telemetry.request(method, route, status, duration_s)
        if status >= 400 and path in self.ingest_paths:
            self.telemetry.ingest_rejected(rejection_reason(status))
        # health probes come every few seconds: at debug level, so they do not drown the log
        level = logging.DEBUG if path in PROBES and status < 400 else logging.INFO
        log.log(
            level,
            "%s %s %d %.1fms",
            method,
            path,
            status,
            duration_s * 1000,
            extra={
                "request_id": rid,
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": round(duration_s * 1000, 3),
            },
        )
