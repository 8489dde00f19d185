"""Judge drift canaries: the sets, their frozen items and their runs (services.canaries).

Scheduling is a compare-and-set on ``canary_sets.pending_run_id`` (one queued run per set, so
two workers scheduling at once queue one run); the run itself is a rule action of type
``canary`` (``action_index`` -1), claimed under a lease like every other rule action
(``store.rule_queue``). A cycle's judge calls are taken from the rule's daily judge budget at
once, all or none (:func:`take_judge_budget`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import (
    canary_items,
    canary_runs,
    canary_sets,
    rule_actions,
    rule_cursors,
    rules,
)

Row = dict[str, Any]
_S, _R = canary_sets.c, canary_runs.c


def insert_set(conn: Connection, row: Row, items: list[Row]) -> None:
    conn.execute(sa.insert(canary_sets), [row])
    if items:
        conn.execute(sa.insert(canary_items), items)


def get_set(conn: Connection, workspace_id: str, set_id: str) -> Row | None:
    r = conn.execute(
        sa.select(canary_sets).where(_S.workspace_id == workspace_id, _S.id == set_id)
    ).first()
    return dict(r._mapping) if r else None


def set_of_rule(conn: Connection, workspace_id: str, rule_id: str) -> Row | None:
    r = conn.execute(
        sa.select(canary_sets).where(_S.workspace_id == workspace_id, _S.rule_id == rule_id)
    ).first()
    return dict(r._mapping) if r else None


def list_sets(
    conn: Connection,
    workspace_id: str,
    *,
    rule_id: str | None = None,
    project_id: str | None = None,
    judge_key: str | None = None,
) -> list[Row]:
    """The workspace's canary sets with their rule's name and project."""
    q = (
        sa.select(canary_sets, rules.c.name.label("rule_name"), rules.c.project_id)
        .join(rules, rules.c.id == _S.rule_id)
        .where(_S.workspace_id == workspace_id)
        .order_by(_S.created_at, _S.id)
    )
    if rule_id is not None:
        q = q.where(_S.rule_id == rule_id)
    if project_id is not None:
        q = q.where(rules.c.project_id == project_id)
    if judge_key is not None:
        q = q.where(_S.judge_key == judge_key)
    return [dict(r._mapping) for r in conn.execute(q)]


def delete_set(conn: Connection, workspace_id: str, set_id: str) -> bool:
    conn.execute(sa.delete(canary_items).where(canary_items.c.set_id == set_id))
    conn.execute(sa.delete(canary_runs).where(_R.set_id == set_id))
    q = sa.delete(canary_sets).where(_S.workspace_id == workspace_id, _S.id == set_id)
    return conn.execute(q).rowcount > 0


def update_set(conn: Connection, set_id: str, values: Row) -> None:
    conn.execute(sa.update(canary_sets).where(_S.id == set_id).values(**values))


def items(conn: Connection, set_id: str) -> list[Row]:
    q = (
        sa.select(canary_items)
        .where(canary_items.c.set_id == set_id)
        .order_by(canary_items.c.position)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def insert_run(conn: Connection, row: Row) -> None:
    conn.execute(sa.insert(canary_runs), [row])


def get_run(conn: Connection, run_id: str) -> Row | None:
    r = conn.execute(sa.select(canary_runs).where(_R.id == run_id)).first()
    return dict(r._mapping) if r else None


def update_run(conn: Connection, run_id: str, values: Row) -> None:
    conn.execute(sa.update(canary_runs).where(_R.id == run_id).values(**values))


def list_runs(conn: Connection, set_id: str, *, limit: int, verdicts: bool = False) -> list[Row]:
    """The set's runs, newest first (without the per-canary verdicts unless asked)."""
    cols = [c for c in canary_runs.c if verdicts or c.name != "verdicts"]
    q = (
        sa.select(*cols)
        .where(_R.set_id == set_id)
        .order_by(_R.created_at.desc(), _R.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def latest_finished(conn: Connection, set_id: str) -> Row | None:
    """The newest run that ended (done, skipped or failed), verdicts included."""
    q = (
        sa.select(canary_runs)
        .where(_R.set_id == set_id, _R.status != "queued")
        .order_by(_R.created_at.desc(), _R.id.desc())
        .limit(1)
    )
    r = conn.execute(q).first()
    return dict(r._mapping) if r else None


def latest_done(conn: Connection, set_id: str) -> Row | None:
    q = (
        sa.select(canary_runs)
        .where(_R.set_id == set_id, _R.status == "done")
        .order_by(_R.created_at.desc(), _R.id.desc())
        .limit(1)
    )
    r = conn.execute(q).first()
    return dict(r._mapping) if r else None


def schedulable(conn: Connection) -> list[Row]:
    """Every canary set of an enabled rule, with the rule (for its judge) and its last update."""
    q = (
        sa.select(
            canary_sets,
            rules.c.actions,
            rules.c.updated_at.label("rule_updated_at"),
        )
        .join(rules, rules.c.id == _S.rule_id)
        .where(rules.c.enabled.is_(True))
        .order_by(_S.created_at, _S.id)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def claim_schedule(conn: Connection, set_id: str, run_id: str | None, expect: str | None) -> bool:
    """Make ``run_id`` the set's pending run (None: none) if it still is ``expect``."""
    cond = _S.pending_run_id.is_(None) if expect is None else _S.pending_run_id == expect
    q = sa.update(canary_sets).where(_S.id == set_id, cond).values(pending_run_id=run_id)
    return conn.execute(q).rowcount > 0


def take_judge_budget(
    conn: Connection, rule_id: str, day: str, budget: int | None, calls: int
) -> bool:
    """Count ``calls`` judged evaluations on the rule's cursor for ``day``, all or none: False
    (nothing counted) when fewer than ``calls`` are left of ``budget``. One statement."""
    c = rule_cursors.c
    new_day = sa.or_(c.budget_day.is_(None), c.budget_day != day)
    where = [c.rule_id == rule_id]
    if budget is not None:
        if calls > budget:
            return False
        where.append(sa.or_(new_day, c.budget_used + calls <= budget))
    q = (
        sa.update(rule_cursors)
        .where(*where)
        .values(budget_day=day, budget_used=sa.case((new_day, calls), else_=c.budget_used + calls))
    )
    return conn.execute(q).rowcount > 0


def runs_by_ids(conn: Connection, ids: Iterable[str]) -> dict[str, Row]:
    wanted = list(ids)
    if not wanted:
        return {}
    q = sa.select(canary_runs).where(_R.id.in_(wanted))
    return {str(r.id): dict(r._mapping) for r in conn.execute(q)}


def action_of(conn: Connection, rule_id: str, object_id: str, index: int) -> Row | None:
    """The rule action that runs a canary run (status and detail)."""
    a = rule_actions.c
    q = sa.select(a.status, a.detail).where(
        a.rule_id == rule_id, a.object_id == object_id, a.action_index == index
    )
    r = conn.execute(q).first()
    return dict(r._mapping) if r else None
