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
    actions and the oldest one's creation time. Per rule, the count and the smallest ``pk`` of
    its pending actions are ranges of the (rule_id, status, pk, ...) index, read without the
    action rows or the other rules' backlog (a pk is given in creation order, so the smallest
    is the oldest); then one query reads the creation time of those oldest actions."""

    def of_rule(value: Any) -> Any:
        return (
            sa.select(value)
            .where(rule_actions.c.rule_id == rules.c.id, rule_actions.c.status.in_(PENDING))
            .scalar_subquery()
        )

    query = sa.select(
        rules.c.id,
        rules.c.workspace_id,
        rules.c.name,
        of_rule(sa.func.count()).label("n"),
        of_rule(sa.func.min(rule_actions.c.pk)).label("first"),
    ).order_by(rules.c.workspace_id, rules.c.id)
    if workspace_id is not None:
        query = query.where(rules.c.workspace_id == workspace_id)
    found = conn.execute(query).all()
    firsts = [int(r.first) for r in found if r.first is not None]
    created: dict[int, int] = {}
    if firsts:
        times = sa.select(rule_actions.c.pk, rule_actions.c.created_at).where(
            rule_actions.c.pk.in_(firsts)
        )
        created = {int(pk): int(at) for pk, at in conn.execute(times)}
    return [
        RuleBacklog(
            rule_id=r.id,
            workspace_id=r.workspace_id,
            name=r.name,
            pending=int(r.n or 0),
            oldest_pending_at=created.get(int(r.first)) if r.first is not None else None,
        )
        for r in found
    ]
