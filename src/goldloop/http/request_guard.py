"""Who is asking, from the headers alone, before a request takes a slot or sends a body byte.

A request to a path that needs an API key (``/api/v1/...``, the OTLP ``/v1/...`` receiver, the
LangSmith-compatible API) without a valid key gets 401 here, straight after its headers, with
``Connection: close``: it never takes an ingestion slot (``IngestGateMiddleware``) and never has
its body read (``BodyLimitMiddleware``). A valid key's principal is kept in the request's state,
so the routes do not look it up again.

Per client address, the requests in flight without a valid key (having their key checked, or
reading a body on a path that needs none: dashboard forms, sign-in) are bounded by
``max_unauthenticated_per_client``; beyond it they get 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections import Counter

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from goldloop.domain.errors import Unauthenticated
from goldloop.http.deps import key_from
from goldloop.http.errors import error_response, goldloop_error_response
from goldloop.services import auth
from goldloop.services.context import ServiceContext

API_PREFIX = "/api/v1"
# Paths under /api/v1 that anyone may read: the OpenAPI schema and its documentation page.
PUBLIC_API_PATHS = (f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs")
LANGSMITH_PUBLIC = frozenset({"/langsmith/info", "/langsmith/api/v1/info"})


def needs_key(path: str, otlp_prefix: str = "") -> bool:
    """True for a path whose every route requires an API key."""
    if path == "/metrics":  # the server's own metrics: an admin key
        return True
    if path.startswith(API_PREFIX + "/"):
        return not path.startswith(PUBLIC_API_PATHS)
    if path.startswith("/v1/") or (otlp_prefix and path.startswith(otlp_prefix + "/v1/")):
        return True
    return path.startswith("/langsmith/") and path not in LANGSMITH_PUBLIC


def has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length", b"0")
    return b"transfer-encoding" in headers or not length.isdigit() or int(length) > 0


class RequestGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        ctx: ServiceContext,
        otlp_prefix: str = "",
        max_per_client: int = 32,
    ) -> None:
        self.app = app
        self.ctx = ctx
        self.otlp_prefix = otlp_prefix
        self.max_per_client = max_per_client
        self.unauthenticated: Counter[str] = Counter()
        self.refused = 0
        self.too_many = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        keyed = needs_key(scope.get("path", ""), self.otlp_prefix)
        if not keyed and not has_body(headers):
            await self.app(scope, receive, send)  # a page, an asset, a health check
            return
        client = scope["client"][0] if scope.get("client") else ""
        if self.unauthenticated[client] >= self.max_per_client:
            self.too_many += 1
            message = (
                f"this address has {self.max_per_client} requests without an API key in "
                "progress (setting max_unauthenticated_per_client); retry shortly"
            )
            response = error_response(
                429, "too_many_requests", message, headers={"Retry-After": "1"}
            )
            await self._answer(response, scope, send)
            return
        self.unauthenticated[client] += 1
        counted = True
        try:
            if keyed:
                key = key_from(
                    headers.get(b"x-api-key", b"").decode("latin-1"),
                    headers.get(b"authorization", b"").decode("latin-1"),
                )
                try:
                    if key is None:  # raises at once: no key, no database read
                        principal = auth.authenticate(self.ctx, None)
                    else:
                        principal = await run_in_threadpool(auth.authenticate, self.ctx, key)
                except Unauthenticated as exc:
                    self.refused += 1
                    await self._answer(goldloop_error_response(exc), scope, send)
                    return
                scope.setdefault("state", {})["principal"] = principal
                self._release(client)
                counted = False
            await self.app(scope, receive, send)
        finally:
            if counted:
                self._release(client)

    def _release(self, client: str) -> None:
        self.unauthenticated[client] -= 1
        if self.unauthenticated[client] <= 0:
            del self.unauthenticated[client]

    @staticmethod
    async def _answer(response: Response, scope: Scope, send: Send) -> None:
        """Answer without reading the body, and close the connection: its body stays unread."""
        response.headers["Connection"] = "close"

        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)
