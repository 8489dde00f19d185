"""Feedback written many at a time (the scores of a batch of online rule actions): the declared
keys of a workspace in one query, the rows inserted with one statement, the ones that already
existed read back with one query."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from goldloop.domain.feedback import KeySpec
from goldloop.store import log_horizon, rollups
from goldloop.store.feedback import FeedbackRow, _columns, _row, _select, _spec
from goldloop.store.schema import feedback, feedback_keys, runs


def keys(conn: Connection, workspace_id: str, names: Collection[str]) -> dict[str, KeySpec]:
    """The declared keys among ``names`` (an undeclared one is absent)."""
    if not names:
        return {}
    query = sa.select(feedback_keys).where(
        feedback_keys.c.workspace_id == workspace_id, feedback_keys.c.key.in_(sorted(set(names)))
    )
    return {spec.key: spec for spec in (_spec(r) for r in conn.execute(query))}


def insert_many_if_absent(
    conn: Connection, rows: Sequence[tuple[FeedbackRow, str]]
) -> set[tuple[str, str]]:
    """Insert each ``(row, request hash)`` unless a feedback with its id exists in its workspace
    (even one committed concurrently, or an earlier row of ``rows``); returns the
    ``(workspace id, id)`` of the rows inserted. One statement: a row the database refuses
    fails all of them (the caller's transaction)."""
    if not rows:
        return set()
    # Rules tail feedback by ``pk``: see log_horizon for why writers hold this lock.
    log_horizon.hold_writer_lock(conn)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(feedback)
        .on_conflict_do_nothing(index_elements=[feedback.c.workspace_id, feedback.c.id])
        .returning(feedback.c.workspace_id, feedback.c.id)
    )
    params: list[dict[str, Any]] = [
        {
            "workspace_id": row.workspace_id,
            "id": row.id,
            "request_hash": digest,
            "created_at": row.created_at,
            **_columns(row),
        }
        for row, digest in rows
    ]
    inserted = {(str(r[0]), str(r[1])) for r in conn.execute(statement, params)}
    _mark_rollups(conn, [row for row, _ in rows if (row.workspace_id, row.id) in inserted])
    return inserted


def _mark_rollups(conn: Connection, rows: Sequence[FeedbackRow]) -> None:
    """Mark the hours whose rolled-up scores the new scored rows change (their run's start
    hour; a trace-level score's root's), as ``feedback.insert`` does one row at a time."""
    by_run: dict[str, set[str]] = {}
    by_trace: dict[str, set[str]] = {}
    for row in rows:
        if row.score is None:
            continue
        if row.run_id is not None:
            by_run.setdefault(row.workspace_id, set()).add(row.run_id)
        elif row.trace_id is not None:
            by_trace.setdefault(row.workspace_id, set()).add(row.trace_id)
    for ws, ids in by_run.items():
        rollups.mark_runs(conn, sa.and_(runs.c.workspace_id == ws, runs.c.id.in_(sorted(ids))))
    for ws, ids in by_trace.items():
        rollups.mark_runs(
            conn,
            sa.and_(
                runs.c.workspace_id == ws,
                runs.c.trace_id.in_(sorted(ids)),
                runs.c.is_root.is_(True),
            ),
        )


def stored(
    conn: Connection, workspace_id: str, ids: Collection[str]
) -> dict[str, tuple[FeedbackRow, str]]:
    """The stored feedback among ``ids``, each with its request hash."""
    if not ids:
        return {}
    query = (
        _select()
        .add_columns(feedback.c.request_hash.label("stored_request_hash"))
        .where(feedback.c.workspace_id == workspace_id, feedback.c.id.in_(sorted(set(ids))))
    )
    out: dict[str, tuple[FeedbackRow, str]] = {}
    for r in conn.execute(query):
        row = _row(r)
        out[row.id] = (row, str(r._mapping["stored_request_hash"]))
    return out
