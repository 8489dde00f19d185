"""Redaction configurations: a workspace's (``project_id`` '') and its projects' overrides."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import projects, redaction_configs

rc = redaction_configs
WORKSPACE = ""
"""The ``project_id`` of a workspace's own configuration."""


def get(conn: Connection, workspace_id: str, project_id: str = WORKSPACE) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(rc.c.config).where(
            rc.c.workspace_id == workspace_id, rc.c.project_id == project_id
        )
    ).first()
    return dict(row[0]) if row else None


def for_workspace(
    conn: Connection, workspace_id: str
) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The workspace's configuration and each overriding project's, by project name."""
    own: dict[str, Any] | None = None
    by_project: dict[str, dict[str, Any]] = {}
    rows = conn.execute(
        sa.select(rc.c.project_id, rc.c.config, projects.c.name)
        .select_from(rc.outerjoin(projects, projects.c.id == rc.c.project_id))
        .where(rc.c.workspace_id == workspace_id)
    )
    for project_id, config, name in rows:
        if project_id == WORKSPACE:
            own = dict(config)
        elif name is not None:
            by_project[name] = dict(config)
    return own, by_project


def put(
    conn: Connection, workspace_id: str, project_id: str, config: dict[str, Any], now: int
) -> None:
    updated = conn.execute(
        sa.update(rc)
        .where(rc.c.workspace_id == workspace_id, rc.c.project_id == project_id)
        .values(config=config, updated_at=now)
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(rc).values(
                workspace_id=workspace_id, project_id=project_id, config=config, updated_at=now
            )
        )


def delete(conn: Connection, workspace_id: str, project_id: str) -> bool:
    return bool(
        conn.execute(
            sa.delete(rc).where(rc.c.workspace_id == workspace_id, rc.c.project_id == project_id)
        ).rowcount
    )
