"""Request bodies as a pure ASGI middleware: bounded in size, in total, and in time.

Each body is read in full before the app sees it, and only after ``RequestGuardMiddleware`` has
checked who is asking. While it is read:

- its size is bounded: ``max_request_bytes`` for a request with a valid API key,
  ``max_public_request_bytes`` for one without; a larger body gets 413 (at once when its
  ``Content-Length`` says so);
- the bytes of all bodies held by the process at once are bounded by ``BodyBudget``
  (``max_body_bytes_in_flight``): a body that would go beyond it gets 503 with ``Retry-After``;
  its bytes count until the app has answered;
- it must keep pace: it must be complete within ``body_timeout_s`` plus one second for every
  ``body_min_rate`` bytes received, else 408.

Each of these answers closes the connection (``Connection: close``): the rest of the body is
never read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from goldloop.http.errors import error_response

CLOSE = {"Connection": "close"}


class BodyBudget:
    """Bytes of request bodies held by the process, summed over requests, and a bound on them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self.refused = 0

    def take(self, n: int) -> bool:
        if self.held + n > self.max_bytes:
            self.refused += 1
            return False
        self.held += n  # one event loop: no lock needed
        return True

    def give_back(self, n: int) -> None:
        self.held -= n


def is_authenticated(scope: Scope) -> bool:
    """True once ``RequestGuardMiddleware`` has accepted the request's API key."""
    return scope.get("state", {}).get("principal") is not None


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        public_max_bytes: int | None = None,
        budget: BodyBudget | None = None,
        timeout_s: float = 10.0,
        min_rate: int = 16 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.public_max_bytes = max_bytes if public_max_bytes is None else public_max_bytes
        self.budget = budget or BodyBudget(4 * max_bytes)
        self.timeout_s = timeout_s
        self.min_rate = min_rate
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes if is_authenticated(scope) else self.public_max_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(limit, scope, receive, send)
            return
        held = 0
        try:
            chunks: list[bytes] = []
            deadline = self.clock() + self.timeout_s
            more = True
            while more:
                try:
                    message = await asyncio.wait_for(receive(), deadline - self.clock())
                except TimeoutError:
                    await self._too_slow(held, scope, receive, send)
                    return
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if held + len(chunk) > limit:
                    await self._too_large(limit, scope, receive, send)
                    return
                if not self.budget.take(len(chunk)):
                    await self._over_budget(scope, receive, send)
                    return
                held += len(chunk)
                chunks.append(chunk)
                deadline += len(chunk) / self.min_rate
                more = message.get("more_body", False)
            body = b"".join(chunks)
            del chunks
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.budget.give_back(held)

    async def _too_large(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        setting = "max_request_bytes" if limit == self.max_bytes else "max_public_request_bytes"
        response = error_response(
            413,
            "payload_too_large",
            f"request body is larger than the limit of {limit} bytes (setting {setting} / "
            f"GOLDLOOP_{setting.upper()}); send smaller batches",
            {"limit_bytes": limit},
            headers=CLOSE,
        )
        await response(scope, receive, send)

    async def _over_budget(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            503,
            "overloaded",
            f"the server holds {self.budget.held} bytes of request bodies, its limit "
            "(setting max_body_bytes_in_flight); retry shortly",
            headers={**CLOSE, "Retry-After": "1"},
        )
        await response(scope, receive, send)

    async def _too_slow(self, received: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            408,
            "request_timeout",
            f"the request body arrived too slowly ({received} bytes received; it must arrive "
            f"within {self.timeout_s:g} s plus 1 s per {self.min_rate} bytes, settings "
            "body_timeout_s and body_min_rate)",
            headers=CLOSE,
        )
        await response(scope, receive, send)
