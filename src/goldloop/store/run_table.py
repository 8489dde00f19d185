"""What the dashboard's runs table shows beside each listed run: its inputs and outputs (for
previews), its latest scores per feedback key, its trace's totals, and how many runs match.

Every read here is bounded by the page on screen (at most a few hundred run or trace ids), or,
for the count, by a cap: none of them grows with the project.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store.run_queries import _COST_SUM, _finite, _whole
from goldloop.store.schema import feedback, runs


def documents(
    conn: Connection, workspace_id: str, run_ids: Sequence[str]
) -> dict[str, tuple[Any, Any]]:
    """``{run id: (inputs, outputs)}`` of these runs."""
    if not run_ids:
        return {}
    query = sa.select(runs.c.id, runs.c.inputs, runs.c.outputs).where(
        runs.c.workspace_id == workspace_id, runs.c.id.in_(list(run_ids))
    )
    return {str(r[0]): (r[1], r[2]) for r in conn.execute(query)}


@dataclass(frozen=True, slots=True)
class TraceTotals:
    runs: int
    errors: int
    total_tokens: int
    has_tokens: bool
    cost: float
    has_cost: bool


def trace_totals(
    conn: Connection, workspace_id: str, trace_ids: Sequence[str]
) -> dict[str, TraceTotals]:
    """Tokens and cost summed over every run of each trace (one group per trace, read along
    ``ix_runs_trace``)."""
    if not trace_ids:
        return {}
    zero = sa.literal(0)
    query = (
        sa.select(
            runs.c.trace_id,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((runs.c.status == "error", 1), else_=0)), zero),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.total_tokens, sa.Float)), zero),
            sa.func.count(runs.c.total_tokens),
            sa.func.coalesce(
                sa.func.sum(sa.cast(runs.c.cost, _COST_SUM)), sa.cast(sa.literal(0), _COST_SUM)
            ),
            sa.func.count(runs.c.cost),
        )
        .where(runs.c.workspace_id == workspace_id, runs.c.trace_id.in_(list(trace_ids)))
        .group_by(runs.c.trace_id)
    )
    return {
        str(r[0]): TraceTotals(
            runs=int(r[1]),
            errors=int(r[2]),
            total_tokens=_whole(r[3]),
            has_tokens=int(r[4]) > 0,
            cost=_finite(float(r[5])),
            has_cost=int(r[6]) > 0,
        )
        for r in conn.execute(query)
    }


@dataclass(frozen=True, slots=True)
class LatestScore:
    run_id: str
    key: str
    score: float | bool | None
    value: Any
    source: str
    created_at: int


def latest_scores(
    conn: Connection, workspace_id: str, run_ids: Sequence[str], root_traces: dict[str, str]
) -> list[LatestScore]:
    """The newest feedback per (run, key, source) on these runs, and trace-level feedback (no
    run id) on the traces in ``root_traces`` ({trace id: its root run id}), which counts as the
    root run's. Read along ``ix_feedback_run_key`` and ``ix_feedback_trace_key``."""
    if not run_ids:
        return []
    cols = (
        feedback.c.run_id,
        feedback.c.trace_id,
        feedback.c.key,
        feedback.c.score,
        feedback.c.score_is_bool,
        feedback.c.value,
        feedback.c.source,
        feedback.c.created_at,
        feedback.c.pk,
    )
    on_runs = sa.select(*cols).where(
        feedback.c.workspace_id == workspace_id, feedback.c.run_id.in_(list(run_ids))
    )
    queries = [on_runs]
    if root_traces:
        queries.append(
            sa.select(*cols).where(
                feedback.c.workspace_id == workspace_id,
                feedback.c.run_id.is_(None),
                feedback.c.trace_id.in_(list(root_traces)),
            )
        )
    newest: dict[tuple[str, str, str], tuple[tuple[int, int], LatestScore]] = {}
    for query in queries:
        for r in conn.execute(query):
            run_id = r.run_id if r.run_id is not None else root_traces.get(r.trace_id)
            if run_id is None:
                continue
            score: float | bool | None = r.score
            if score is not None and r.score_is_bool:
                score = bool(score)
            order = (int(r.created_at), int(r.pk))
            slot = (str(run_id), str(r.key), str(r.source))
            if slot not in newest or newest[slot][0] < order:
                newest[slot] = (
                    order,
                    LatestScore(
                        str(run_id), str(r.key), score, r.value, str(r.source), int(r.created_at)
                    ),
                )
    return [item for _, item in newest.values()]


def count_matching(
    conn: Connection, project_id: str, condition: ColumnElement[bool], *, cap: int
) -> int:
    """How many of the project's runs match, counting at most ``cap + 1`` (more than ``cap``
    means "over cap"). No workspace condition: project ids are global keys and the caller
    resolved this one in its workspace; without it, ``root`` (and a start-time range) is
    counted from ``ix_runs_project_root_start`` alone."""
    inner = sa.select(sa.literal(1).label("one")).where(runs.c.project_id == project_id, condition)
    limited = inner.limit(cap + 1).subquery("matching")
    return int(conn.execute(sa.select(sa.func.count()).select_from(limited)).scalar_one())


def start_between(start: int | None, end: int | None) -> ColumnElement[bool]:
    """Runs that started in ``[start, end)``; either bound may be open."""
    parts: list[ColumnElement[bool]] = []
    if start is not None:
        parts.append(runs.c.start_time >= start)
    if end is not None:
        parts.append(runs.c.start_time < end)
    return sa.and_(sa.true(), *parts)
