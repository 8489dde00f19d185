"""Conversation threads: the runs of a project that share a thread id (the ``session_id``
column, filled from ``session_id`` / ``thread_id`` / ``conversation_id`` metadata or the OTel
session attributes).

A thread's turns are its traces: every trace holding a run with the thread id counts once, and
its root run is the turn (a thread id set only on a child span still finds its turn). A page of
the list (and of the users list) is found from the project's newest runs when they settle it
(``_page_keys``), else by grouping the project's runs by thread id from the index
``ix_runs_project_thread`` alone (migration 0015); then only the page's threads are counted,
from that index (counts, first and last start time without reading the runs' rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store.schema import runs

Cond = ColumnElement[bool]


@dataclass(frozen=True, slots=True)
class ThreadRow:
    thread_id: str
    run_count: int
    turn_count: int
    error_count: int
    first_start: int | None
    last_start: int | None


def _scope(
    workspace_id: str,
    project_id: str,
    start: int | None,
    end: int | None,
    threads: Sequence[str] | None = None,
) -> list[Cond]:
    """The runs of the project (in the time range) that carry a thread id, or one of
    ``threads``. (Never both conditions on ``session_id``: SQLite would then seek the index by
    ``IS NOT NULL`` alone and scan every thread.)"""
    if threads is None:
        thread: Cond = runs.c.session_id.isnot(None)
    elif len(threads) == 1:
        thread = runs.c.session_id == threads[0]
    else:
        thread = runs.c.session_id.in_(list(threads))
    return [thread, *_in_range(workspace_id, project_id, start, end)]


def _in_range(workspace_id: str, project_id: str, start: int | None, end: int | None) -> list[Cond]:
    """The project's runs (that started in the time range)."""
    where: list[Cond] = [runs.c.project_id == project_id, runs.c.workspace_id == workspace_id]
    if start is not None:
        where.append(runs.c.start_time >= start)
    if end is not None:
        where.append(runs.c.start_time < end)
    return where


def _aggregates() -> list[Any]:
    return [
        runs.c.session_id,
        sa.func.count(),
        sa.func.count(sa.distinct(runs.c.trace_id)),
        sa.func.coalesce(sa.func.sum(sa.case((runs.c.status == "error", 1), else_=0)), 0),
        sa.func.min(runs.c.start_time),
        sa.func.max(runs.c.start_time),
    ]


def _row(r: Sequence[Any]) -> ThreadRow:
    return ThreadRow(
        str(r[0]),
        int(r[1]),
        int(r[2]),
        int(r[3]),
        None if r[4] is None else int(r[4]),
        None if r[5] is None else int(r[5]),
    )


# Threads with no start time at all sort after every other one (as the oldest).
_NO_TIME = -1

# Runs read newest first to find a page of threads or users (see ``_page_keys``).
WALK_RUNS = 2_000


def _page_keys(
    conn: Connection,
    key: sa.Column[Any],
    scope: list[Cond],
    after: tuple[int, str] | None,
    limit: int,
    walk: int,
) -> list[str]:
    """``limit`` + 1 keys (thread or user ids; ``scope`` does not name the key) of the runs in
    ``scope`` by last start time, newest first (ties by key; keys whose runs have no start
    time last), after the keyset cursor ``after``.

    First from the newest ``walk`` runs (at or before the cursor's time): every key whose last
    start is later than the oldest of them is among their keys, so when there are enough such
    keys the page is settled, each checked against its true last start (a seek per key: one
    seen below the cursor may have a run above it, which put it on an earlier page). That reads
    a few thousand runs where grouping reads every run of the project (PostgreSQL: 0.4 s at
    900,000 runs). Otherwise (few keys, or many runs per key) the grouping decides."""
    if walk > 0:
        settled = _walked_keys(conn, key, scope, after, limit, walk)
        if settled is not None:
            return settled
    last = sa.func.coalesce(sa.func.max(runs.c.start_time), sa.literal(_NO_TIME, sa.BigInteger))
    page = sa.select(key).where(*scope, key.isnot(None)).group_by(key)
    if after is not None:
        value, after_key = after
        page = page.having(sa.or_(last < value, sa.and_(last == value, key > after_key)))
    page = page.order_by(last.desc(), key.asc()).limit(limit + 1)
    return [str(r[0]) for r in conn.execute(page)]


def _walked_keys(
    conn: Connection,
    key: sa.Column[Any],
    scope: list[Cond],
    after: tuple[int, str] | None,
    limit: int,
    walk: int,
) -> list[str] | None:
    # newest first along the project's start-time index; the key is read from each row
    recent = sa.select(key, runs.c.start_time).where(
        *scope, runs.c.start_time.isnot(None), key.isnot(None)
    )
    if after is not None:
        recent = recent.where(runs.c.start_time <= after[0])
    recent = recent.with_hint(runs, "INDEXED BY ix_runs_project_start_stats", "sqlite")
    rows = conn.execute(recent.order_by(runs.c.start_time.desc()).limit(walk)).all()
    if len(rows) < walk:
        return None  # every timed run read: keys with untimed runs only may be missing
    oldest = int(rows[-1][1])
    # each key at its newest run within the walk, newest first: within the cursor's time that
    # is its last start, unless it has a run above the cursor (it was on an earlier page)
    newest: dict[str, int] = {}
    for k, t in rows:
        if int(t) > oldest:
            newest.setdefault(str(k), int(t))
    ranked = sorted(newest, key=lambda k: (-newest[k], k))
    if after is not None:
        value, after_key = after
        ranked = [k for k in ranked if newest[k] < value or k > after_key]
        ranked = _below_cursor(conn, key, scope, ranked, value, limit)
    if len(ranked) < limit + 1:
        return None
    # every key whose last start (within the cursor) is above ``oldest`` was seen: the first
    # limit + 1 are the page's
    return ranked[: limit + 1]


def _below_cursor(
    conn: Connection,
    key: sa.Column[Any],
    scope: list[Cond],
    ranked: list[str],
    value: int,
    limit: int,
) -> list[str]:
    """The first ``limit`` + 1 of ``ranked`` whose last start is not above the cursor's
    ``value``, in their order, checked a chunk at a time (a seek per key). Kept, a key's last
    start is the one it was ranked by, so the order holds."""
    kept: list[str] = []
    for first in range(0, len(ranked), 2 * (limit + 1)):
        chunk = ranked[first : first + 2 * (limit + 1)]
        lasts = sa.select(key, sa.func.max(runs.c.start_time)).where(*scope, key.in_(chunk))
        true_last = {str(k): int(t) for k, t in conn.execute(lasts.group_by(key))}
        kept += [k for k in chunk if true_last[k] <= value]
        if len(kept) > limit:
            break
    return kept


def list_threads(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    start: int | None,
    end: int | None,
    after: tuple[int, str] | None,
    limit: int,
    walk: int = WALK_RUNS,
) -> tuple[list[ThreadRow], bool]:
    """Threads by last activity, newest first (ties by thread id), after the keyset cursor
    ``after`` = (last start time or -1, thread id). Returns (rows, more).

    Two steps: the page's thread ids from the last start time alone (the cheap part of the
    grouping), then the counts of just those threads (a seek per thread)."""
    in_range = _in_range(workspace_id, project_id, start, end)
    ids = _page_keys(conn, runs.c.session_id, in_range, after, limit, walk)
    more = len(ids) > limit
    ids = ids[:limit]
    if not ids:
        return [], False
    counts = (
        sa.select(*_aggregates())
        .where(*_scope(workspace_id, project_id, start, end, ids))
        .group_by(runs.c.session_id)
    )
    found = {row.thread_id: row for row in (_row(r) for r in conn.execute(counts))}
    return [found[i] for i in ids if i in found], more


def thread_summary(
    conn: Connection, workspace_id: str, project_id: str, thread_id: str
) -> ThreadRow | None:
    query = (
        sa.select(*_aggregates())
        .where(*_scope(workspace_id, project_id, None, None, [thread_id]))
        .group_by(runs.c.session_id)
    )
    found = conn.execute(query).first()
    return None if found is None else _row(found)


TURN_COLUMNS = (
    "id",
    "trace_id",
    "name",
    "kind",
    "status",
    "start_time",
    "end_time",
    "latency_us",
    "error",
    "inputs",
    "outputs",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "session_id",
    "user_id",
)


def thread_turns(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    thread_id: str,
    *,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    """The root runs of the thread's traces in start order (ties by ingest order)."""
    traces = sa.select(runs.c.trace_id).where(
        runs.c.project_id == project_id,
        runs.c.session_id == thread_id,
        runs.c.workspace_id == workspace_id,
    )
    query = (
        sa.select(*(runs.c[name] for name in TURN_COLUMNS))
        .where(
            runs.c.workspace_id == workspace_id,
            runs.c.trace_id.in_(traces.correlate(None)),
            runs.c.is_root.is_(True),
        )
        .order_by(runs.c.start_time.asc().nulls_first(), runs.c.pk.asc())
        .offset(offset)
        .limit(limit)
    )
    result = conn.execute(query)
    keys = [str(k) for k in result.keys()]  # noqa: SIM118 (a result is not a dict)
    return [dict(zip(keys, row, strict=True)) for row in result]


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One turn (a trace's root run) of a thread, without its payloads."""

    thread_id: str
    trace_id: str
    run_id: str
    start: int | None
    end: int | None
    latency_us: int | None
    status: str
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost: float | None


def turn_rows(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    thread_ids: Sequence[str],
    *,
    start: int | None = None,
    end: int | None = None,
) -> list[TurnRow]:
    """The turns of several threads (root runs that started in ``[start, end)``), by thread and
    start order: the figures of the LangSmith thread views, in one read of narrow columns."""
    if not thread_ids:
        return []
    traces = (
        sa.select(runs.c.session_id.label("thread_id"), runs.c.trace_id)
        .where(*_scope(workspace_id, project_id, None, None, thread_ids))
        .distinct()
        .subquery()
    )
    where: list[Cond] = [runs.c.workspace_id == workspace_id, runs.c.is_root.is_(True)]
    if start is not None:
        where.append(runs.c.start_time >= start)
    if end is not None:
        where.append(runs.c.start_time < end)
    query = (
        sa.select(
            traces.c.thread_id,
            runs.c.trace_id,
            runs.c.id,
            runs.c.start_time,
            runs.c.end_time,
            runs.c.latency_us,
            runs.c.status,
            runs.c.input_tokens,
            runs.c.output_tokens,
            runs.c.total_tokens,
            runs.c.cost,
        )
        .join(traces, runs.c.trace_id == traces.c.trace_id)
        .where(*where)
        .order_by(traces.c.thread_id, runs.c.start_time.asc().nulls_first(), runs.c.pk.asc())
    )
    return [
        TurnRow(
            str(r[0]), str(r[1]), str(r[2]), r[3], r[4], r[5], str(r[6]), r[7], r[8], r[9], r[10]
        )
        for r in conn.execute(query)
    ]


def run_payloads(
    conn: Connection, workspace_id: str, run_ids: Sequence[str]
) -> dict[str, tuple[Any, Any, str | None]]:
    """``(inputs, outputs, error)`` of the given runs, by run id."""
    if not run_ids:
        return {}
    query = sa.select(runs.c.id, runs.c.inputs, runs.c.outputs, runs.c.error).where(
        runs.c.workspace_id == workspace_id, runs.c.id.in_(sorted(set(run_ids)))
    )
    return {str(r[0]): (r[1], r[2], r[3]) for r in conn.execute(query)}


def first_turn_inputs(
    conn: Connection, workspace_id: str, project_id: str, thread_ids: Sequence[str]
) -> dict[str, Any]:
    """The inputs of each thread's first turn (the root run of its earliest trace), for the
    thread list's preview. The earliest start of each thread and the trace that holds it come
    from the thread index; then one read of those traces' root runs."""
    if not thread_ids:
        return {}
    where = _scope(workspace_id, project_id, None, None, thread_ids)
    first = (
        sa.select(runs.c.session_id, sa.func.min(runs.c.start_time).label("first"))
        .where(*where)
        .group_by(runs.c.session_id)
        .subquery()
    )
    earliest = (
        sa.select(runs.c.session_id, sa.func.min(runs.c.trace_id))
        .join(
            first,
            sa.and_(runs.c.session_id == first.c.session_id, runs.c.start_time == first.c.first),
        )
        .where(*where)
        .group_by(runs.c.session_id)
    )
    trace_of = {str(r[0]): str(r[1]) for r in conn.execute(earliest)}
    if not trace_of:
        return {}
    roots = sa.select(runs.c.trace_id, runs.c.inputs).where(
        runs.c.workspace_id == workspace_id,
        runs.c.trace_id.in_(sorted(set(trace_of.values()))),
        runs.c.is_root.is_(True),
    )
    by_trace = {str(r[0]): r[1] for r in conn.execute(roots)}
    return {t: by_trace[tr] for t, tr in trace_of.items() if tr in by_trace}


@dataclass(frozen=True, slots=True)
class UserRow:
    user_id: str
    run_count: int
    trace_count: int
    error_count: int
    first_start: int | None
    last_start: int | None


def list_users(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    after: tuple[int, str] | None,
    limit: int,
    walk: int = WALK_RUNS,
) -> tuple[list[UserRow], bool]:
    """The project's end users (``user_id``) by last activity, newest first (ties by user id),
    after the keyset cursor ``after`` = (last start time or -1, user id). Returns (rows, more).

    Two steps, like the thread list, through ``ix_runs_project_user`` (migration 0025, which
    holds every column read here): the page's user ids from the last start time alone, then
    the counts of just those users (a seek per user)."""
    scope = [runs.c.project_id == project_id, runs.c.workspace_id == workspace_id]
    ids = _page_keys(conn, runs.c.user_id, scope, after, limit, walk)
    more = len(ids) > limit
    ids = ids[:limit]
    if not ids:
        return [], False
    counts = (
        sa.select(
            runs.c.user_id,
            sa.func.count(),
            sa.func.count(sa.distinct(runs.c.trace_id)),
            sa.func.coalesce(sa.func.sum(sa.case((runs.c.status == "error", 1), else_=0)), 0),
            sa.func.min(runs.c.start_time),
            sa.func.max(runs.c.start_time),
        )
        .where(*scope, runs.c.user_id.in_(ids))
        .group_by(runs.c.user_id)
    )
    found = {
        row.user_id: row
        for row in (
            UserRow(
                str(r[0]),
                int(r[1]),
                int(r[2]),
                int(r[3]),
                None if r[4] is None else int(r[4]),
                None if r[5] is None else int(r[5]),
            )
            for r in conn.execute(counts)
        )
    }
    return [found[i] for i in ids if i in found], more
