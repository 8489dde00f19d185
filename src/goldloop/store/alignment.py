"""The scores a judge and people gave on runs, read for judge alignment (services/alignment).

One indexed read per key (``ix_feedback_key_created``): the run-level scores of one feedback
key from the given sources, newest first, optionally within a time range and one project (a
join on the run). Pairing, thresholds and statistics happen above the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import feedback, runs


@dataclass(frozen=True, slots=True)
class Score:
    run_id: str
    trace_id: str | None
    score: float
    source: str
    source_info: dict[str, Any] | None
    comment: str | None
    updated_at: int


def scores(
    conn: Connection,
    workspace_id: str,
    key: str,
    sources: Sequence[str],
    *,
    project_id: str | None = None,
    since: int | None = None,
    until: int | None = None,
    limit: int,
) -> list[Score]:
    """Up to ``limit`` scored, run-level feedback rows of ``key`` from ``sources``, newest
    first (by creation), restricted to one project's runs when ``project_id`` is given."""
    joined = feedback.join(
        runs,
        sa.and_(runs.c.workspace_id == feedback.c.workspace_id, runs.c.id == feedback.c.run_id),
    )
    query = (
        sa.select(
            feedback.c.run_id,
            sa.func.coalesce(feedback.c.trace_id, runs.c.trace_id).label("trace_id"),
            feedback.c.score,
            feedback.c.source,
            feedback.c.source_info,
            feedback.c.comment,
            feedback.c.updated_at,
        )
        .select_from(joined)
        .where(
            feedback.c.workspace_id == workspace_id,
            feedback.c.key == key,
            feedback.c.source.in_(list(sources)),
            feedback.c.score.is_not(None),
        )
        .order_by(feedback.c.created_at.desc(), feedback.c.pk.desc())
        .limit(limit)
    )
    if project_id is not None:
        query = query.where(runs.c.project_id == project_id)
    if since is not None:
        query = query.where(feedback.c.created_at >= since)
    if until is not None:
        query = query.where(feedback.c.created_at < until)
    return [
        Score(
            run_id=r.run_id,
            trace_id=r.trace_id,
            score=float(r.score),
            source=r.source,
            source_info=r.source_info if isinstance(r.source_info, dict) else None,
            comment=r.comment,
            updated_at=r.updated_at,
        )
        for r in conn.execute(query)
    ]
