"""The LangSmith SDK pointed at the server's root instead of ``/langsmith``: say how to fix it.

With ``LANGSMITH_ENDPOINT=http://HOST:8700`` (no ``/langsmith``) the SDK posts its runs to
``/runs/batch`` or ``/runs/multipart`` of Goldloop's root, which would answer with a 404 or 405
about Goldloop's own API, and the traced script still exits 0. A request that is recognisably
the SDK's (its ``User-Agent``, ``langsmith-py/...`` or ``langsmith-js/...``, or a path only it
uses) outside ``/langsmith`` gets a 404 whose message says which ``LANGSMITH_ENDPOINT`` to set;
the SDK puts the response body in the warning it logs ("Failed to batch ingest runs: ...").
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from goldloop.http.errors import error_response

PREFIX = "/langsmith"
# Paths only the LangSmith SDK uses at the root (Goldloop's own batch route is under /api/v1).
SDK_ONLY_PATHS = frozenset({"/runs/batch", "/runs/multipart", "/info"})
SDK_USER_AGENTS = (b"langsmith-py/", b"langsmith-js/")


def is_misrouted_sdk_request(path: str, user_agent: bytes) -> bool:
    """True for a LangSmith SDK request that missed the ``/langsmith`` prefix."""
    if path == PREFIX or path.startswith(PREFIX + "/") or path.startswith("/v1/"):
        return False
    return path in SDK_ONLY_PATHS or user_agent.startswith(SDK_USER_AGENTS)


def hint(base_url: str) -> str:
    endpoint = f"{base_url.rstrip('/')}{PREFIX}"
    return (
        f"this is Goldloop, whose LangSmith-compatible API lives under {PREFIX}: set "
        f"LANGSMITH_ENDPOINT={endpoint} (nothing sent to this address is stored)"
    )


class MisroutedLangSmithMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if not path.startswith(("/v1/", PREFIX)):  # OTLP and the right prefix: untouched
                headers = dict(scope.get("headers") or ())
                if is_misrouted_sdk_request(path, headers.get(b"user-agent", b"")):
                    host = headers.get(b"host", b"").decode("latin-1")
                    base = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"
                    await error_response(404, "not_found", hint(base))(scope, receive, send)
                    return
        await self.app(scope, receive, send)
