"""Dashboard sessions: rows keyed by the hash of the session token."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import api_keys, dashboard_sessions, workspaces


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_hash: str
    workspace_id: str
    workspace_name: str
    key_id: str
    key_name: str
    role: str
    csrf_token: str
    created_at: int
    expires_at: int


def insert(
    conn: Connection,
    *,
    token_hash: str,
    workspace_id: str,
    key_id: str,
    csrf_token: str,
    created_at: int,
    expires_at: int,
) -> None:
    conn.execute(
        sa.insert(dashboard_sessions).values(
            token_hash=token_hash,
            workspace_id=workspace_id,
            key_id=key_id,
            csrf_token=csrf_token,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


def find_live(conn: Connection, token_hash: str, now: int) -> SessionRow | None:
    """The session if it exists, has not expired, and its API key is still active."""
    s, k, w = dashboard_sessions.c, api_keys.c, workspaces.c
    query = (
        sa.select(
            s.token_hash,
            s.workspace_id,
            w.name.label("workspace_name"),
            s.key_id,
            k.name.label("key_name"),
            k.role,
            s.csrf_token,
            s.created_at,
            s.expires_at,
        )
        .select_from(
            dashboard_sessions.join(api_keys, k.id == s.key_id).join(
                workspaces, w.id == s.workspace_id
            )
        )
        .where(
            s.token_hash == token_hash,
            s.expires_at > now,
            k.revoked_at.is_(None),
            # A key moved to another workspace would not keep this session's workspace.
            k.workspace_id == s.workspace_id,
        )
    )
    row = conn.execute(query).first()
    return SessionRow(**row._mapping) if row else None


def delete(conn: Connection, token_hash: str) -> bool:
    result = conn.execute(
        sa.delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == token_hash)
    )
    return result.rowcount > 0


def delete_expired(conn: Connection, now: int) -> int:
    result = conn.execute(
        sa.delete(dashboard_sessions).where(dashboard_sessions.c.expires_at <= now)
    )
    return int(result.rowcount)
