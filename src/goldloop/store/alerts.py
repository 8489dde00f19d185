"""Alert rules, their event history, and notification channels."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import alert_events, alert_rules, channels

Row = dict[str, Any]


def insert_channel(conn: Connection, row: Row) -> None:
    conn.execute(sa.insert(channels).values(**row))


def get_channel(conn: Connection, workspace_id: str, channel_id: str) -> Row | None:
    r = conn.execute(
        sa.select(channels).where(
            channels.c.workspace_id == workspace_id, channels.c.id == channel_id
        )
    ).first()
    return dict(r._mapping) if r else None


def channel_by_name(conn: Connection, workspace_id: str, name: str) -> Row | None:
    r = conn.execute(
        sa.select(channels).where(channels.c.workspace_id == workspace_id, channels.c.name == name)
    ).first()
    return dict(r._mapping) if r else None


def list_channels(conn: Connection, workspace_id: str) -> list[Row]:
    q = sa.select(channels).where(channels.c.workspace_id == workspace_id).order_by(channels.c.name)
    return [dict(r._mapping) for r in conn.execute(q)]


def delete_channel(conn: Connection, workspace_id: str, channel_id: str) -> bool:
    q = sa.delete(channels).where(
        channels.c.workspace_id == workspace_id, channels.c.id == channel_id
    )
    return conn.execute(q).rowcount > 0


def insert_rule(conn: Connection, row: Row) -> None:
    conn.execute(sa.insert(alert_rules).values(**row))


def get_rule(conn: Connection, workspace_id: str, rule_id: str) -> Row | None:
    r = conn.execute(
        sa.select(alert_rules).where(
            alert_rules.c.workspace_id == workspace_id, alert_rules.c.id == rule_id
        )
    ).first()
    return dict(r._mapping) if r else None


def list_rules(conn: Connection, workspace_id: str, project_id: str | None = None) -> list[Row]:
    q = sa.select(alert_rules).where(alert_rules.c.workspace_id == workspace_id)
    if project_id is not None:
        q = q.where(alert_rules.c.project_id == project_id)
    return [dict(r._mapping) for r in conn.execute(q.order_by(alert_rules.c.created_at))]


def update_rule(conn: Connection, workspace_id: str, rule_id: str, values: Row) -> bool:
    q = (
        sa.update(alert_rules)
        .where(alert_rules.c.workspace_id == workspace_id, alert_rules.c.id == rule_id)
        .values(**values)
    )
    return conn.execute(q).rowcount > 0


def delete_rule(conn: Connection, workspace_id: str, rule_id: str) -> bool:
    q = sa.delete(alert_rules).where(
        alert_rules.c.workspace_id == workspace_id, alert_rules.c.id == rule_id
    )
    return conn.execute(q).rowcount > 0


def due_rules(conn: Connection, now_us: int) -> list[Row]:
    """Enabled alert rules (every workspace) whose next evaluation time has come."""
    next_at = alert_rules.c.last_evaluated_at + alert_rules.c.every_s * 1_000_000
    q = (
        sa.select(alert_rules)
        .where(
            alert_rules.c.enabled.is_(True),
            sa.or_(alert_rules.c.last_evaluated_at.is_(None), next_at <= now_us),
        )
        .order_by(alert_rules.c.created_at)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def claim_rule(conn: Connection, rule_id: str, seen_evaluated_at: int | None, now_us: int) -> bool:
    """Mark a rule evaluated at ``now`` only if nobody else did since we read it, so several
    worker processes never evaluate (and notify) the same rule twice for one tick."""
    cond = (
        alert_rules.c.last_evaluated_at.is_(None)
        if seen_evaluated_at is None
        else alert_rules.c.last_evaluated_at == seen_evaluated_at
    )
    q = (
        sa.update(alert_rules)
        .where(alert_rules.c.id == rule_id, cond)
        .values(last_evaluated_at=now_us)
    )
    return conn.execute(q).rowcount > 0


def insert_event(conn: Connection, row: Row) -> None:
    conn.execute(sa.insert(alert_events).values(**row))


def list_events(conn: Connection, rule_id: str, limit: int) -> list[Row]:
    q = (
        sa.select(alert_events)
        .where(alert_events.c.alert_rule_id == rule_id)
        .order_by(alert_events.c.at.desc(), alert_events.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)]
