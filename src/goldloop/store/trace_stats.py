"""Trace-level figures of a project over a time range, and feedback bucketed by run start.

A trace is counted once, by its root run, in the bucket of the root's start time. A trace
*errored* when any of its runs has status ``error`` (its root or a step). The errored runs are
looked up among the project's runs that started from ``ERROR_LOOKBACK`` before the range to
``ERROR_TAIL`` after it: a step starts after its root, so this only misses a step that started
more than a day after its root, or (clock skew) more than an hour before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store.run_queries import _COST_SUM, BucketTotals, _bucket_expr, _finite, _whole
from goldloop.store.schema import feedback, runs

Cond = ColumnElement[bool]
ERROR_LOOKBACK = 3_600_000_000  # 1 h
ERROR_TAIL = 86_400_000_000  # 1 d
TRACE_TAIL = 86_400_000_000  # how long after the range a matching step of a counted trace may start


def roots() -> Cond:
    return runs.c.is_root.is_(True)


def status_error() -> Cond:
    """``status = 'error'`` with the value in the SQL, not bound: the condition of the partial
    index ``ix_runs_project_errors`` (migration 0030), which a planner matches only against a
    literal (PostgreSQL's generic plan of a prepared statement, SQLite's plan of a statement
    whose parameter it does not know)."""
    return runs.c.status == sa.literal_column("'error'")


def traces_matching(
    workspace_id: str, project_id: str, condition: Cond, *, start: int, end: int
) -> Cond:
    """Runs of the traces that hold a run matching ``condition`` (a run of the project that
    started in the range, give or take ``ERROR_LOOKBACK`` / ``TRACE_TAIL``)."""
    inner = sa.select(runs.c.trace_id).where(
        runs.c.workspace_id == workspace_id,
        runs.c.project_id == project_id,
        runs.c.start_time >= start - ERROR_LOOKBACK,
        runs.c.start_time < end + TRACE_TAIL,
        condition,
    )
    return runs.c.trace_id.in_(inner.correlate(None))


def trace_bucket_totals(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    condition: Cond,
    *,
    start: int,
    end: int,
    bucket_us: int,
) -> list[BucketTotals]:
    """Per bucket, in one scan of the runs matching ``condition``: the traces (root runs) with
    their status and latency, and the tokens and cost of every run. ``errors`` counts errored
    roots only (``errored_traces`` counts errored traces)."""
    b = _bucket_expr(start, bucket_us)
    root = runs.c.is_root.is_(True)
    root_latency = sa.case((root, runs.c.latency_us), else_=None)
    zero = sa.literal(0)
    query = (
        sa.select(
            b,
            sa.func.coalesce(sa.func.sum(sa.case((root, 1), else_=0)), zero),
            sa.func.coalesce(
                sa.func.sum(sa.case((sa.and_(root, runs.c.status == "error"), 1), else_=0)), zero
            ),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.input_tokens, sa.Float)), zero),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.output_tokens, sa.Float)), zero),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.total_tokens, sa.Float)), zero),
            sa.func.coalesce(
                sa.func.sum(sa.cast(runs.c.cost, _COST_SUM)), sa.cast(sa.literal(0), _COST_SUM)
            ),
            sa.func.count(root_latency),
            sa.func.avg(root_latency),
        )
        .where(
            runs.c.workspace_id == workspace_id,
            runs.c.project_id == project_id,
            runs.c.start_time >= start,
            runs.c.start_time < end,
            condition,
        )
        .group_by(b)
        .order_by(b)
    )
    return [
        BucketTotals(
            start + int(r[0]) * bucket_us,
            int(r[1]),
            int(r[2]),
            _whole(r[3]),
            _whole(r[4]),
            _whole(r[5]),
            _finite(float(r[6])),
            int(r[7]),
            None if r[8] is None else float(r[8]),
        )
        for r in conn.execute(query)
    ]


def errored_traces(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    condition: Cond,
    *,
    start: int,
    end: int,
    bucket_us: int,
) -> dict[int, int]:
    """{bucket start: traces (root runs matching ``condition``) with an errored run}."""
    errored = sa.select(runs.c.trace_id).where(
        runs.c.workspace_id == workspace_id,
        runs.c.project_id == project_id,
        runs.c.start_time >= start - ERROR_LOOKBACK,
        runs.c.start_time < end + ERROR_TAIL,
        status_error(),
    )
    b = _bucket_expr(start, bucket_us)
    query = (
        sa.select(b, sa.func.count())
        .where(
            runs.c.workspace_id == workspace_id,
            runs.c.project_id == project_id,
            runs.c.start_time >= start,
            runs.c.start_time < end,
            roots(),
            condition,
            sa.or_(runs.c.status == "error", runs.c.trace_id.in_(errored.correlate(None))),
        )
        .group_by(b)
    )
    return {start + int(r[0]) * bucket_us: int(r[1]) for r in conn.execute(query)}


@dataclass(frozen=True, slots=True)
class ScoreBucket:
    key: str
    bucket_start: int
    scored: int
    score_sum: float


def scores_by_run_start(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    condition: Cond,
    *,
    start: int,
    end: int,
    bucket_us: int,
) -> list[ScoreBucket]:
    """Scored feedback per key, in buckets of the start time of the run it is on (trace-level
    feedback: of the trace's root run), for the project's runs matching ``condition`` that
    started in ``[start, end)``."""
    b = _bucket_expr(start, bucket_us)
    scope = [
        runs.c.workspace_id == workspace_id,
        runs.c.project_id == project_id,
        runs.c.start_time >= start,
        runs.c.start_time < end,
        condition,
        feedback.c.score.isnot(None),
    ]
    on_run = sa.and_(feedback.c.workspace_id == runs.c.workspace_id, feedback.c.run_id == runs.c.id)
    on_trace = sa.and_(
        feedback.c.workspace_id == runs.c.workspace_id,
        feedback.c.run_id.is_(None),
        feedback.c.trace_id == runs.c.trace_id,
        roots(),
    )
    totals: dict[tuple[str, int], tuple[int, float]] = {}
    for join in (on_run, on_trace):
        query = (
            sa.select(
                feedback.c.key,
                b,
                sa.func.count(),
                sa.func.sum(feedback.c.score),
            )
            .select_from(runs.join(feedback, join))
            .where(*scope)
            .group_by(feedback.c.key, b)
        )
        for key, bucket, n, total in conn.execute(query):
            slot = (str(key), start + int(bucket) * bucket_us)
            seen = totals.get(slot, (0, 0.0))
            totals[slot] = (seen[0] + int(n), seen[1] + float(total or 0.0))
    return [
        ScoreBucket(key, bucket_start, n, total)
        for (key, bucket_start), (n, total) in sorted(totals.items())
    ]
