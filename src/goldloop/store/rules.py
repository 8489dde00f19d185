"""Automation rules, their cursors over the run log, and the per-object action outbox."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store.schema import feedback, rule_actions, rule_cursors, rules, runs

Row = dict[str, Any]


def insert_rule(conn: Connection, row: Row, now: int, watermark: int) -> None:
    """A new rule with its cursor at ``watermark``: it acts on what its log holds after that."""
    conn.execute(sa.insert(rules).values(**row))
    conn.execute(
        sa.insert(rule_cursors).values(
            rule_id=row["id"],
            watermark=watermark,
            processed=0,
            matched=0,
            budget_used=0,
            updated_at=now,
        )
    )


def get_rule(conn: Connection, workspace_id: str, rule_id: str) -> Row | None:
    r = conn.execute(
        sa.select(rules).where(rules.c.workspace_id == workspace_id, rules.c.id == rule_id)
    ).first()
    return dict(r._mapping) if r else None


def list_rules(conn: Connection, workspace_id: str, project_id: str | None) -> list[Row]:
    q = sa.select(rules, rule_cursors).join(rule_cursors, rule_cursors.c.rule_id == rules.c.id)
    q = q.where(rules.c.workspace_id == workspace_id)
    if project_id is not None:
        q = q.where(rules.c.project_id == project_id)
    return [dict(r._mapping) for r in conn.execute(q.order_by(rules.c.created_at))]


def get_cursor(conn: Connection, rule_id: str) -> Row | None:
    r = conn.execute(sa.select(rule_cursors).where(rule_cursors.c.rule_id == rule_id)).first()
    return dict(r._mapping) if r else None


def update_rule(conn: Connection, workspace_id: str, rule_id: str, values: Row) -> bool:
    q = (
        sa.update(rules)
        .where(rules.c.workspace_id == workspace_id, rules.c.id == rule_id)
        .values(**values)
    )
    return conn.execute(q).rowcount > 0


def delete_rule(conn: Connection, workspace_id: str, rule_id: str) -> bool:
    q = sa.delete(rules).where(rules.c.workspace_id == workspace_id, rules.c.id == rule_id)
    return conn.execute(q).rowcount > 0


def enabled_rule_ids(conn: Connection, trigger: str | None) -> list[str]:
    q = sa.select(rules.c.id).where(rules.c.enabled.is_(True))
    if trigger is not None:
        q = q.where(rules.c.trigger == trigger)
    return [str(v) for v in conn.execute(q.order_by(rules.c.created_at)).scalars()]


def lock_rule(conn: Connection, rule_id: str) -> tuple[Row, Row] | None:
    """The rule and its cursor, locked for this transaction. On PostgreSQL another worker that
    holds the lock makes this return None at once (SKIP LOCKED), so workers share the rules
    instead of doing the same one twice; SQLite's single writer serialises anyway."""
    q = sa.select(rule_cursors).where(rule_cursors.c.rule_id == rule_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    cursor = conn.execute(q).first()
    if cursor is None:
        return None
    rule = conn.execute(sa.select(rules).where(rules.c.id == rule_id)).first()
    if rule is None or not rule.enabled:
        return None
    return dict(rule._mapping), dict(cursor._mapping)


def update_cursor(conn: Connection, rule_id: str, values: Row) -> None:
    conn.execute(sa.update(rule_cursors).where(rule_cursors.c.rule_id == rule_id).values(**values))


def set_lag_unless_locked(conn: Connection, rule_id: str, lag_ms: int) -> bool:
    """Record the rule's latest action lag, unless another transaction holds its cursor (on
    PostgreSQL: a tail pass, or another worker recording its lag): the figure is a gauge that
    the next finish rewrites, and waiting for that lock would hold up the worker that records
    its outcomes (and make the tailer skip the rule while it waited). False when skipped."""
    c = rule_cursors.c
    q = sa.update(rule_cursors).values(last_lag_ms=lag_ms)
    if conn.dialect.name == "postgresql":
        free = sa.select(c.rule_id).where(c.rule_id == rule_id).with_for_update(skip_locked=True)
        q = q.where(c.rule_id.in_(free.scalar_subquery()))
    else:
        q = q.where(c.rule_id == rule_id)
    return conn.execute(q).rowcount > 0


def take_judge_budget(conn: Connection, rule_id: str, day: str, budget: int | None) -> bool:
    """Count one judged evaluation on the rule's cursor for ``day`` unless ``budget`` of them
    were counted already; one statement, so concurrent workers cannot both take the last one."""
    c = rule_cursors.c
    new_day = sa.or_(c.budget_day.is_(None), c.budget_day != day)
    where = [c.rule_id == rule_id]
    if budget is not None:
        where.append(sa.or_(new_day, c.budget_used < budget))
    q = (
        sa.update(rule_cursors)
        .where(*where)
        .values(budget_day=day, budget_used=sa.case((new_day, 1), else_=c.budget_used + 1))
    )
    return conn.execute(q).rowcount > 0


TAIL_COLUMNS = (runs.c.id, runs.c.trace_id, runs.c.seq, runs.c.created_at, runs.c.updated_at)


def tail_runs(
    conn: Connection,
    project_id: str,
    *,
    after: int,
    upto: int,
    root_only: bool,
    match: ColumnElement[bool] | None,
    limit: int,
) -> tuple[list[Row], int]:
    """Completed runs of a project with ``after < seq <= upto`` in seq order, and the highest seq
    read (matching or not) so the caller can move its watermark past non-matching rows."""
    base = [runs.c.project_id == project_id, runs.c.seq > after, runs.c.seq <= upto]
    window = sa.select(runs.c.seq).where(*base).order_by(runs.c.seq).limit(limit).subquery()
    top = conn.execute(sa.select(sa.func.max(window.c.seq))).scalar_one()
    if top is None:
        return [], after
    where = [*base, runs.c.seq <= top, runs.c.end_time.is_not(None)]
    if root_only:
        where.append(runs.c.is_root.is_(True))
    if match is not None:
        where.append(match)
    rows = conn.execute(sa.select(*TAIL_COLUMNS).where(*where).order_by(runs.c.seq))
    return [dict(r._mapping) for r in rows], int(top)


FEEDBACK_COLUMNS = (
    feedback.c.pk,
    feedback.c.id,
    feedback.c.run_id,
    feedback.c.trace_id,
    feedback.c.key,
    feedback.c.score,
    feedback.c.value,
    feedback.c.has_correction,
    feedback.c.source,
    feedback.c.created_at,
)


def tail_feedback(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    after: int,
    upto: int,
    match: ColumnElement[bool] | None,
    limit: int,
) -> tuple[list[Row], int]:
    """Feedback with ``after < pk <= upto`` (pk order) on runs or traces of the project whose
    run passes ``match``, and the highest pk read. Feedback whose run has not arrived yet is
    passed over (it cannot be tied to a project)."""
    window = (
        sa.select(feedback.c.pk)
        .where(
            feedback.c.workspace_id == workspace_id, feedback.c.pk > after, feedback.c.pk <= upto
        )
        .order_by(feedback.c.pk)
        .limit(limit)
        .subquery()
    )
    top = conn.execute(sa.select(sa.func.max(window.c.pk))).scalar_one()
    if top is None:
        return [], after
    run_where = [runs.c.workspace_id == workspace_id, runs.c.project_id == project_id]
    if match is not None:
        run_where.append(match)
    by_run = sa.select(runs.c.id).where(*run_where)
    by_trace = sa.select(runs.c.trace_id).where(*run_where, runs.c.is_root.is_(True))
    q = (
        sa.select(*FEEDBACK_COLUMNS)
        .where(
            feedback.c.workspace_id == workspace_id,
            feedback.c.pk > after,
            feedback.c.pk <= top,
            sa.or_(
                feedback.c.run_id.in_(by_run),
                sa.and_(feedback.c.run_id.is_(None), feedback.c.trace_id.in_(by_trace)),
            ),
        )
        .order_by(feedback.c.pk)
    )
    return [dict(r._mapping) for r in conn.execute(q)], int(top)


def runs_in_range(
    conn: Connection,
    project_id: str,
    *,
    start_us: int,
    end_us: int,
    root_only: bool,
    match: ColumnElement[bool] | None,
    after: tuple[int, int],
    limit: int,
) -> list[Row]:
    """Completed runs started in ``[start, end)``, in (start time, pk) order after ``after``
    (a ``(start_time, pk)`` pair; ``(start_us, 0)`` to begin): a backfill's pages.

    That order is the order of the project/start-time indexes (their entries end with the
    pk), so each page is one range read; ordered by pk alone, every page read and sorted the
    whole range again."""
    where = [
        runs.c.project_id == project_id,
        runs.c.start_time >= start_us,
        runs.c.start_time < end_us,
        runs.c.end_time.is_not(None),
        sa.tuple_(runs.c.start_time, runs.c.pk) > sa.tuple_(*after),
    ]
    if root_only:
        where.append(runs.c.is_root.is_(True))
    if match is not None:
        where.append(match)
    q = (
        sa.select(runs.c.pk, runs.c.start_time, *TAIL_COLUMNS)
        .where(*where)
        .order_by(runs.c.start_time, runs.c.pk)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def add_actions(conn: Connection, rows: list[Row]) -> None:
    """Insert pending actions; ones that exist for the same (rule, object, action) are kept as
    they are (a concurrent backfill and tailer may race on the same object)."""
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(rule_actions).on_conflict_do_nothing(
        index_elements=["rule_id", "object_id", "action_index"]
    )
    conn.execute(stmt, rows)


def objects_with_actions(conn: Connection, rule_id: str, object_ids: list[str]) -> set[str]:
    """Which of these objects already have actions recorded for the rule."""
    if not object_ids:
        return set()
    q = sa.select(rule_actions.c.object_id).where(
        rule_actions.c.rule_id == rule_id, rule_actions.c.object_id.in_(object_ids)
    )
    return {str(v) for v in conn.execute(q.distinct()).scalars()}


def list_actions(
    conn: Connection, rule_id: str, *, status: str | None, limit: int, before_pk: int | None
) -> list[Row]:
    """A rule's actions, newest first. The page's keys come from ``ix_rule_actions_rule_due``
    alone, then only those rows are read: with no status filter the index is not in ``pk``
    order, and sorting whole rows (with their detail) read every action of the rule (~0.3 s
    at 177,000 actions, Issue #23)."""
    page = sa.select(rule_actions.c.pk).where(rule_actions.c.rule_id == rule_id)
    if status:
        page = page.where(rule_actions.c.status == status)
    if before_pk is not None:
        page = page.where(rule_actions.c.pk < before_pk)
    page = page.order_by(rule_actions.c.pk.desc()).limit(limit)
    q = (
        sa.select(rule_actions)
        .where(rule_actions.c.pk.in_(page.scalar_subquery()))
        .order_by(rule_actions.c.pk.desc())
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def action_counts(conn: Connection, rule_id: str) -> dict[str, int]:
    q = (
        sa.select(rule_actions.c.status, sa.func.count())
        .where(rule_actions.c.rule_id == rule_id)
        .group_by(rule_actions.c.status)
    )
    return {str(s): int(n) for s, n in conn.execute(q)}
