"""What the server reports about itself from the database: worker heartbeats and the rule
action backlog (pending actions per rule, the oldest one's age). Read from rows, never from a
live worker's memory, so the numbers stay true when every worker is dead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import rule_actions, rules, worker_heartbeats

PENDING = ("pending",)
"""Action statuses that are work still to do (a claimed action stays ``pending`` until done)."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    id: str
    host: str
    pid: int
    version: str
    started_at: int
    last_seen_at: int
    stopped_at: int | None
    loops: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RuleBacklog:
    rule_id: str
    workspace_id: str
    name: str
    pending: int
    oldest_pending_at: int | None
    """created_at of the rule's oldest pending action (None: nothing pending)."""


def beat(conn: Connection, row: dict[str, Any]) -> None:
    """Insert or refresh a worker's row (``row`` has every column)."""
    updated = conn.execute(
        sa.update(worker_heartbeats)
        .where(worker_heartbeats.c.id == row["id"])
        .values(last_seen_at=row["last_seen_at"], stopped_at=row["stopped_at"], loops=row["loops"])
    ).rowcount
    if not updated:
        conn.execute(sa.insert(worker_heartbeats).values(**row))


def forget_before(conn: Connection, stopped_before: int, seen_before: int) -> int:
    """Delete rows of workers stopped before ``stopped_before`` or silent since
    ``seen_before`` (long dead); keeps the table as small as the fleet."""
    return conn.execute(
        sa.delete(worker_heartbeats).where(
            sa.or_(
                worker_heartbeats.c.stopped_at < stopped_before,
                worker_heartbeats.c.last_seen_at < seen_before,
            )
        )
    ).rowcount


def heartbeats(conn: Connection) -> list[Heartbeat]:
    query = sa.select(worker_heartbeats).order_by(
        worker_heartbeats.c.started_at, worker_heartbeats.c.id
    )
    return [
        Heartbeat(
            id=r.id,
            host=r.host,
            pid=r.pid,
            version=r.version,
            started_at=r.started_at,
            last_seen_at=r.last_seen_at,
            stopped_at=r.stopped_at,
            loops=r.loops if isinstance(r.loops, dict) else {},
        )
        for r in conn.execute(query)
    ]


def rule_backlog(conn: Connection, workspace_id: str | None) -> list[RuleBacklog]:
    """Every rule (of ``workspace_id``, or of all workspaces when None) with its pending
    actions and the oldest one's creation time: one grouped query."""
    pending = (
        sa.select(
            rule_actions.c.rule_id,
            sa.func.count().label("n"),
            sa.func.min(rule_actions.c.created_at).label("oldest"),
        )
        .where(rule_actions.c.status.in_(PENDING))
        .group_by(rule_actions.c.rule_id)
        .subquery()
    )
    query = (
        sa.select(rules.c.id, rules.c.workspace_id, rules.c.name, pending.c.n, pending.c.oldest)
        .select_from(rules.outerjoin(pending, pending.c.rule_id == rules.c.id))
        .order_by(rules.c.workspace_id, rules.c.id)
    )
    if workspace_id is not None:
        query = query.where(rules.c.workspace_id == workspace_id)
    return [
        RuleBacklog(
            rule_id=r.id,
            workspace_id=r.workspace_id,
            name=r.name,
            pending=int(r.n or 0),
            oldest_pending_at=int(r.oldest) if r.oldest is not None else None,
        )
        for r in conn.execute(query)
    ]
