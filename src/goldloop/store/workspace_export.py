"""Whole-workspace export and import (docs/export.md): every stored object of a workspace read in
keyset pages, and written back with its ids.

One ``Spec`` per export file: the table, the columns it carries (never ``workspace_id``, nor the
internal ``pk`` and ``seq``, which the target database assigns again in the same order), the
keyset that pages it, and which rows belong to a workspace (and to a selection of projects and
datasets). Runs are paged per project along ``ix_runs_project_seq`` (``run_rows``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from goldloop.domain.errors import Conflict
from goldloop.store import log_horizon
from goldloop.store.schema import (
    alert_events,
    alert_rules,
    annotation_queue_items,
    annotation_queue_reviews,
    annotation_queues,
    attachments,
    audit_log,
    canary_items,
    canary_runs,
    canary_sets,
    channels,
    dataset_examples,
    dataset_tags,
    dataset_versions,
    datasets,
    experiment_tags,
    feedback,
    feedback_history,
    feedback_keys,
    pairwise_items,
    pairwise_queues,
    projects,
    redaction_configs,
    retention_policies,
    rule_cursors,
    rules,
    runs,
)

Row = dict[str, Any]


class unindexed(ColumnElement[Any]):
    """A column that SQLite must not pick an index for (``+col``; plain elsewhere).

    Pages of the big tables are ranges of their primary key (``pk > :after ORDER BY pk``). Given
    ``workspace_id = ?`` as well, SQLite's planner takes the workspace's index instead, then
    sorts every row of the workspace for every page: an export would grow quadratically."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: sa.Column[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(unindexed)
def _plain(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(unindexed, "sqlite")
def _unary_plus(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


_INTERNAL = frozenset({"workspace_id", "pk", "seq"})


@dataclass(frozen=True)
class Selection:
    """Which projects and datasets (ids); None: all of the workspace's."""

    project_ids: tuple[str, ...] | None = None
    dataset_ids: tuple[str, ...] | None = None

    @property
    def whole(self) -> bool:
        return self.project_ids is None and self.dataset_ids is None


Scope = Callable[[str, Selection], ColumnElement[bool]]


def _projects(ws: str, sel: Selection) -> sa.Select[Any]:
    q = sa.select(projects.c.id).where(projects.c.workspace_id == ws)
    return q if sel.project_ids is None else q.where(projects.c.id.in_(sel.project_ids))


def _datasets(ws: str, sel: Selection) -> sa.Select[Any]:
    q = sa.select(datasets.c.id).where(datasets.c.workspace_id == ws)
    return q if sel.dataset_ids is None else q.where(datasets.c.id.in_(sel.dataset_ids))


def _in_projects(col: sa.Column[Any]) -> Scope:
    return lambda ws, sel: col.in_(_projects(ws, sel))


def _in_datasets(col: sa.Column[Any]) -> Scope:
    return lambda ws, sel: col.in_(_datasets(ws, sel))


def _feedback_scope(ws: str, sel: Selection) -> ColumnElement[bool]:
    mine = unindexed(feedback.c.workspace_id) == ws
    if sel.project_ids is None:
        return mine
    chosen = runs.c.workspace_id == ws, runs.c.project_id.in_(sel.project_ids)
    return sa.and_(
        mine,
        sa.or_(
            feedback.c.run_id.in_(sa.select(runs.c.id).where(*chosen)),
            sa.and_(
                feedback.c.run_id.is_(None),
                feedback.c.trace_id.in_(sa.select(runs.c.trace_id).where(*chosen)),
            ),
            feedback.c.project_id.in_(sel.project_ids),
        ),
    )


def _history_scope(ws: str, sel: Selection) -> ColumnElement[bool]:
    mine = unindexed(feedback_history.c.workspace_id) == ws
    if sel.project_ids is None:
        return mine
    chosen = sa.select(feedback.c.id).where(_feedback_scope(ws, sel))
    return sa.and_(mine, feedback_history.c.feedback_id.in_(chosen))


def _attachment_scope(ws: str, sel: Selection) -> ColumnElement[bool]:
    mine = attachments.c.workspace_id == ws
    if sel.whole:
        return mine
    by_run = sa.and_(
        attachments.c.owner_kind == "run",
        attachments.c.owner_id.in_(
            sa.select(runs.c.id).where(
                runs.c.workspace_id == ws, _in_projects(runs.c.project_id)(ws, sel)
            )
        ),
    )
    dataset_ids = sel.dataset_ids if sel.dataset_ids is not None else None
    if dataset_ids is None:
        by_example: ColumnElement[bool] = attachments.c.owner_kind == "example"
    else:
        by_example = sa.and_(
            attachments.c.owner_kind == "example",
            sa.or_(sa.false(), *(attachments.c.owner_id.startswith(f"{d}:") for d in dataset_ids)),
        )
    return sa.and_(mine, sa.or_(by_run, by_example))


def _queue_items_scope(ws: str, sel: Selection) -> ColumnElement[bool]:
    """A queue's items (the whole workspace), or those on runs of the chosen projects."""
    mine = unindexed(annotation_queue_items.c.workspace_id) == ws
    if sel.project_ids is None:
        return mine
    chosen = sa.select(runs.c.id).where(
        runs.c.workspace_id == ws, runs.c.project_id.in_(sel.project_ids)
    )
    return sa.and_(mine, annotation_queue_items.c.run_id.in_(chosen))


def _canary_sets(ws: str, sel: Selection) -> sa.Select[Any]:
    chosen_rules = sa.select(rules.c.id).where(
        rules.c.workspace_id == ws, _in_projects(rules.c.project_id)(ws, sel)
    )
    return sa.select(canary_sets.c.id).where(
        canary_sets.c.workspace_id == ws, canary_sets.c.rule_id.in_(chosen_rules)
    )


def _workspace(table: sa.Table) -> Scope:
    return lambda ws, sel: table.c.workspace_id == ws


def _whole_only(table: sa.Table) -> Scope:
    """Workspace-wide records (the audit log): only in an export of the whole workspace."""
    return lambda ws, sel: sa.and_(
        table.c.workspace_id == ws, sa.true() if sel.whole else sa.false()
    )


@dataclass(frozen=True)
class Spec:
    table: sa.Table
    key: tuple[str, ...]
    scope: Scope

    @property
    def columns(self) -> list[sa.Column[Any]]:
        return [c for c in self.table.c if c.name not in _INTERNAL]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns)

    @property
    def required(self) -> frozenset[str]:
        return frozenset(
            c.name for c in self.columns if not c.nullable and c.server_default is None
        )


SPECS: dict[str, Spec] = {
    "projects": Spec(
        projects,
        ("id",),
        lambda ws, sel: sa.and_(
            projects.c.workspace_id == ws,
            projects.c.id.in_(sel.project_ids) if sel.project_ids is not None else sa.true(),
        ),
    ),
    "runs": Spec(runs, ("project_id", "seq"), _in_projects(runs.c.project_id)),
    "feedback": Spec(feedback, ("pk",), _feedback_scope),
    "feedback_history": Spec(feedback_history, ("pk",), _history_scope),
    "feedback_keys": Spec(feedback_keys, ("key",), _workspace(feedback_keys)),
    "datasets": Spec(
        datasets,
        ("id",),
        lambda ws, sel: sa.and_(
            datasets.c.workspace_id == ws,
            datasets.c.id.in_(sel.dataset_ids) if sel.dataset_ids is not None else sa.true(),
        ),
    ),
    "dataset_versions": Spec(
        dataset_versions, ("dataset_id", "version"), _in_datasets(dataset_versions.c.dataset_id)
    ),
    "dataset_tags": Spec(
        dataset_tags, ("dataset_id", "tag"), _in_datasets(dataset_tags.c.dataset_id)
    ),
    "dataset_examples": Spec(
        dataset_examples,
        ("pk",),
        lambda ws, sel: unindexed(dataset_examples.c.dataset_id).in_(_datasets(ws, sel)),
    ),
    "experiment_tags": Spec(
        experiment_tags,
        ("dataset_id", "tag"),
        lambda ws, sel: sa.and_(
            _in_datasets(experiment_tags.c.dataset_id)(ws, sel),
            _in_projects(experiment_tags.c.project_id)(ws, sel),
        ),
    ),
    "attachments": Spec(attachments, ("owner_kind", "owner_id", "name"), _attachment_scope),
    "retention_policies": Spec(
        retention_policies, ("project_id",), _in_projects(retention_policies.c.project_id)
    ),
    "redaction_configs": Spec(
        redaction_configs,
        ("project_id",),
        lambda ws, sel: sa.and_(
            redaction_configs.c.workspace_id == ws,
            sa.true()
            if sel.project_ids is None
            else redaction_configs.c.project_id.in_(["", *sel.project_ids]),
        ),
    ),
    "annotation_queues": Spec(annotation_queues, ("id",), _workspace(annotation_queues)),
    "annotation_queue_items": Spec(annotation_queue_items, ("pk",), _queue_items_scope),
    "annotation_queue_reviews": Spec(
        annotation_queue_reviews,
        ("pk",),
        lambda ws, sel: sa.and_(
            unindexed(annotation_queue_reviews.c.workspace_id) == ws,
            sa.true()
            if sel.project_ids is None
            else annotation_queue_reviews.c.item_id.in_(
                sa.select(annotation_queue_items.c.id).where(_queue_items_scope(ws, sel))
            ),
        ),
    ),
    "pairwise_queues": Spec(pairwise_queues, ("queue_id",), _workspace(pairwise_queues)),
    "pairwise_items": Spec(
        pairwise_items,
        ("item_id",),
        lambda ws, sel: pairwise_items.c.item_id.in_(
            sa.select(annotation_queue_items.c.id).where(_queue_items_scope(ws, sel))
        ),
    ),
    "channels": Spec(channels, ("id",), _workspace(channels)),
    "alert_rules": Spec(
        alert_rules,
        ("id",),
        lambda ws, sel: sa.and_(
            alert_rules.c.workspace_id == ws, _in_projects(alert_rules.c.project_id)(ws, sel)
        ),
    ),
    "alert_events": Spec(
        alert_events,
        ("id",),
        lambda ws, sel: unindexed(alert_events.c.alert_rule_id).in_(
            sa.select(alert_rules.c.id).where(
                alert_rules.c.workspace_id == ws, _in_projects(alert_rules.c.project_id)(ws, sel)
            )
        ),
    ),
    "rules": Spec(
        rules,
        ("id",),
        lambda ws, sel: sa.and_(
            rules.c.workspace_id == ws, _in_projects(rules.c.project_id)(ws, sel)
        ),
    ),
    "canary_sets": Spec(
        canary_sets, ("id",), lambda ws, sel: canary_sets.c.id.in_(_canary_sets(ws, sel))
    ),
    "canary_items": Spec(
        canary_items,
        ("set_id", "run_id"),
        lambda ws, sel: canary_items.c.set_id.in_(_canary_sets(ws, sel)),
    ),
    "canary_runs": Spec(
        canary_runs,
        ("id",),
        lambda ws, sel: unindexed(canary_runs.c.set_id).in_(_canary_sets(ws, sel)),
    ),
    "audit_log": Spec(audit_log, ("pk",), _whole_only(audit_log)),
}


def page(
    conn: Connection,
    kind: str,
    workspace_id: str,
    selection: Selection,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> tuple[list[Row], tuple[Any, ...] | None]:
    """Up to ``limit`` rows of ``kind`` after the keyset position ``after`` (None: from the
    start), and the position of the last one (None when the page is empty).

    Each page is one range of an index, so an export reads each row once: runs along
    ``ix_runs_project_seq`` one project after another; the big tables keyed by ``pk`` along the
    primary key (see ``unindexed``)."""
    if kind == "runs":
        rows, last = _page_runs(conn, workspace_id, selection, after, limit)
    else:
        spec = SPECS[kind]
        key = [spec.table.c[k] for k in spec.key]
        cols = spec.columns + [c for c in key if c.name in _INTERNAL]
        query = sa.select(*cols).where(spec.scope(workspace_id, selection))
        if after is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*after))
        query = query.order_by(*key).limit(limit)
        rows = [dict(r._mapping) for r in conn.execute(query)]
        last = tuple(rows[-1][k] for k in spec.key) if rows else None
    for row in rows:
        for name in _INTERNAL:
            row.pop(name, None)
    return rows, last


def _next_project(
    conn: Connection, workspace_id: str, selection: Selection, after: str
) -> str | None:
    query = sa.select(sa.func.min(projects.c.id)).where(
        SPECS["projects"].scope(workspace_id, selection), projects.c.id > after
    )
    found = conn.execute(query).scalar()
    return str(found) if found is not None else None


def _page_runs(
    conn: Connection,
    workspace_id: str,
    selection: Selection,
    after: tuple[Any, ...] | None,
    limit: int,
) -> tuple[list[Row], tuple[Any, ...] | None]:
    project, seq = (
        after if after is not None else (_next_project(conn, workspace_id, selection, ""), 0)
    )
    cols = [*SPECS["runs"].columns, runs.c.seq]
    rows: list[Row] = []
    while project is not None and len(rows) < limit:
        want = limit - len(rows)
        query = (
            sa.select(*cols)
            .where(
                runs.c.project_id == project, runs.c.workspace_id == workspace_id, runs.c.seq > seq
            )
            .order_by(runs.c.seq)
            .limit(want)
        )
        found = [dict(r._mapping) for r in conn.execute(query)]
        rows.extend(found)
        if len(found) < want:  # this project is done: on to the next one
            project, seq = _next_project(conn, workspace_id, selection, project), 0
        else:
            seq = found[-1]["seq"]
    if not rows:
        return [], None
    return rows, (rows[-1]["project_id"], rows[-1]["seq"])


def project_names(
    conn: Connection, workspace_id: str, selection: Selection
) -> list[tuple[str, str]]:
    """(id, name) of the selected projects, in id order."""
    query = (
        sa.select(projects.c.id, projects.c.name)
        .where(SPECS["projects"].scope(workspace_id, selection))
        .order_by(projects.c.id)
    )
    return [(r.id, r.name) for r in conn.execute(query)]


def resolve(conn: Connection, table: sa.Table, workspace_id: str, ref: str) -> str | None:
    """The id of the project or dataset with this id, else this name, in the workspace."""
    for col in (table.c.id, table.c.name):
        found = conn.execute(
            sa.select(table.c.id).where(table.c.workspace_id == workspace_id, col == ref)
        ).first()
        if found:
            return str(found.id)
    return None


# --- import ------------------------------------------------------------------------------------

_CONTENT = (projects, datasets, feedback, feedback_keys, channels, annotation_queues)


def occupied(conn: Connection, workspace_id: str) -> list[str]:
    """The kinds of object the workspace holds already (projects, datasets, ...)."""
    found = []
    for table in _CONTENT:
        q = sa.select(sa.literal(1)).select_from(table).where(table.c.workspace_id == workspace_id)
        if conn.execute(q.limit(1)).first():
            found.append(table.name)
    return found


def existing_ids(conn: Connection, kind: str, workspace_id: str, ids: Sequence[str]) -> list[str]:
    """Which of these ids are taken: server-wide for tables whose ids are unique on the server
    (projects, datasets, channels, rules, alert rules and events, queues and their items, canary
    sets and runs), in the workspace for runs and feedback."""
    table = SPECS[kind].table
    query = sa.select(table.c.id).where(table.c.id.in_(list(ids)))
    if kind in ("runs", "feedback"):
        query = query.where(table.c.workspace_id == workspace_id)
    return sorted(str(i) for i in conn.scalars(query))


def existing_names(
    conn: Connection, kind: str, workspace_id: str, names: Sequence[str]
) -> list[str]:
    table = SPECS[kind].table
    query = sa.select(table.c.name).where(
        table.c.workspace_id == workspace_id, table.c.name.in_(list(names))
    )
    return sorted(str(n) for n in conn.scalars(query))


def _next_seqs(conn: Connection, n: int) -> list[int]:
    """``n`` new run log numbers, ascending (see ``run_writes``: the sequence on PostgreSQL,
    max + 1 under SQLite's single writer)."""
    if conn.dialect.name == "postgresql":
        values = conn.execute(
            sa.text("SELECT nextval('runs_seq') FROM generate_series(1, :n)"), {"n": n}
        ).scalars()
        return sorted(int(v) for v in values)
    top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(runs.c.seq), 0))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + n))


def insert(conn: Connection, kind: str, workspace_id: str, rows: Sequence[Row]) -> None:
    """Insert exported rows of ``kind`` into the workspace, in the order given (``pk`` and runs'
    ``seq`` are drawn anew, so the order of the export is the order of the log). A row the
    database refuses (a taken id, a missing parent) is a ``Conflict`` saying why."""
    if not rows:
        return
    try:
        with conn.begin_nested():
            _insert(conn, kind, workspace_id, rows)
    except sa.exc.IntegrityError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise Conflict(f"{kind}: the database refused a row ({reason})") from None


def _insert(conn: Connection, kind: str, workspace_id: str, rows: Sequence[Row]) -> None:
    table = SPECS[kind].table
    values = [dict(r) for r in rows]
    if "workspace_id" in table.c:
        for v in values:
            v["workspace_id"] = workspace_id
    if kind in ("runs", "feedback"):
        log_horizon.hold_writer_lock(conn)  # rules tail these logs (see log_horizon)
    if kind == "runs":
        # A run updated while the export read the project comes twice (its seq moved on): the
        # later line is its newer state and replaces the first.
        latest = {v["id"]: v for v in values}
        values = list(latest.values())
        for v, seq in zip(values, _next_seqs(conn, len(values)), strict=True):
            v["seq"] = seq
        stmt = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(runs)
        names = [c.name for c in runs.c if c.name not in ("pk", "workspace_id", "id")]
        stmt = stmt.on_conflict_do_update(
            index_elements=["workspace_id", "id"],
            set_={n: stmt.excluded[n] for n in names},
        )
        conn.execute(stmt, values)
        return
    conn.execute(sa.insert(table), values)


def insert_rule_cursors(
    conn: Connection, rule_ids: Sequence[str], horizons: dict[str, int], now: int
) -> None:
    """Cursors for imported rules at the head of the logs: what was imported is history the
    rules acted on at the source, so they act only on what arrives from now on."""
    if not rule_ids:
        return
    query = sa.select(rules.c.id, rules.c.trigger).where(rules.c.id.in_(list(rule_ids)))
    triggers = {r.id: r.trigger for r in conn.execute(query)}
    conn.execute(
        sa.insert(rule_cursors),
        [
            {
                "rule_id": rule_id,
                "watermark": horizons[triggers[rule_id]],
                "processed": 0,
                "matched": 0,
                "budget_used": 0,
                "updated_at": now,
            }
            for rule_id in rule_ids
        ],
    )
