"""The audit log of administrative actions: append one entry, read a workspace's page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    workspace_id: str
    at: int
    actor_key_id: str | None
    actor: str
    action: str
    target_type: str | None = None
    target_id: str | None = None
    details: dict[str, Any] | None = None
    id: int = 0  # assigned by the database


def append(conn: Connection, entry: AuditEntry) -> None:
    conn.execute(
        sa.insert(audit_log).values(
            workspace_id=entry.workspace_id,
            at=entry.at,
            actor_key_id=entry.actor_key_id,
            actor=entry.actor[:200],
            action=entry.action,
            target_type=entry.target_type,
            target_id=None if entry.target_id is None else entry.target_id[:200],
            details=entry.details,
        )
    )


def page(
    conn: Connection,
    workspace_id: str,
    *,
    limit: int,
    before: int | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """Newest first; ``before`` is the id of the last entry of the previous page."""
    query = (
        sa.select(audit_log)
        .where(audit_log.c.workspace_id == workspace_id)
        .order_by(audit_log.c.pk.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(audit_log.c.pk < before)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    out = []
    for row in conn.execute(query):
        m = row._mapping
        out.append(
            AuditEntry(
                workspace_id=m["workspace_id"],
                at=m["at"],
                actor_key_id=m["actor_key_id"],
                actor=m["actor"],
                action=m["action"],
                target_type=m["target_type"],
                target_id=m["target_id"],
                details=m["details"],
                id=int(m["pk"]),
            )
        )
    return out
