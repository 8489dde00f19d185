"""The audit log: who did what administrative action, when, with counts (never content).

Entries are written by the services that do the actions (keys, rules, channels, alert rules,
deletions, erasures, retention changes) and read by admins of the same workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import Forbidden, InvalidInput
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import audit as store
from goldloop.store import tenancy
from goldloop.store.audit import AuditEntry

MAX_LIMIT = 500
CLI = "command line"
"""The actor of actions taken with `goldloop` commands on the database (no API key)."""


@dataclass(frozen=True)
class Actor:
    key_id: str | None
    name: str


def actor_of(conn: Connection, who: Principal | None) -> Actor:
    """The API key behind a request, by name (``key <prefix>`` when it has none)."""
    if who is None:
        return Actor(None, CLI)
    for key in tenancy.list_api_keys(conn, who.workspace_id):
        if key.id == who.key_id:
            return Actor(key.id, f"{key.name} ({key.prefix}…)")
    return Actor(who.key_id, who.key_id)


def entry(
    conn: Connection,
    now: int,
    workspace_id: str,
    who: Principal | None,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an entry inside the caller's transaction (so the action and its record commit
    together)."""
    actor = actor_of(conn, who)
    store.append(
        conn,
        AuditEntry(
            workspace_id=workspace_id,
            at=now,
            actor_key_id=actor.key_id,
            actor=actor.name,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
        ),
    )


def record(
    ctx: ServiceContext,
    who: Principal | None,
    action: str,
    *,
    workspace_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an entry in a transaction of its own (after an action that committed)."""
    ws = workspace_id or (who.workspace_id if who else None)
    if ws is None:
        raise ValueError("an audit entry needs a workspace")
    now = ctx.clock()
    ctx.db.write(
        lambda c: entry(
            c,
            now,
            ws,
            who,
            action,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
    )


def view(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": to_iso(e.at),
        "actor": e.actor,
        "actor_key_id": e.actor_key_id,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "details": e.details or {},
    }


def list_entries(
    ctx: ServiceContext,
    who: Principal,
    *,
    limit: int = 100,
    before: int | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """The workspace's entries, newest first (admins only)."""
    if not who.is_admin:
        raise Forbidden("the audit log needs an admin API key")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    return ctx.db.read(
        lambda c: store.page(c, who.workspace_id, limit=limit, before=before, action=action)
    )
