"""An experiment's failures counted in the database: how many of its root runs failed (on any
key, and per feedback key), and one page of the failing runs, without reading every score.

The rules are ``goldloop.domain.score_marks``'s, written as SQL: a run fails when its call
failed (status ``error``, or an error stored), or one of its feedback rows is an evaluator's
error (a truthy ``source_info.error``) or a pass/fail score that is false, or a 0-1 score below
the pass mark (a bound parameter). Other numbers (a latency, a 1-5 rating) neither pass nor fail.
JSON access is compiled per dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store.experiments import root_runs_by_id
from goldloop.store.schema import feedback, runs

__all__ = ["FailureTally", "failing_runs", "failure_tally"]


@dataclass(frozen=True, slots=True)
class FailureTally:
    runs: int
    """Root runs of the project."""
    call_failed: int
    """Of those, the runs whose call failed (they fail on every key)."""
    scored_failing: int
    """Runs whose call did not fail but one of whose results did (on any key)."""
    by_key: dict[str, int]
    """Per feedback key on the root runs: the runs whose call did not fail but a result of that
    key did (zero for a key nothing failed on)."""


def _error_is_truthy(conn: Connection) -> ColumnElement[Any]:
    """``bool(source_info["error"])`` in Python terms: present, and not null, false, 0, "",
    [] or {}."""
    info = feedback.c.source_info
    if conn.dialect.name == "postgresql":
        member = sa.func.jsonb_extract_path(info, "error")
        kind = sa.func.jsonb_typeof(member)
        text = sa.func.jsonb_extract_path_text(info, "error")
        return sa.case(
            (kind == "boolean", text == "true"),
            (kind == "number", sa.cast(text, sa.Float) != 0),
            (kind == "string", text != ""),
            (kind == "array", sa.func.jsonb_array_length(member) > 0),
            (kind == "object", text != "{}"),
            else_=sa.false(),
        )
    path = '$."error"'
    kind = sa.func.json_type(info, path)
    value = sa.func.json_extract(info, path)
    return sa.case(
        (kind == "true", sa.true()),
        (kind.in_(["integer", "real"]), value != 0),
        (kind == "text", value != ""),
        (kind == "array", sa.func.json_array_length(info, path) > 0),
        (kind == "object", value != "{}"),
        else_=sa.false(),
    )


def _result_fails(conn: Connection, pass_mark: float) -> ColumnElement[bool]:
    """The feedback row fails: an evaluator's error, a false pass/fail score, or a 0-1 score
    below ``pass_mark``."""
    score = feedback.c.score
    return sa.or_(
        _error_is_truthy(conn),
        sa.and_(feedback.c.score_is_bool.is_(True), score == 0.0),
        sa.and_(
            feedback.c.score_is_bool.is_(False),
            score >= 0.0,
            score <= 1.0,
            score < sa.bindparam("pass_mark", pass_mark, type_=sa.Float),
        ),
    )


def _call_failed() -> ColumnElement[bool]:
    return sa.or_(runs.c.status == "error", runs.c.error.isnot(None))


def _root_runs(workspace_id: str, project_id: str) -> list[ColumnElement[bool]]:
    return [
        runs.c.workspace_id == workspace_id,
        runs.c.project_id == project_id,
        runs.c.is_root.is_(True),
    ]


def _root_run_ids(
    workspace_id: str, project_id: str, *where: ColumnElement[bool]
) -> sa.Select[Any]:
    return sa.select(runs.c.id).where(*_root_runs(workspace_id, project_id), *where)


def failure_tally(
    conn: Connection, workspace_id: str, project_id: str, pass_mark: float
) -> FailureTally:
    """Three grouped queries. The feedback is read through ``IN (the project's root runs)``, so
    each run's feedback is searched by run id (never the workspace's feedback, whatever the
    planner believes about the tables' sizes)."""
    totals = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((_call_failed(), 1), else_=0)), 0),
        ).where(*_root_runs(workspace_id, project_id))
    ).one()
    called = _root_run_ids(workspace_id, project_id, sa.not_(_call_failed()))
    failed_calls = _root_run_ids(workspace_id, project_id, _call_failed())
    fails = sa.and_(_result_fails(conn, pass_mark), feedback.c.run_id.not_in(failed_calls))
    # OFFSET 0 fences the rows from the GROUP BY: grouped directly, SQLite reads the workspace's
    # feedback in key order (no sort) instead of each root run's feedback by run id
    rows = (
        sa.select(feedback.c.key, sa.case((fails, feedback.c.run_id)).label("failing_run"))
        .where(
            feedback.c.workspace_id == workspace_id,
            feedback.c.run_id.in_(_root_run_ids(workspace_id, project_id)),
        )
        .offset(0)
        .subquery("given")
    )
    per_key = conn.execute(
        sa.select(rows.c.key, sa.func.count(sa.distinct(rows.c.failing_run))).group_by(rows.c.key)
    )
    by_key = {str(key): int(n) for key, n in per_key}
    failing = conn.execute(
        sa.select(sa.func.count(sa.distinct(feedback.c.run_id))).where(
            feedback.c.workspace_id == workspace_id,
            feedback.c.run_id.in_(called),
            _result_fails(conn, pass_mark),
        )
    ).scalar_one()
    return FailureTally(int(totals[0]), int(totals[1]), int(failing), by_key)


def failing_runs(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    key: str | None,
    pass_mark: float,
    after_pk: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The root runs that failed (on ``key``, or on any key), in ingest order after
    ``after_pk``, with inputs and outputs: at most ``limit``."""
    own = sa.and_(
        feedback.c.workspace_id == runs.c.workspace_id,
        feedback.c.run_id == runs.c.id,
        _result_fails(conn, pass_mark),
    )
    if key is not None:
        own = sa.and_(own, feedback.c.key == key)
    query = (
        sa.select(runs.c.id)
        .where(
            *_root_runs(workspace_id, project_id),
            sa.or_(_call_failed(), sa.exists().where(own)),
        )
        .order_by(runs.c.pk)
        .limit(limit)
    )
    if after_pk is not None:
        query = query.where(runs.c.pk > after_pk)
    ids: Sequence[str] = conn.execute(query).scalars().all()
    return root_runs_by_id(conn, workspace_id, project_id, list(ids))
