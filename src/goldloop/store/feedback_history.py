"""Feedback history (what a feedback was before each edit and its deletion), and the marks
the dashboard puts on runs with feedback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.feedback import FeedbackRow
from goldloop.store.schema import api_keys, feedback, feedback_history
from goldloop.store.sql_lists import one_of


@dataclass(frozen=True, slots=True)
class HistoryRow:
    feedback_id: str
    action: str  # "edited" or "deleted"
    old: dict[str, Any]
    changed_by: str | None
    changed_by_name: str | None
    changed_at: int


def snapshot(row: FeedbackRow) -> dict[str, Any]:
    """The fields of a feedback that an edit can change, as a JSON document."""
    return {
        "key": row.key,
        "score": row.score,
        "value": row.value,
        "comment": row.comment,
        "correction": row.correction,
        "source": row.source,
        "source_info": row.source_info,
        "updated_at": row.updated_at,
    }


def add_history(
    conn: Connection, old: FeedbackRow, action: str, changed_by: str | None, now: int
) -> None:
    conn.execute(
        sa.insert(feedback_history).values(
            workspace_id=old.workspace_id,
            feedback_id=old.id,
            run_id=old.run_id,
            action=action,
            old=snapshot(old),
            changed_by=changed_by,
            changed_at=now,
        )
    )


def history(
    conn: Connection,
    workspace_id: str,
    feedback_ids: list[str] | None = None,
    *,
    deleted_from_run: str | None = None,
) -> list[HistoryRow]:
    """The recorded changes of these feedback (or the deletions of feedback on one run), oldest
    first; with the name of the API key that made each change (None once the key is gone)."""
    joined = feedback_history.outerjoin(
        api_keys,
        sa.and_(
            api_keys.c.id == feedback_history.c.changed_by,
            api_keys.c.workspace_id == feedback_history.c.workspace_id,
        ),
    )
    query = (
        sa.select(feedback_history, api_keys.c.name.label("key_name"))
        .select_from(joined)
        .where(feedback_history.c.workspace_id == workspace_id)
        .order_by(feedback_history.c.pk)
    )
    if feedback_ids is not None:
        query = query.where(feedback_history.c.feedback_id.in_(feedback_ids))
    if deleted_from_run is not None:
        query = query.where(
            feedback_history.c.run_id == deleted_from_run,
            feedback_history.c.action == "deleted",
        )
    return [
        HistoryRow(
            feedback_id=r.feedback_id,
            action=r.action,
            old=dict(r.old),
            changed_by=r.changed_by,
            changed_by_name=r.key_name,
            changed_at=int(r.changed_at),
        )
        for r in conn.execute(query)
    ]


def feedback_counts(conn: Connection, workspace_id: str, run_ids: list[str]) -> dict[str, int]:
    """How much feedback each of these runs has (on the run itself); runs without any are
    left out."""
    if not run_ids:
        return {}
    query = (
        sa.select(feedback.c.run_id, sa.func.count().label("n"))
        .where(feedback.c.workspace_id == workspace_id, one_of(conn, feedback.c.run_id, run_ids))
        .group_by(feedback.c.run_id)
    )
    return {r.run_id: int(r.n) for r in conn.execute(query)}
