"""The outbox of outgoing HTTP notifications and the record of every attempt."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import channels, deliveries, delivery_attempts, rules

Row = dict[str, Any]


def enqueue(conn: Connection, row: Row) -> bool:
    """Insert a delivery unless one with the same idempotency key exists; True if inserted."""
    exists = conn.execute(
        sa.select(deliveries.c.id).where(deliveries.c.idempotency_key == row["idempotency_key"])
    ).first()
    if exists:
        return False
    conn.execute(sa.insert(deliveries).values(**row))
    return True


def due(conn: Connection, now_us: int, limit: int) -> list[Row]:
    q = (
        sa.select(deliveries)
        .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now_us)
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def claim(conn: Connection, delivery_id: str, attempts_seen: int, lease_until: int) -> bool:
    """Take a due delivery for one attempt (optimistic: another worker that read the same row
    loses), pushing its next attempt time out to ``lease_until`` in case this worker dies."""
    q = (
        sa.update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.status == "pending",
            deliveries.c.attempts == attempts_seen,
        )
        .values(attempts=attempts_seen + 1, next_attempt_at=lease_until)
    )
    return conn.execute(q).rowcount > 0


def record_attempt(conn: Connection, attempt: Row, delivery_id: str, outcome: Row) -> None:
    conn.execute(sa.insert(delivery_attempts).values(delivery_id=delivery_id, **attempt))
    conn.execute(sa.update(deliveries).where(deliveries.c.id == delivery_id).values(**outcome))


def list_for_workspace(
    conn: Connection, workspace_id: str, *, status: str | None, limit: int
) -> list[Row]:
    q = sa.select(deliveries).where(deliveries.c.workspace_id == workspace_id)
    if status:
        q = q.where(deliveries.c.status == status)
    q = q.order_by(deliveries.c.created_at.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


def attempts_for(conn: Connection, delivery_ids: list[str]) -> list[Row]:
    if not delivery_ids:
        return []
    q = (
        sa.select(delivery_attempts)
        .where(delivery_attempts.c.delivery_id.in_(delivery_ids))
        .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.attempt)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def signing_secret(conn: Connection, row: Row) -> str | None:
    """The key that signs this delivery: its channel's or its rule's (None: send unsigned)."""
    if row.get("channel_id"):
        table, object_id = channels, row["channel_id"]
    elif row.get("rule_id"):
        table, object_id = rules, row["rule_id"]
    else:
        return None
    q = sa.select(table.c.signing_secret).where(
        table.c.id == object_id, table.c.workspace_id == row["workspace_id"]
    )
    value = conn.execute(q).scalar()
    return str(value) if value else None
