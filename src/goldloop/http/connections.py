"""Connections before they are requests: a deadline for headers, a bound per client address.

uvicorn reads a request's headers with no deadline and takes any number of connections from one
address, so a client that opens connections and sends its headers a byte at a time holds sockets
for ever. Here a connection is *pending* from the moment it opens (or, on a kept-alive
connection, from the first byte of its next request) until its request's headers are complete:

- a pending connection that has not completed its headers within ``header_timeout_s`` gets
  ``408`` and is closed;
- one client address may hold at most ``max_unauthenticated_per_client`` pending connections;
  a new connection beyond that is closed at once, before anything is read.

Once its headers are complete a request reaches the app, whose ``RequestGuardMiddleware``
checks the API key before any body byte is read. uvicorn's own HTTP protocol class is
subclassed (the httptools one, from ``uvicorn[standard]``); without httptools the server runs
with uvicorn's defaults and logs that these two bounds are off.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from goldloop.settings import Settings

log = logging.getLogger("goldloop.server")

_LATE = b"request headers not received in time (setting header_timeout_s)\n"
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_LATE), _LATE)
)


class PendingConnections:
    """Per server: pending connections per client address, and what was refused."""

    def __init__(self, header_timeout_s: float, max_per_client: int) -> None:
        self.header_timeout_s = header_timeout_s
        self.max_per_client = max_per_client
        self.by_client: Counter[str] = Counter()
        self.refused = 0
        self.timed_out = 0


def protocol_class(settings: Settings) -> Any:
    """The HTTP protocol class to give ``uvicorn.Config(http=...)``: uvicorn's httptools protocol
    with the two bounds of this module, or ``"auto"`` when httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        log.warning("httptools is not installed: no header timeout, no per-client bound")
        return "auto"
    pending = PendingConnections(settings.header_timeout_s, settings.max_unauthenticated_per_client)

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        limits = pending
        _timer: asyncio.TimerHandle | None = None
        _client: str | None = None  # the address counted while pending

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            client = self.client[0] if self.client else ""
            if self.limits.by_client[client] >= self.limits.max_per_client:
                self.limits.refused += 1
                transport.abort()  # nothing read, nothing answered: a flood gets no work
                return
            self._begin_pending()

        def data_received(self, data: bytes) -> None:
            # the first byte of the next request on a kept-alive (or answered) connection
            if self._client is None and (self.cycle is None or self.cycle.response_complete):
                self._begin_pending()
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._end_pending()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._end_pending()
            super().connection_lost(exc)

        def _begin_pending(self) -> None:
            if self.transport.is_closing():
                return
            self._client = self.client[0] if self.client else ""
            self.limits.by_client[self._client] += 1
            self._timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)

        def _end_pending(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._client is not None:
                self.limits.by_client[self._client] -= 1
                if self.limits.by_client[self._client] <= 0:
                    del self.limits.by_client[self._client]
                self._client = None

        def _headers_late(self) -> None:
            self._timer = None
            self.limits.timed_out += 1
            if not self.transport.is_closing():
                if self.cycle is None or self.cycle.response_complete:
                    self.transport.write(TIMEOUT_RESPONSE)
                self.transport.close()

    return GuardedHttpToolsProtocol
