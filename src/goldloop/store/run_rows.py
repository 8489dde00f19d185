"""Raw run rows, read in bulk: for export and for the ingestion tests.

The query API (get a run, a trace tree, filtered lists) lives elsewhere; this module only pages
through whole rows in storage order, which is what an export needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import runs

_COLUMNS = [c for c in runs.c if c.name not in ("workspace_id",)]


def rows_by_trace(conn: Connection, workspace_id: str, trace_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(*_COLUMNS)
        .where(runs.c.workspace_id == workspace_id, runs.c.trace_id == trace_id)
        .order_by(runs.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def rows_by_ids(conn: Connection, workspace_id: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(ids), 500):
        query = (
            sa.select(*_COLUMNS)
            .where(runs.c.workspace_id == workspace_id, runs.c.id.in_(ids[i : i + 500]))
            .order_by(runs.c.id)
        )
        out.extend(dict(r._mapping) for r in conn.execute(query))
    return out


def page_project_rows(
    conn: Connection, workspace_id: str, project_id: str, *, after_pk: int, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` runs of a project with ``pk > after_pk``, in pk order (export paging)."""
    query = (
        sa.select(*_COLUMNS)
        .where(
            runs.c.workspace_id == workspace_id,
            runs.c.project_id == project_id,
            runs.c.pk > after_pk,
        )
        .order_by(runs.c.pk)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def count_runs(conn: Connection, workspace_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(runs).where(runs.c.workspace_id == workspace_id)
    return int(conn.execute(query).scalar_one())
