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
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    after_seq: int,
    limit: int,
    condition: sa.ColumnElement[bool] | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` runs of a project with ``seq > after_seq`` that meet ``condition`` (a
    compiled filter; all runs if None), in ``seq`` order (export paging).

    Paged along ``ix_runs_project_seq``, so each page is one range of that index: ordered by
    ``pk``, SQLite walked the whole project and sorted it for every page. Runs written while an
    export runs may or may not be in it: an updated run gets a higher ``seq`` and can come twice
    (importing merges it), and on PostgreSQL a run committed after a later ``seq`` was read is
    missed."""
    where = [runs.c.workspace_id == workspace_id, runs.c.project_id == project_id]
    if condition is not None:
        where.append(condition)
    query = (
        sa.select(*_COLUMNS).where(*where, runs.c.seq > after_seq).order_by(runs.c.seq).limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def page_trace_ids(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    condition: sa.ColumnElement[bool],
    *,
    after: str,
    limit: int,
) -> list[str]:
    """Up to ``limit`` ids, in order, of the traces after ``after`` with a run of the project
    that meets ``condition``."""
    query = (
        sa.select(runs.c.trace_id)
        .where(
            runs.c.workspace_id == workspace_id,
            runs.c.project_id == project_id,
            runs.c.trace_id > after,
            condition,
        )
        .group_by(runs.c.trace_id)
        .order_by(runs.c.trace_id)
        .limit(limit)
    )
    return [str(t) for t in conn.scalars(query)]


def page_trace_rows(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    trace_ids: Sequence[str],
    *,
    after: tuple[str, int],
    limit: int,
) -> list[dict[str, Any]]:
    """Up to ``limit`` runs of the project in the given traces (ids in ascending order), in
    (trace id, pk) order, after the run at ``after`` (a ``(trace_id, pk)`` pair; ``("", 0)``
    to start)."""
    query = (
        sa.select(*_COLUMNS)
        .where(
            runs.c.workspace_id == workspace_id,
            runs.c.project_id == project_id,
            runs.c.trace_id.in_(list(trace_ids)),
            sa.tuple_(runs.c.trace_id, runs.c.pk) > sa.tuple_(*after),
            # the end of the range too: SQLite walks the trace index from ``after`` and would
            # otherwise read to the end of it when the traces have fewer than ``limit`` runs left
            runs.c.trace_id <= max(trace_ids),
        )
        .order_by(runs.c.trace_id, runs.c.pk)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def count_runs(conn: Connection, workspace_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(runs).where(runs.c.workspace_id == workspace_id)
    return int(conn.execute(query).scalar_one())
