"""The exporter's HTTP side: senders, and the delivery of one request body with retries.

Imported by the exporter's worker thread, never by a traced call (it imports httpx). One
``Sender`` is shared by every sending thread: an ``httpx.Client`` is thread-safe and keeps a
connection per request in flight. An async transport (``httpx.ASGITransport`` for an
in-process app) gets a private event loop per sending thread.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from goldloop.sdk.client_base import retry_after_s

RETRY_STATUSES = frozenset({408, 429})
MAX_BACKOFF_S = 10.0


class Sender:
    """Posts bytes with one sync httpx client (any sync transport, by default real sockets)."""

    def __init__(self, transport: httpx.BaseTransport | None, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.Client(transport=transport, follow_redirects=False, limits=limits)

    def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> httpx.Response:
        return self._client.post(url, content=body, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()


class AsyncTransportSender:
    """Same, over an async transport: each sending thread runs its own event loop and client."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport
        self._local = threading.local()
        self._lock = threading.Lock()
        self._made: list[tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = []

    def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> httpx.Response:
        pair: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None
        pair = getattr(self._local, "pair", None)
        if pair is None:
            pair = (asyncio.new_event_loop(), httpx.AsyncClient(transport=self._transport))
            self._local.pair = pair
            with self._lock:
                self._made.append(pair)
        loop, client = pair
        coro = client.post(url, content=body, headers=headers, timeout=timeout)
        response: httpx.Response = loop.run_until_complete(asyncio.wait_for(coro, timeout))
        return response

    def close(self) -> None:
        with self._lock:
            made, self._made = self._made, []
        for loop, client in made:
            loop.run_until_complete(client.aclose())
            loop.close()


def make_sender(
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None, connections: int
) -> Sender | AsyncTransportSender:
    if isinstance(transport, httpx.AsyncBaseTransport):
        return AsyncTransportSender(transport)
    return Sender(transport, connections)


@dataclass
class Outcome:
    """How one request body ended: ``sent``, ``too_large`` (413), ``rejected`` (another 4xx)
    or ``failed`` (retries ran out, or the shutdown deadline came)."""

    kind: str
    reason: str = ""
    tries: int = 1
    congested: bool = False  # some try got 429/503 or timed out: the server is at its limit


class Backoff:
    """``Retry-After`` shared by every sending thread: when the server asks one request to wait,
    new requests wait too instead of adding to its load."""

    def __init__(self) -> None:
        self.until = 0.0

    def hold(self, until: float) -> None:
        self.until = max(self.until, until)


def deliver(
    sender: Sender | AsyncTransportSender,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    retry_s: float,
    endpoint: str,
    endpoint_source: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    deadline: Callable[[], float | None],
    backoff: Backoff,
) -> Outcome:
    """POST ``body`` until it is accepted, refused, or retrying must stop.

    408, 429, 5xx and connection errors are retried with exponential backoff and jitter,
    honouring ``Retry-After``, for at most ``retry_s`` (and never past the shutdown deadline).
    """
    give_up_at = clock() + retry_s
    wait = backoff.until - clock()
    if wait > 0:
        if clock() + wait > _limit(give_up_at, deadline()):
            return Outcome("failed", "the server asked to wait past the retry budget", 0)
        sleep(wait)
    attempt = 0
    congested = False
    while True:
        resp: httpx.Response | None = None
        limit = _limit(give_up_at, deadline())
        timeout = max(0.05, min(timeout_s, limit - clock()))
        try:
            resp = sender.post(url, body, headers, timeout)
            status: int | None = resp.status_code
            reason = f"HTTP {status}"
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            status, reason = None, f"{type(exc).__name__}: {exc}"
            congested = congested or isinstance(exc, TimeoutError | httpx.TimeoutException)
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | OSError):
                reason = (
                    f"cannot reach {endpoint} (endpoint from {endpoint_source}; "
                    f"is the server running there?): {reason}"
                )
        congested = congested or status in (429, 503)
        if status is not None and 200 <= status < 300:
            return Outcome("sent", tries=attempt + 1, congested=congested)
        if status == 413:
            return Outcome("too_large", reason, attempt + 1, congested)
        if status is not None and status < 500 and status not in RETRY_STATUSES:
            detail = resp.text[:300] if resp is not None else ""
            return Outcome("rejected", f"{reason} {detail}".strip(), attempt + 1, congested)
        delay = retry_after_s(resp)
        if delay is not None and status in (429, 503):
            backoff.hold(clock() + delay)
        if delay is None:
            delay = min(0.5 * 2**attempt, MAX_BACKOFF_S) * (0.5 + random.random() / 2)
        if clock() + delay > _limit(give_up_at, deadline()):
            return Outcome("failed", reason, attempt + 1, congested)
        attempt += 1
        sleep(delay)


def _limit(give_up_at: float, deadline: float | None) -> float:
    return give_up_at if deadline is None else min(give_up_at, deadline)
