"""The hourly rollups' tables: rolled hours, the marks of stale hours, the worker's cursor.

A rolled hour of a project is usable by a reader only when it is *clean*: no run of the project
with ``seq`` above the worker's cursor started in it (or is an errored run of a trace whose root
started in it), and no mark names it. Every write that changes an hour's figures without a new
``seq`` (feedback, deleting runs, a run moved to another hour or trace) adds a mark in its own
transaction (``mark_*``); the worker recomputes marked hours and removes the marks it read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.domain import latency_histogram as lh
from goldloop.store.rollup_pieces import HOUR, Piece
from goldloop.store.schema import (
    projects,
    run_rollup_marks,
    run_rollup_scores,
    run_rollup_state,
    run_rollups,
    runs,
)

Hour = tuple[str, int]  # (project id, hour start)
_STATE_ID = 1
_big = sa.BigInteger


def _hour(col: sa.Column[int] | ColumnElement[int]) -> ColumnElement[int]:
    return (col // sa.literal(HOUR, _big)) * sa.literal(HOUR, _big)


# --- the worker's state ------------------------------------------------------------------------


def state(conn: Connection) -> tuple[int, int]:
    """(cursor, version); (0, 0) before the first tick."""
    row = conn.execute(
        sa.select(run_rollup_state.c.cursor, run_rollup_state.c.version).where(
            run_rollup_state.c.id == _STATE_ID
        )
    ).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def advance(conn: Connection, version: int, cursor: int) -> bool:
    """Set the cursor and take the next version, if the version is still ``version`` (else
    another worker wrote meanwhile: the caller must roll back)."""
    table = run_rollup_state
    if version == 0:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(table).values(id=_STATE_ID, cursor=cursor, version=1))
        except sa.exc.IntegrityError:
            return False
        return True
    done = conn.execute(
        sa.update(table)
        .where(table.c.id == _STATE_ID, table.c.version == version)
        .values(cursor=cursor, version=version + 1)
    )
    return done.rowcount == 1


# --- what a reader may not use -----------------------------------------------------------------


def tail_hours(
    conn: Connection, project_ids: Sequence[str], cursor: int, limit: int
) -> set[Hour] | None:
    """Hours of these projects touched by runs past the cursor (their own start hour, and the
    root's hour of an errored run); None when more than ``limit`` runs are past the cursor."""
    ids = list(project_ids)
    past = sa.select(runs.c.pk).where(runs.c.seq > cursor).limit(limit + 1).subquery()
    if conn.execute(sa.select(sa.func.count()).select_from(past)).scalar_one() > limit:
        return None
    tail = sa.and_(runs.c.seq > cursor, runs.c.project_id.in_(ids))
    own = sa.select(runs.c.project_id, _hour(runs.c.start_time)).where(
        tail, runs.c.start_time.isnot(None)
    )
    out = {(str(p), int(h)) for p, h in conn.execute(own.distinct())}
    out.update(_errored_roots(conn, tail))
    return out


def touched_hours(conn: Connection, after: int, upto: int) -> set[Hour]:
    """Hours touched by the runs with ``after < seq <= upto`` (as ``tail_hours``), every
    project's."""
    window = sa.and_(runs.c.seq > after, runs.c.seq <= upto)
    own = sa.select(runs.c.project_id, _hour(runs.c.start_time)).where(
        window, runs.c.start_time.isnot(None)
    )
    out = {(str(p), int(h)) for p, h in conn.execute(own.distinct())}
    out.update(_errored_roots(conn, window))
    return out


def _errored_roots(conn: Connection, window: ColumnElement[bool]) -> set[Hour]:
    r = runs.alias("r")
    roots = (
        sa.select(r.c.project_id, _hour(r.c.start_time))
        .select_from(
            runs.join(
                r,
                sa.and_(
                    r.c.workspace_id == runs.c.workspace_id,
                    r.c.trace_id == runs.c.trace_id,
                    r.c.is_root.is_(True),
                ),
            )
        )
        .where(window, runs.c.status == "error", r.c.start_time.isnot(None))
    )
    return {(str(p), int(h)) for p, h in conn.execute(roots.distinct())}


def marked_hours(conn: Connection, project_ids: Sequence[str], start: int, end: int) -> set[Hour]:
    m = run_rollup_marks
    query = sa.select(m.c.project_id, m.c.hour_start).where(
        m.c.project_id.in_(list(project_ids)), m.c.hour_start >= start, m.c.hour_start < end
    )
    return {(str(p), int(h)) for p, h in conn.execute(query.distinct())}


# --- reading rolled hours ----------------------------------------------------------------------


def read(
    conn: Connection,
    project_ids: Sequence[str],
    start: int,
    end: int,
    *,
    root_hist: bool,
    run_hist: bool,
) -> dict[Hour, Piece]:
    """The rolled hours of these projects in ``[start, end)`` (hour starts), with the latency
    histograms asked for."""
    t = run_rollups
    ids = list(project_ids)
    cols = [
        t.c.project_id,
        t.c.hour_start,
        t.c.traces,
        t.c.errored_traces,
        t.c.root_latency_n,
        t.c.root_latency_sum,
        t.c.runs,
        t.c.run_errors,
        t.c.run_latency_n,
        t.c.run_latency_sum,
        t.c.input_tokens,
        t.c.output_tokens,
        t.c.total_tokens,
        t.c.cost,
        t.c.root_latency_hist if root_hist else sa.null(),
        t.c.run_latency_hist if run_hist else sa.null(),
    ]
    where = [t.c.project_id.in_(ids), t.c.hour_start >= start, t.c.hour_start < end]
    out: dict[Hour, Piece] = {}
    for r in conn.execute(sa.select(*cols).where(*where)):
        p = Piece(
            traces=int(r[2]),
            errored=int(r[3]),
            root_n=int(r[4]),
            root_sum=float(r[5]),
            runs=int(r[6]),
            run_errors=int(r[7]),
            run_n=int(r[8]),
            run_sum=float(r[9]),
            input_tokens=float(r[10]),
            output_tokens=float(r[11]),
            total_tokens=float(r[12]),
            cost=float(r[13]),
        )
        if r[14] is not None:
            p.root_encoded.append(orjson.loads(r[14]))
        if r[15] is not None:
            p.run_encoded.append(orjson.loads(r[15]))
        out[(str(r[0]), int(r[1]))] = p
    s = run_rollup_scores
    query = sa.select(s.c.project_id, s.c.hour_start, s.c.key, s.c.scored, s.c.score_sum).where(
        s.c.project_id.in_(ids), s.c.hour_start >= start, s.c.hour_start < end
    )
    for pid, hour, key, n, total in conn.execute(query):
        found = out.get((str(pid), int(hour)))
        if found is None:
            found = out[(str(pid), int(hour))] = Piece()
        found.scores[str(key)] = (int(n), float(total))
    return out


# --- writing rolled hours ----------------------------------------------------------------------


def replace(
    conn: Connection, hours: Iterable[Hour], figures: dict[Hour, tuple[str, Piece]]
) -> None:
    """Store the recomputed ``hours``: ``figures`` {hour: (workspace id, piece)} holds those
    with runs; the others have none left and lose their row."""
    by_project: dict[str, list[int]] = {}
    for pid, hour in hours:
        by_project.setdefault(pid, []).append(hour)
    for pid, starts in by_project.items():
        for i in range(0, len(starts), 500):
            chunk = starts[i : i + 500]
            for t in (run_rollups, run_rollup_scores):
                conn.execute(sa.delete(t).where(t.c.project_id == pid, t.c.hour_start.in_(chunk)))
    rows = []
    score_rows = []
    for (pid, hour), (ws, p) in figures.items():
        rows.append(
            {
                "project_id": pid,
                "hour_start": hour,
                "workspace_id": ws,
                "traces": p.traces,
                "errored_traces": p.errored,
                "root_latency_n": p.root_n,
                "root_latency_sum": p.root_sum,
                "root_latency_hist": orjson.dumps(lh.encode(p.root_hist)).decode(),
                "runs": p.runs,
                "run_errors": p.run_errors,
                "run_latency_n": p.run_n,
                "run_latency_sum": p.run_sum,
                "run_latency_hist": orjson.dumps(lh.encode(p.run_hist)).decode(),
                "input_tokens": p.input_tokens,
                "output_tokens": p.output_tokens,
                "total_tokens": p.total_tokens,
                "cost": p.cost,
            }
        )
        score_rows += [
            {"project_id": pid, "hour_start": hour, "key": k, "scored": n, "score_sum": s}
            for k, (n, s) in p.scores.items()
        ]
    if rows:
        conn.execute(sa.insert(run_rollups), rows)
    if score_rows:
        conn.execute(sa.insert(run_rollup_scores), score_rows)


def take_marks(conn: Connection, limit: int) -> list[tuple[int, str, int]]:
    """The oldest marks: (pk, project id, hour start)."""
    m = run_rollup_marks
    query = sa.select(m.c.pk, m.c.project_id, m.c.hour_start).order_by(m.c.pk).limit(limit)
    return [(int(pk), str(p), int(h)) for pk, p, h in conn.execute(query)]


def drop_marks(conn: Connection, pks: Sequence[int]) -> None:
    m = run_rollup_marks
    for i in range(0, len(pks), 500):
        conn.execute(sa.delete(m).where(m.c.pk.in_(list(pks[i : i + 500]))))


def project_spans(conn: Connection) -> list[tuple[str, int, int]]:
    """(project id, first start, last start) of every project with runs, for a backfill."""
    out = []
    for (pid,) in conn.execute(sa.select(projects.c.id).order_by(projects.c.id)):
        first, last = conn.execute(
            sa.select(sa.func.min(runs.c.start_time), sa.func.max(runs.c.start_time)).where(
                runs.c.project_id == pid
            )
        ).one()
        if first is not None:
            out.append((str(pid), int(first), int(last)))
    return out


def rolled_hours(conn: Connection, project_id: str, start: int, end: int) -> list[int]:
    t = run_rollups
    query = sa.select(t.c.hour_start).where(
        t.c.project_id == project_id, t.c.hour_start >= start, t.c.hour_start < end
    )
    return [int(h) for h in conn.execute(query).scalars()]


# --- marks, from every write that changes rolled figures without a new seq ---------------------


def _mark_from(conn: Connection, query: sa.Select[tuple[str, int]]) -> None:
    m = run_rollup_marks
    conn.execute(sa.insert(m).from_select(["project_id", "hour_start"], query.distinct()))


def mark_runs(conn: Connection, condition: ColumnElement[bool]) -> None:
    """Mark the start hours of the runs matching ``condition`` (call before deleting them)."""
    query = sa.select(runs.c.project_id, _hour(runs.c.start_time)).where(
        condition, runs.c.start_time.isnot(None)
    )
    _mark_from(conn, query)


def mark_traces(conn: Connection, workspace_id: str, trace_ids: Sequence[str]) -> None:
    """Mark the start hours of every run of these traces (their roots' hours included)."""
    for i in range(0, len(trace_ids), 500):
        chunk = list(trace_ids[i : i + 500])
        mark_runs(conn, sa.and_(runs.c.workspace_id == workspace_id, runs.c.trace_id.in_(chunk)))


def mark_feedback(
    conn: Connection, workspace_id: str, run_id: str | None, trace_id: str | None
) -> None:
    """Mark the hour a feedback counts in: its run's, or for trace-level feedback its root's."""
    ws = runs.c.workspace_id == workspace_id
    if run_id is not None:
        mark_runs(conn, sa.and_(ws, runs.c.id == run_id))
    elif trace_id is not None:
        mark_runs(conn, sa.and_(ws, runs.c.trace_id == trace_id, runs.c.is_root.is_(True)))


def mark_hours(conn: Connection, hours: Iterable[Hour]) -> None:
    rows = [{"project_id": p, "hour_start": h} for p, h in set(hours)]
    if rows:
        conn.execute(sa.insert(run_rollup_marks), rows)


def forget_project(conn: Connection, project_id: str) -> None:
    for t in (run_rollups, run_rollup_scores, run_rollup_marks):
        conn.execute(sa.delete(t).where(t.c.project_id == project_id))
