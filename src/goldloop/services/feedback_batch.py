"""Feedback of many callers in one write transaction: the scores of a batch of online rule
actions (each action its own principal and its own items).

Each item is checked, fitted to its declared key and made idempotent on its id exactly as
``feedback.create`` does it, and succeeds or fails on its own: a refused score is that item's
error and nothing else's. What costs a transaction per item there is done once per batch here:
the declared keys of each workspace in one query, the log-horizon lock once, every row in one
``INSERT ... ON CONFLICT DO NOTHING``, the rows that already existed (a replay) read back in one
query. A row the database itself refuses fails the whole transaction: the caller then writes
the items of each caller on their own (``feedback.create_many``), so one poison item costs only
its own action.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from goldloop.domain.errors import Conflict, GoldloopError, NotFound
from goldloop.domain.feedback import KeySpec
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.feedback import Created, NewFeedback, _check_new, _Checked, _new_row
from goldloop.store import feedback as store
from goldloop.store import feedback_batch as batch_store
from goldloop.store import projects as project_store
from goldloop.store.feedback import FeedbackRow

Result = Created | GoldloopError


def create_batch(
    ctx: ServiceContext, groups: Sequence[tuple[Principal, Sequence[NewFeedback]]]
) -> list[list[Result]]:
    """Create the feedback of every group in one write transaction; the result of each item,
    at its position: the stored feedback (``created`` False when an identical earlier request
    stored it) or the error ``feedback.create`` would have raised for it. Raises only when the
    transaction itself fails."""
    checked: list[list[_Checked | GoldloopError]] = []
    for who, items in groups:
        row: list[_Checked | GoldloopError] = []
        for new in items:
            try:
                row.append(_check_new(ctx, who, new))
            except GoldloopError as exc:
                row.append(exc)
        checked.append(row)
    if not any(isinstance(c, _Checked) for row in checked for c in row):
        return [[c for c in row if not isinstance(c, _Checked)] for row in checked]
    now = ctx.clock()
    return ctx.db.write(lambda conn: _store(conn, groups, checked, now))


def _store(
    conn: Connection,
    groups: Sequence[tuple[Principal, Sequence[NewFeedback]]],
    checked: list[list[_Checked | GoldloopError]],
    now: int,
) -> list[list[Result]]:
    results: list[list[Result | None]] = [
        [c if isinstance(c, GoldloopError) else None for c in row] for row in checked
    ]
    wanted: dict[str, set[str]] = {}
    for (who, _), row in zip(groups, checked, strict=True):
        wanted.setdefault(who.workspace_id, set()).update(
            c.new.key for c in row if isinstance(c, _Checked)
        )
    specs = {ws: batch_store.keys(conn, ws, names) for ws, names in wanted.items()}
    lookups = _Lookups(conn)
    to_insert: list[tuple[int, int, FeedbackRow, str]] = []
    for i, ((who, _), row) in enumerate(zip(groups, checked, strict=True)):
        for j, item in enumerate(row):
            if not isinstance(item, _Checked):
                continue
            try:
                fb = _fitted(lookups, who, item, specs[who.workspace_id].get(item.new.key), now)
            except GoldloopError as exc:
                results[i][j] = exc
                continue
            to_insert.append((i, j, fb, item.digest))
    inserted = batch_store.insert_many_if_absent(conn, [(fb, d) for _, _, fb, d in to_insert])
    taken: set[tuple[str, str]] = set()
    existing: dict[str, set[str]] = {}
    for i, j, fb, _ in to_insert:
        ident = (fb.workspace_id, fb.id)
        if ident in inserted and ident not in taken:
            taken.add(ident)
            results[i][j] = Created(fb, True)
        else:
            existing.setdefault(fb.workspace_id, set()).add(fb.id)
    earlier = {ws: batch_store.stored(conn, ws, ids) for ws, ids in existing.items()}
    for i, j, fb, digest in to_insert:
        if results[i][j] is not None:
            continue
        found = earlier[fb.workspace_id].get(fb.id)
        if found is None or found[1] != digest:
            results[i][j] = Conflict(
                f"feedback {fb.id!r} already exists with a different body; "
                "use a new feedback_id, or PATCH to change it",
                details={"field": "feedback_id"},
            )
        else:
            results[i][j] = Created(found[0], False)
    return [[r for r in row if r is not None] for row in results]


class _Lookups:
    """Projects and run traces read once per batch."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.projects: dict[tuple[str, str], bool] = {}
        self.traces: dict[tuple[str, str], str | None] = {}

    def project_exists(self, workspace_id: str, project_id: str) -> bool:
        key = (workspace_id, project_id)
        if key not in self.projects:
            self.projects[key] = project_store.get(self.conn, workspace_id, project_id) is not None
        return self.projects[key]

    def trace_of(self, workspace_id: str, run_id: str) -> str | None:
        key = (workspace_id, run_id)
        if key not in self.traces:
            self.traces[key] = store.run_trace_id(self.conn, workspace_id, run_id)
        return self.traces[key]


def _fitted(
    lookups: _Lookups, who: Principal, checked: _Checked, spec: KeySpec | None, now: int
) -> FeedbackRow:
    """The row one checked request stores (as ``feedback.create`` builds it)."""
    new = checked.new
    if new.project_id and not lookups.project_exists(who.workspace_id, new.project_id):
        raise NotFound(f"no project with id {new.project_id!r}", details={"field": "project_id"})
    trace_id = new.trace_id
    if trace_id is None and new.run_id is not None:
        trace_id = lookups.trace_of(who.workspace_id, new.run_id)
    return _new_row(who, checked, spec, trace_id, now)
