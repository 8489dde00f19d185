"""Window aggregates for alert rules: one metric of one project between two instants.

Run metrics look at root runs by ``start_time``; feedback metrics at the feedback on runs of the
project that started in the window. Aggregates are computed in SQL (counts, sums, sums of
squares) so a window of a million runs costs one indexed scan, not a million rows in Python.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.domain.safe_values import MAX_COST
from goldloop.store.schema import feedback, runs

WORST = 5


def _run_window(project_id: str, start_us: int, end_us: int) -> list[sa.ColumnElement[bool]]:
    return [
        runs.c.project_id == project_id,
        runs.c.is_root.is_(True),
        runs.c.start_time >= start_us,
        runs.c.start_time < end_us,
    ]


def run_metric(
    conn: Connection,
    kind: str,
    project_id: str,
    start_us: int,
    end_us: int,
    extra_where: sa.ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """Aggregates for ``error_rate``, ``latency_p95``, ``cost`` or ``volume``."""
    where = _run_window(project_id, start_us, end_us)
    if extra_where is not None:
        where.append(extra_where)
    if kind == "error_rate":
        is_error = sa.case((runs.c.status == "error", 1), else_=0)
        n, errors = conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(is_error), 0)).where(*where)
        ).one()
        worst = _ids(conn, sa.select(runs.c.id).where(*where, runs.c.status == "error"))
        return {"n": int(n), "successes": int(errors), "worst": worst}
    if kind == "latency_p95":
        with_latency = [*where, runs.c.latency_us.is_not(None)]
        n = int(conn.execute(sa.select(sa.func.count()).where(*with_latency)).scalar_one())
        if n == 0:
            return {"n": 0, "value": None, "worst": []}
        offset = max(0, math.ceil(0.95 * n) - 1)  # nearest-rank percentile
        p95 = conn.execute(
            sa.select(runs.c.latency_us)
            .where(*with_latency)
            .order_by(runs.c.latency_us)
            .offset(offset)
            .limit(1)
        ).scalar_one()
        worst = _ids(
            conn, sa.select(runs.c.id).where(*with_latency).order_by(runs.c.latency_us.desc())
        )
        return {"n": n, "value": p95 / 1000.0, "worst": worst}
    if kind == "cost":
        with_cost = [*where, runs.c.cost.is_not(None)]
        n, total, total_sq = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(_cost()), 0.0),
                sa.func.coalesce(sa.func.sum(_cost() * _cost()), 0.0),
            ).where(*with_cost)
        ).one()
        worst = _ids(conn, sa.select(runs.c.id).where(*with_cost).order_by(runs.c.cost.desc()))
        return {"n": int(n), "sum": float(total), "sum_sq": float(total_sq), "worst": worst}
    if kind == "volume":
        n = int(conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one())
        return {"n": n}
    raise ValueError(f"not a run metric: {kind}")


def _cost() -> sa.ColumnElement[Any]:
    """A run's cost capped at what ingest accepts: a row stored before the check (1e308) must
    not overflow a sum of squares into an error on every evaluation of the rule."""
    return sa.case((runs.c.cost > MAX_COST, MAX_COST), else_=runs.c.cost)


def _ids(conn: Connection, query: sa.Select[Any]) -> list[str]:
    return [str(v) for v in conn.execute(query.limit(WORST)).scalars()]


def _json_text(col: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """A top-level JSON string value as SQL text (for category values)."""
    if dialect == "postgresql":
        return col.op("#>>")(sa.literal_column("'{}'"))
    return sa.func.json_extract(col, "$")


def _feedback_rows(
    dialect: str,
    workspace_id: str,
    project_id: str,
    key: str,
    start_us: int,
    end_us: int,
    extra_where: sa.ColumnElement[bool] | None,
) -> sa.Subquery:
    """Feedback with ``key`` on runs of the project that started in [start_us, end_us), as
    rows (run_id, start_time, score, value); trace-level feedback counts for the trace's root
    run.

    The plan must read the window's runs first and each run's own feedback of the key second
    (by ``ix_feedback_run_key`` / ``ix_feedback_trace_key``), whatever the statistics say: one
    join on "run id, or trace root" left SQLite searching every feedback row of the key for
    each run, and PostgreSQL, before its first ANALYZE, did the same the other way round
    (1.5 s for 1,650 scores). So: two branches in a UNION ALL, and on PostgreSQL each branch's
    feedback is a LATERAL subquery of the run behind an OFFSET 0 fence, which fixes the order
    of the loop and the index key of the inner search."""

    def branch(link: sa.ColumnElement[bool], *run_terms: sa.ColumnElement[bool]) -> sa.Select[Any]:
        where = [
            runs.c.workspace_id == workspace_id,
            runs.c.project_id == project_id,
            runs.c.start_time >= start_us,
            runs.c.start_time < end_us,
            *run_terms,
        ]
        if extra_where is not None:  # a run filter: only feedback on runs that pass it
            where.append(extra_where)
        mine = sa.select(feedback.c.score, feedback.c.value).where(
            feedback.c.workspace_id == workspace_id, feedback.c.key == key, link
        )
        if dialect == "postgresql":
            # OFFSET 0 keeps the subquery from being flattened into a join the planner may
            # reorder: it runs once per run, with run id (or trace id) and key as its index key
            fb = mine.offset(0).lateral("f")
            source = runs.join(fb, sa.true())
            score, value = fb.c.score, fb.c.value
        else:
            source = feedback.join(runs, link)
            where += [feedback.c.workspace_id == workspace_id, feedback.c.key == key]
            score, value = feedback.c.score, feedback.c.value
        return (
            sa.select(
                runs.c.id.label("run_id"),
                runs.c.start_time.label("start_time"),
                score.label("score"),
                value.label("value"),
            )
            .select_from(source)
            .where(*where)
        )

    on_run = branch(feedback.c.run_id == runs.c.id)
    on_trace = branch(
        sa.and_(feedback.c.run_id.is_(None), feedback.c.trace_id == runs.c.trace_id),
        runs.c.is_root.is_(True),
    )
    return sa.union_all(on_run, on_trace).subquery("fb")


def feedback_metric(
    conn: Connection,
    kind: str,
    workspace_id: str,
    project_id: str,
    key: str,
    start_us: int,
    end_us: int,
    *,
    pass_threshold: float = 1.0,
    category: str | None = None,
    extra_where: sa.ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """Aggregates for ``feedback_mean``, ``feedback_pass_rate`` or ``category_share`` over
    feedback with this key on runs of the project that STARTED in the window (trace-level
    feedback counts for the trace's root run). Windowing by the run, not by when the score was
    written, keeps online scores and late human scores on the traffic they judge."""
    fb = _feedback_rows(
        conn.dialect.name, workspace_id, project_id, key, start_us, end_us, extra_where
    )

    def select(*cols: Any) -> sa.Select[Any]:
        return sa.select(*cols).select_from(fb)

    if kind == "category_share":
        is_cat = _json_text(fb.c.value, conn.dialect.name) == category
        hits = sa.func.coalesce(sa.func.sum(sa.case((is_cat, 1), else_=0)), 0)
        n, found = conn.execute(select(sa.func.count(), hits)).one()
        worst = _ids(conn, select(fb.c.run_id).where(is_cat).order_by(fb.c.start_time.desc()))
        return {"n": int(n), "successes": int(found), "worst": worst}
    scored = fb.c.score.is_not(None)
    lowest_first = (fb.c.score, fb.c.start_time)
    if kind == "feedback_pass_rate":
        passed = sa.func.coalesce(
            sa.func.sum(sa.case((fb.c.score >= pass_threshold, 1), else_=0)), 0
        )
        n, ok = conn.execute(select(sa.func.count(), passed).where(scored)).one()
        # Only runs that failed: a window with two failures names two runs, not three passes.
        failed = select(fb.c.run_id).where(scored, fb.c.score < pass_threshold)
        worst = _ids(conn, failed.order_by(*lowest_first))
        return {"n": int(n), "successes": int(ok), "worst": worst}
    worst = _ids(conn, select(fb.c.run_id).where(scored).order_by(*lowest_first))
    if kind == "feedback_mean":
        n, total, total_sq = conn.execute(
            select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(fb.c.score), 0.0),
                sa.func.coalesce(sa.func.sum(fb.c.score * fb.c.score), 0.0),
            ).where(scored)
        ).one()
        return {"n": int(n), "sum": float(total), "sum_sq": float(total_sq), "worst": worst}
    raise ValueError(f"not a feedback metric: {kind}")


def buckets(
    conn: Connection,
    kind: str,
    workspace_id: str,
    project_id: str,
    start_us: int,
    end_us: int,
    bucket_us: int,
    *,
    key: str | None = None,
    pass_threshold: float = 1.0,
    category: str | None = None,
    extra_where: sa.ColumnElement[bool] | None = None,
) -> list[dict[str, Any]]:
    """Per-bucket aggregates between two instants for a change detector, one GROUP BY: buckets
    of ``bucket_us`` from ``start_us`` by run start time, only those with samples, in order.
    Rates: ``n`` and ``successes`` (errors, passes or category hits, as the window metrics
    count them); means: ``n`` and ``sum``."""
    if kind in ("error_rate", "cost"):
        where = _run_window(project_id, start_us, end_us)
        if extra_where is not None:
            where.append(extra_where)
        if kind == "error_rate":
            value: sa.ColumnElement[Any] = sa.case((runs.c.status == "error", 1), else_=0)
        else:
            where.append(runs.c.cost.is_not(None))
            value = _cost()
        index = ((runs.c.start_time - start_us) // bucket_us).label("i")
        q = sa.select(index, sa.func.count(), sa.func.coalesce(sa.func.sum(value), 0)).where(*where)
    else:
        assert key is not None, "feedback metrics need a key"
        fb = _feedback_rows(
            conn.dialect.name, workspace_id, project_id, key, start_us, end_us, extra_where
        )
        conditions: list[sa.ColumnElement[bool]] = []
        if kind == "category_share":
            is_cat = _json_text(fb.c.value, conn.dialect.name) == category
            value = sa.case((is_cat, 1), else_=0)
        else:
            conditions.append(fb.c.score.is_not(None))
            if kind == "feedback_pass_rate":
                value = sa.case((fb.c.score >= pass_threshold, 1), else_=0)
            else:
                value = fb.c.score
        index = ((fb.c.start_time - start_us) // bucket_us).label("i")
        q = (
            sa.select(index, sa.func.count(), sa.func.coalesce(sa.func.sum(value), 0))
            .select_from(fb)
            .where(*conditions)
        )
    q = q.group_by(index).order_by(index)
    rate = kind in ("error_rate", "feedback_pass_rate", "category_share")
    out: list[dict[str, Any]] = []
    for i, n, total in conn.execute(q):
        row: dict[str, Any] = {"start_us": start_us + int(i) * bucket_us, "n": int(n)}
        row.update({"successes": int(total)} if rate else {"sum": float(total)})
        out.append(row)
    return out
