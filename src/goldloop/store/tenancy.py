"""Workspaces and API keys."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import api_keys, workspaces


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: str
    workspace_id: str
    name: str
    prefix: str
    role: str
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class WorkspaceRow:
    id: str
    name: str
    created_at: int


def count_workspaces(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(workspaces)).scalar_one())


def insert_workspace(conn: Connection, ws: WorkspaceRow) -> None:
    conn.execute(sa.insert(workspaces).values(id=ws.id, name=ws.name, created_at=ws.created_at))


def get_workspace_by_name(conn: Connection, name: str) -> WorkspaceRow | None:
    row = conn.execute(sa.select(workspaces).where(workspaces.c.name == name)).first()
    return WorkspaceRow(row.id, row.name, row.created_at) if row else None


def list_workspaces(conn: Connection) -> list[WorkspaceRow]:
    rows = conn.execute(sa.select(workspaces).order_by(workspaces.c.created_at))
    return [WorkspaceRow(r.id, r.name, r.created_at) for r in rows]


def insert_api_key(conn: Connection, key: ApiKeyRow, key_hash: str) -> None:
    conn.execute(
        sa.insert(api_keys).values(
            id=key.id,
            workspace_id=key.workspace_id,
            name=key.name,
            prefix=key.prefix,
            key_hash=key_hash,
            role=key.role,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
    )


def _key_row(row: sa.Row[tuple[object, ...]]) -> ApiKeyRow:
    m = row._mapping
    return ApiKeyRow(
        id=m["id"],
        workspace_id=m["workspace_id"],
        name=m["name"],
        prefix=m["prefix"],
        role=m["role"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


def find_active_key(conn: Connection, key_hash: str) -> ApiKeyRow | None:
    row = conn.execute(
        sa.select(api_keys).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    ).first()
    return _key_row(row) if row else None


def list_api_keys(conn: Connection, workspace_id: str | None = None) -> list[ApiKeyRow]:
    query = sa.select(api_keys).order_by(api_keys.c.created_at)
    if workspace_id is not None:
        query = query.where(api_keys.c.workspace_id == workspace_id)
    return [_key_row(r) for r in conn.execute(query)]


def revoke_api_key(conn: Connection, key_id: str, now: int) -> bool:
    result = conn.execute(
        sa.update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0
