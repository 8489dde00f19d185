"""The rule action queue: claiming due actions per rule under a lease, renewing, finishing.

An action is *due* when it is ``pending`` and its ``next_attempt_at`` has passed. Claiming one
sets ``lease_owner`` to the worker and ``next_attempt_at`` to the end of the lease, and counts an
attempt, in one statement. On PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``, so
concurrent workers claim disjoint sets without waiting on each other; on SQLite the statement
runs under the database's single write lock, which makes the pick and the update one atomic
step.

Each rule's due actions are taken in arrival order (pk), through the index
``(rule_id, status, pk, next_attempt_at)``: the actions of a worker that died are the oldest
pending ones, so they are the next claimed once their lease ends, whatever the backlog behind
them.

Finishing and renewing are fenced by ``lease_owner`` and ``attempts``: a worker writes only to
actions it still holds, so an outcome recorded by a later claimer is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import rule_actions, rules

Row = dict[str, Any]
_A = rule_actions.c


def _due(now: int) -> list[sa.ColumnElement[bool]]:
    return [_A.status == "pending", _A.next_attempt_at <= now]


def rules_with_due_actions(conn: Connection, now: int) -> list[str]:
    """Ids of the rules that have at least one due action (one index probe per rule)."""
    due = sa.exists().where(_A.rule_id == rules.c.id, *_due(now))
    q = sa.select(rules.c.id).where(due).order_by(rules.c.created_at, rules.c.id)
    return [str(v) for v in conn.execute(q).scalars()]


def claim_for_rule(
    conn: Connection, rule_id: str, now: int, limit: int, owner: str, lease_until: int
) -> list[Row]:
    """Claim up to ``limit`` of the rule's due actions, oldest first; returns the claimed rows
    as they are after the claim (``attempts`` counts this attempt)."""
    pick = sa.select(_A.pk).where(_A.rule_id == rule_id, *_due(now)).order_by(_A.pk).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    q = (
        sa.update(rule_actions)
        .where(_A.pk.in_(pick.scalar_subquery()))
        .values(attempts=_A.attempts + 1, next_attempt_at=lease_until, lease_owner=owner)
        .returning(*rule_actions.c)
    )
    claimed = [dict(r._mapping) for r in conn.execute(q)]
    claimed.sort(key=lambda r: int(r["pk"]))
    return claimed


def renew_leases(conn: Connection, owner: str, pks: Iterable[int], lease_until: int) -> set[int]:
    """Extend the leases the owner still holds among ``pks``; returns the pks it holds."""
    wanted = list(pks)
    if not wanted:
        return set()
    q = (
        sa.update(rule_actions)
        .where(_A.pk.in_(wanted), _A.lease_owner == owner, _A.status == "pending")
        .values(next_attempt_at=lease_until)
        .returning(_A.pk)
    )
    return {int(v) for v in conn.execute(q).scalars()}


def finish_claimed(conn: Connection, pk: int, owner: str, attempts: int, values: Row) -> bool:
    """Record an outcome on an action the owner still holds (this attempt's claim); False when
    the lease was lost and another worker has the action now."""
    q = (
        sa.update(rule_actions)
        .where(
            _A.pk == pk,
            _A.lease_owner == owner,
            _A.attempts == attempts,
            _A.status == "pending",
        )
        .values(**values, lease_owner=None)
    )
    return conn.execute(q).rowcount > 0


def finish_many(conn: Connection, owner: str, outcomes: list[tuple[int, int, Row]]) -> set[int]:
    """``finish_claimed`` for many ``(pk, attempts, values)``; returns the pks recorded. The
    outcomes with the same columns go in one statement (executemany). When it records fewer
    than all (a lease was lost), it is undone and they are recorded one by one, to know which."""
    recorded: set[int] = set()
    shapes: dict[tuple[str, ...], list[tuple[int, int, Row]]] = {}
    for item in outcomes:
        shapes.setdefault(tuple(sorted(item[2])), []).append(item)
    for columns, items in shapes.items():
        if len(items) > 1:
            q = (
                sa.update(rule_actions)
                .where(
                    _A.pk == sa.bindparam("b_pk"),
                    _A.lease_owner == owner,
                    _A.attempts == sa.bindparam("b_attempts"),
                    _A.status == "pending",
                )
                .values(
                    {c: sa.bindparam(f"v_{c}", type_=_A[c].type) for c in columns}
                    | {"lease_owner": None}
                )
            )
            params = [
                {"b_pk": pk, "b_attempts": attempts, **{f"v_{c}": v[c] for c in columns}}
                for pk, attempts, v in items
            ]
            savepoint = conn.begin_nested()
            if conn.execute(q, params).rowcount == len(items):
                savepoint.commit()
                recorded.update(pk for pk, _, _ in items)
                continue
            savepoint.rollback()
        for pk, attempts, values in items:
            if finish_claimed(conn, pk, owner, attempts, values):
                recorded.add(pk)
    return recorded


def release(conn: Connection, owner: str, pks: Iterable[int], now: int) -> int:
    """Give back claimed actions that were never started (due at once, the attempt uncounted)."""
    wanted = list(pks)
    if not wanted:
        return 0
    q = (
        sa.update(rule_actions)
        .where(_A.pk.in_(wanted), _A.lease_owner == owner, _A.status == "pending")
        .values(next_attempt_at=now, attempts=_A.attempts - 1, lease_owner=None)
    )
    return int(conn.execute(q).rowcount)


def rules_by_ids(conn: Connection, ids: Iterable[str]) -> dict[str, Row]:
    wanted = list(ids)
    if not wanted:
        return {}
    q = sa.select(rules).where(rules.c.id.in_(wanted))
    return {str(r.id): dict(r._mapping) for r in conn.execute(q)}
