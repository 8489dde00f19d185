"""Projects: buckets of traces (experiments are projects too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store import rollups
from goldloop.store.schema import projects, runs


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: str
    workspace_id: str
    name: str
    description: str | None
    created_at: int
    extra: dict[str, Any] | None = None


def project_row(r: sa.Row[tuple[object, ...]]) -> ProjectRow:
    m = r._mapping
    return ProjectRow(
        m["id"], m["workspace_id"], m["name"], m["description"], m["created_at"], m["extra"]
    )


def insert(conn: Connection, p: ProjectRow) -> None:
    conn.execute(
        sa.insert(projects).values(
            id=p.id,
            workspace_id=p.workspace_id,
            name=p.name,
            description=p.description,
            created_at=p.created_at,
            extra=p.extra,
        )
    )


def get(conn: Connection, workspace_id: str, project_id: str) -> ProjectRow | None:
    row = conn.execute(
        sa.select(projects).where(
            projects.c.workspace_id == workspace_id, projects.c.id == project_id
        )
    ).first()
    return project_row(row) if row else None


def exists(conn: Connection, project_id: str) -> bool:
    """Whether any workspace has a project with this id (ids are global primary keys)."""
    query = sa.select(projects.c.id).where(projects.c.id == project_id)
    return conn.execute(query).first() is not None


def get_by_name(conn: Connection, workspace_id: str, name: str) -> ProjectRow | None:
    row = conn.execute(
        sa.select(projects).where(projects.c.workspace_id == workspace_id, projects.c.name == name)
    ).first()
    return project_row(row) if row else None


def list_page(
    conn: Connection, workspace_id: str, *, limit: int, after_name: str | None = None
) -> list[ProjectRow]:
    """Projects ordered by name, keyset-paginated on the (unique per workspace) name."""
    query = (
        sa.select(projects)
        .where(projects.c.workspace_id == workspace_id)
        .order_by(projects.c.name)
        .limit(limit)
    )
    if after_name is not None:
        query = query.where(projects.c.name > after_name)
    return [project_row(r) for r in conn.execute(query)]


def update(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    name: str | None,
    description: str | None,
    extra: dict[str, Any] | None = None,
) -> bool:
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = name
    if description is not None:
        values["description"] = description
    if extra is not None:
        values["extra"] = extra
    if not values:
        return get(conn, workspace_id, project_id) is not None
    result = conn.execute(
        sa.update(projects)
        .where(projects.c.workspace_id == workspace_id, projects.c.id == project_id)
        .values(**values)
    )
    return result.rowcount > 0


def delete(conn: Connection, workspace_id: str, project_id: str) -> int | None:
    """Delete a project and its runs; returns how many runs went, or None if not found."""
    if get(conn, workspace_id, project_id) is None:
        return None
    removed = conn.execute(sa.delete(runs).where(runs.c.project_id == project_id)).rowcount
    rollups.forget_project(conn, project_id)
    conn.execute(
        sa.delete(projects).where(
            projects.c.workspace_id == workspace_id, projects.c.id == project_id
        )
    )
    return int(removed)


def count_runs(conn: Connection, project_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(runs).where(runs.c.project_id == project_id)
    return int(conn.execute(query).scalar_one())
