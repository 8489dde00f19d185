"""Outgoing notifications: enqueue into the outbox, deliver with retries, record every attempt.

Webhook requests (channels of kind ``webhook``, rule webhooks) are signed at each attempt with
the channel's or the rule's secret (``Goldloop-Signature``, see ``goldloop.webhooks``).

Delivery is at-least-once: a delivery is claimed (its next attempt pushed out by a lease) before
the HTTP call, so a worker that dies mid-call leaves it to be retried after the lease, and each
request carries an ``Idempotency-Key`` header so receivers can drop duplicates.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import Connection

from goldloop.domain.errors import OutboundRefused
from goldloop.domain.webhook_signing import SIGNATURE_HEADER, signature_header
from goldloop.services import outbound
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import deliveries as store

log = logging.getLogger("goldloop.deliveries")

BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0
LEASE_S = 60.0
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
REFUSED = "OutboundRefused: "


@dataclass(frozen=True)
class DispatchReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def enqueue(
    ctx: ServiceContext,
    conn: Connection,
    *,
    workspace_id: str,
    idempotency_key: str,
    url: str,
    body: dict[str, Any],
    channel_id: str | None = None,
    rule_id: str | None = None,
) -> bool:
    """Add a delivery inside the caller's transaction (``conn``); a repeated key is a no-op."""
    now = ctx.clock()
    return store.enqueue(
        conn,
        {
            "id": str(uuid.uuid4()),
            "workspace_id": workspace_id,
            "idempotency_key": idempotency_key,
            "channel_id": channel_id,
            "rule_id": rule_id,
            "url": url,
            "body": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
        },
    )


def backoff_s(attempt: int, retry_after: str | None) -> float:
    if retry_after is not None and retry_after.strip().isdigit():
        return min(float(retry_after.strip()), BACKOFF_MAX_S)
    return min(BACKOFF_BASE_S * 2.0 ** (attempt - 1), BACKOFF_MAX_S)


def dispatch_due(ctx: ServiceContext, http: httpx.Client, *, limit: int = 50) -> DispatchReport:
    """Attempt every delivery that is due now; returns what happened."""
    now = ctx.clock()
    sent = retrying = failed = 0
    for row in ctx.db.read(lambda c: store.due(c, now, limit)):
        lease = now + int(LEASE_S * 1_000_000)
        claim = partial(
            store.claim, delivery_id=row["id"], attempts_seen=row["attempts"], lease_until=lease
        )
        if not ctx.db.write(claim):
            continue  # another worker took it
        attempt = row["attempts"] + 1
        status_code, error, retry_after, took_ms = _post(ctx, http, row)
        ok = status_code is not None and 200 <= status_code < 300
        refused = error is not None and error.startswith(REFUSED)
        retryable = not refused and (status_code is None or status_code in RETRYABLE)
        if ok:
            outcome: dict[str, Any] = {"status": "sent", "last_error": None}
            sent += 1
        elif retryable and attempt < ctx.settings.delivery_max_attempts:
            delay = backoff_s(attempt, retry_after)
            outcome = {
                "status": "pending",
                "last_error": error,
                "next_attempt_at": ctx.clock() + int(delay * 1_000_000),
            }
            retrying += 1
        else:
            outcome = {"status": "failed", "last_error": error}
            failed += 1
        outcome["updated_at"] = ctx.clock()
        record = {
            "attempt": attempt,
            "at": ctx.clock(),
            "status_code": status_code,
            "error": error,
            "duration_ms": took_ms,
        }
        ctx.db.write(
            partial(store.record_attempt, attempt=record, delivery_id=row["id"], outcome=outcome)
        )
    return DispatchReport(sent, retrying, failed)


def _post(
    ctx: ServiceContext, http: httpx.Client, row: dict[str, Any]
) -> tuple[int | None, str | None, str | None, int]:
    started = time.perf_counter()
    body = orjson.dumps(row["body"])
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": row["idempotency_key"],
        "User-Agent": "goldloop",
    }
    secret = ctx.db.read(lambda c: store.signing_secret(c, row))
    if secret:  # webhook channels and rule webhooks; Slack and PagerDuty have their own auth
        now_s = ctx.clock() // 1_000_000
        headers[SIGNATURE_HEADER] = signature_header(secret, body, now_s)
    try:
        target = outbound.pin(ctx.settings.outbound_allowed_hosts, ctx.resolve, row["url"])
        response = http.post(
            target.url,
            content=body,
            headers={**target.headers, **headers},
            extensions=target.extensions,
            timeout=ctx.settings.delivery_timeout_s,
        )
    except OutboundRefused as exc:
        # Final: sending again would be refused again. The message names the host only.
        return None, REFUSED + exc.message, None, 0
    except httpx.HTTPError as exc:
        took = int((time.perf_counter() - started) * 1000)
        # The URL may carry a secret (Slack webhooks do): log the error class, never the URL.
        return None, f"{type(exc).__name__}: could not deliver", None, took
    took = int((time.perf_counter() - started) * 1000)
    # Only the status: the receiver's answer is not kept, so a URL aimed inside the network
    # cannot read what an internal service says through the deliveries API.
    error = None if response.is_success else f"HTTP {response.status_code}"
    return response.status_code, error, response.headers.get("retry-after"), took


def list_deliveries(
    ctx: ServiceContext, who: Principal, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    def read(c: Connection) -> list[dict[str, Any]]:
        rows = store.list_for_workspace(c, who.workspace_id, status=status, limit=limit)
        attempts = store.attempts_for(c, [r["id"] for r in rows])
        by_id: dict[str, list[dict[str, Any]]] = {}
        for a in attempts:
            by_id.setdefault(a["delivery_id"], []).append(a)
        for r in rows:
            r["attempt_log"] = by_id.get(r["id"], [])
        return rows

    return ctx.db.read(read)
