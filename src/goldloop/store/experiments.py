"""Experiments: projects marked as experiments in ``projects.extra``, their aggregates over the
feedback on their root runs, their results, and their tags (unique per dataset).

A project is an experiment when its ``extra`` has an ``experiment`` document (the runner
registers one) or a ``reference_dataset_id`` (what the LangSmith API records for its
experiments); the dataset is ``extra.reference_dataset_id``. JSON access is compiled per dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store.projects import ProjectRow
from goldloop.store.projects import project_row as _project_row
from goldloop.store.schema import datasets, experiment_tags, feedback, projects, runs


def _json_text(conn: Connection, col: sa.Column[Any], key: str) -> ColumnElement[Any]:
    """The top-level member ``key`` of a JSON document (NULL when absent)."""
    if conn.dialect.name == "postgresql":
        return sa.func.jsonb_extract_path_text(col, key)
    return sa.func.json_extract(col, f'$."{key}"')


def _marked(conn: Connection) -> ColumnElement[bool]:
    extra = projects.c.extra
    return sa.or_(
        _json_text(conn, extra, "experiment").isnot(None),
        _json_text(conn, extra, "reference_dataset_id").isnot(None),
    )


def dataset_column(conn: Connection) -> ColumnElement[Any]:
    return _json_text(conn, projects.c.extra, "reference_dataset_id")


def get(conn: Connection, workspace_id: str, ref: str) -> ProjectRow | None:
    """The experiment with this id, else with this name, in the workspace."""
    for column in (projects.c.id, projects.c.name):
        query = sa.select(projects).where(
            projects.c.workspace_id == workspace_id, column == ref, _marked(conn)
        )
        found = conn.execute(query).first()
        if found:
            return _project_row(found)
    return None


def list_page(
    conn: Connection,
    workspace_id: str,
    *,
    dataset_id: str | None,
    tag: str | None,
    after: tuple[int, str] | None,
    limit: int,
    oldest_first: bool = False,
) -> list[ProjectRow]:
    """Newest first (or oldest first), keyset-paginated on (created_at, id)."""
    query = sa.select(projects).where(projects.c.workspace_id == workspace_id, _marked(conn))
    if dataset_id is not None:
        query = query.where(dataset_column(conn) == dataset_id)
    if tag is not None:
        tagged = sa.select(experiment_tags.c.project_id).where(experiment_tags.c.tag == tag)
        if dataset_id is not None:
            tagged = tagged.where(experiment_tags.c.dataset_id == dataset_id)
        query = query.where(projects.c.id.in_(tagged))
    key = sa.tuple_(projects.c.created_at, projects.c.id)
    if after is not None:
        query = query.where(key > after if oldest_first else key < after)
    order = (
        (projects.c.created_at.asc(), projects.c.id.asc())
        if oldest_first
        else (projects.c.created_at.desc(), projects.c.id.desc())
    )
    query = query.order_by(*order).limit(limit)
    return [_project_row(r) for r in conn.execute(query)]


def dataset_names(conn: Connection, workspace_id: str, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = sa.select(datasets.c.id, datasets.c.name).where(
        datasets.c.workspace_id == workspace_id, datasets.c.id.in_(list(ids))
    )
    return {r.id: r.name for r in conn.execute(query)}


# --- aggregates ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunTotals:
    runs: int
    errors: int


@dataclass(frozen=True, slots=True)
class KeyAggregate:
    key: str
    count: int
    """Feedback with this key on the root runs (scored or not)."""
    n: int
    """Of those, the ones with a score."""
    mean: float | None
    binary: bool
    """Every score is 0 or 1 (the mean is then the pass rate)."""


def _root_runs(workspace_id: str, project_ids: Sequence[str]) -> list[ColumnElement[bool]]:
    return [
        runs.c.workspace_id == workspace_id,
        runs.c.project_id.in_(list(project_ids)),
        runs.c.is_root.is_(True),
    ]


def _feedback_on_root_runs(
    workspace_id: str, project_ids: Sequence[str], *columns: ColumnElement[Any]
) -> sa.Subquery:
    """``columns`` of the feedback given to the projects' root runs, as the subquery "given".

    The feedback is reached by ``run_id IN (the projects' root runs)``, so each run's feedback is
    searched by run id (``ix_feedback_run_key``), and joins nothing: a join of feedback to runs
    left the order to the planner, and when one big project inflates the average runs per
    project, SQLite read every feedback row of the workspace in ``created_at`` order to find an
    experiment's few thousand (1.8 s at 1,000,000 runs). OFFSET 0 fences the rows from the outer
    ORDER BY or GROUP BY, which SQLite would otherwise serve from an index over the whole
    workspace's feedback (``ix_feedback_created``, ``ix_feedback_key_created``) to skip a sort."""
    # one select per project: ``project_id IN (a, b, ...)`` is costed as that many average
    # projects, which one big project (or many projects) can make dearer than reading the
    # workspace's runs through ix_runs_trace
    branches = [sa.select(runs.c.id).where(*_root_runs(workspace_id, [pid])) for pid in project_ids]
    root_ids = branches[0] if len(branches) == 1 else sa.union_all(*branches)
    return (
        sa.select(*columns)
        .where(feedback.c.workspace_id == workspace_id, feedback.c.run_id.in_(root_ids))
        .offset(0)
        .subquery("given")
    )


def _feedback_per_root_run(
    workspace_id: str, project_ids: Sequence[str], *columns: sa.Column[Any]
) -> sa.Subquery:
    """PostgreSQL: the run's ``project_id`` and ``columns`` of the feedback given to the
    projects' root runs, as the subquery "given". Each root run's feedback is a LATERAL
    subquery behind OFFSET 0, searched by run id in ``ix_feedback_run_key`` whatever the
    statistics say (the planner otherwise hashes a scan of every workspace's feedback; and the
    per-row project lookup SQLite gets costs 2-3 times more here)."""
    roots = sa.select(runs.c.id, runs.c.project_id).where(*_root_runs(workspace_id, project_ids))
    root = roots.subquery("root")
    mine = (
        sa.select(*columns)
        .where(feedback.c.workspace_id == workspace_id, feedback.c.run_id == root.c.id)
        .offset(0)
        .lateral("f")
    )
    return (
        sa.select(root.c.project_id, *(mine.c[c.name] for c in columns))
        .select_from(root.join(mine, sa.true()))
        .subquery("given")
    )


def change_stamp(conn: Connection, workspace_id: str, project_id: str) -> tuple[Any, ...]:
    """A value that differs whenever the project's runs, or the feedback given to its root
    runs, have changed: runs (count, last ``seq``: every insert and merge takes a new one);
    feedback (count, last pk, last ``updated_at``, a folded sum of every ``updated_at``, sum
    of scores: a create moves the count and the last pk, a delete the count, an edit its time
    and its score). Two reads, without the rows' documents."""
    ran = conn.execute(
        # the project id alone (the caller found the project in its workspace): the index
        # (project_id, seq) answers without reading a row
        sa.select(sa.func.count(), sa.func.max(runs.c.seq)).where(runs.c.project_id == project_id)
    ).one()
    columns = (feedback.c.pk, feedback.c.updated_at, feedback.c.score)
    if conn.dialect.name == "postgresql":
        given = _feedback_per_root_run(workspace_id, [project_id], *columns)
    else:
        given = _feedback_on_root_runs(workspace_id, [project_id], *columns)
    scored = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.max(given.c.pk),
            sa.func.max(given.c.updated_at),
            # every row's edit time, folded so that the sum stays in 64 bits
            sa.func.sum(given.c.updated_at % 1_000_003),
            sa.func.sum(given.c.score),
        )
    ).one()
    return (*ran, *scored)


def run_totals(
    conn: Connection, workspace_id: str, project_ids: Sequence[str]
) -> dict[str, RunTotals]:
    """Root runs and root runs with status error, per project."""
    if not project_ids:
        return {}

    def totals(ids: Sequence[str]) -> sa.Select[Any]:
        return (
            sa.select(
                runs.c.project_id,
                sa.func.count(),
                sa.func.sum(sa.case((runs.c.status == "error", 1), else_=0)),
            )
            .where(*_root_runs(workspace_id, ids))
            .group_by(runs.c.project_id)
        )

    query: sa.Select[Any] | sa.CompoundSelect[Any] = totals(project_ids)
    if conn.dialect.name == "sqlite" and len(project_ids) > 1:
        # one select per project, for the reason given in _feedback_on_root_runs: with many
        # projects in one IN list SQLite may read the whole workspace's runs instead.
        # (PostgreSQL costs the list from per-value statistics, and a UNION ALL of many small
        # selects there starts parallel workers: 30 ms instead of 2.)
        query = sa.union_all(*(totals([pid]) for pid in project_ids))
    return {r[0]: RunTotals(int(r[1]), int(r[2] or 0)) for r in conn.execute(query)}


def key_aggregates(
    conn: Connection, workspace_id: str, project_ids: Sequence[str]
) -> dict[str, list[KeyAggregate]]:
    """Per project and feedback key: count, scored count, mean score and whether every score is
    binary, over the feedback given to the project's root runs (by run id)."""
    if not project_ids:
        return {}
    if conn.dialect.name == "postgresql":
        given = _feedback_per_root_run(workspace_id, project_ids, feedback.c.key, feedback.c.score)
    else:
        # the run's project: one primary-key search per feedback row
        project_of_run = (
            sa.select(runs.c.project_id)
            .where(runs.c.workspace_id == feedback.c.workspace_id, runs.c.id == feedback.c.run_id)
            .scalar_subquery()
        )
        given = _feedback_on_root_runs(
            workspace_id,
            project_ids,
            project_of_run.label("project_id"),
            feedback.c.key,
            feedback.c.score,
        )
    score = given.c.score
    non_binary = sa.case((score.is_(None), 0), (score.in_([0.0, 1.0]), 0), else_=1)
    query = (
        sa.select(
            given.c.project_id,
            given.c.key,
            sa.func.count(),
            sa.func.count(score),
            sa.func.avg(score),
            sa.func.sum(non_binary),
        )
        .group_by(given.c.project_id, given.c.key)
        .order_by(given.c.project_id, given.c.key)
    )
    out: dict[str, list[KeyAggregate]] = {}
    for pid, key, count, n, mean, odd in conn.execute(query):
        agg = KeyAggregate(
            key=key,
            count=int(count),
            n=int(n),
            mean=None if mean is None else float(mean),
            binary=int(n) > 0 and int(odd or 0) == 0,
        )
        out.setdefault(pid, []).append(agg)
    return out


# --- results ---------------------------------------------------------------------------------

_RESULT_COLUMNS = (
    runs.c.pk,
    runs.c.id,
    runs.c.trace_id,
    runs.c.status,
    runs.c.start_time,
    runs.c.latency_us,
    runs.c.error,
    runs.c.metadata,
    runs.c.reference_example_id,
)
_POSITION_COLUMNS = (runs.c.pk, runs.c.id, runs.c.metadata, runs.c.reference_example_id)


def root_runs_page(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    after_pk: int | None,
    limit: int,
    with_io: bool,
    positions_only: bool = False,
) -> list[dict[str, Any]]:
    """The project's root runs in ingest order (keyset on pk); ``with_io`` adds inputs and
    outputs; ``positions_only`` reads only what places a run at its example (pk, id, metadata,
    reference example)."""
    if positions_only:
        cols = list(_POSITION_COLUMNS)
    else:
        cols = list(_RESULT_COLUMNS) + ([runs.c.inputs, runs.c.outputs] if with_io else [])
    query = sa.select(*cols).where(*_root_runs(workspace_id, [project_id]))
    if after_pk is not None:
        query = query.where(runs.c.pk > after_pk)
    query = query.order_by(runs.c.pk).limit(limit)
    result = conn.execute(query)
    keys = [str(k) for k in result.keys()]  # noqa: SIM118 (a result is not a dict)
    return [dict(zip(keys, row, strict=True)) for row in result]


def root_runs_by_id(
    conn: Connection, workspace_id: str, project_id: str, run_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """These root runs of the project, with inputs and outputs, in ingest order."""
    if not run_ids:
        return []
    cols = [*_RESULT_COLUMNS, runs.c.inputs, runs.c.outputs]
    query = (
        sa.select(*cols)
        .where(*_root_runs(workspace_id, [project_id]), runs.c.id.in_(list(run_ids)))
        .order_by(runs.c.pk)
    )
    result = conn.execute(query)
    keys = [str(k) for k in result.keys()]  # noqa: SIM118 (a result is not a dict)
    return [dict(zip(keys, row, strict=True)) for row in result]


@dataclass(frozen=True, slots=True)
class RunScore:
    run_id: str
    key: str
    score: float | bool | None
    value: Any
    comment: str | None
    source_info: dict[str, Any] | None


def _run_score(r: Any) -> RunScore:
    m = r._mapping
    score = m["score"]
    if score is not None and m["score_is_bool"]:
        score = bool(score)
    return RunScore(m["run_id"], m["key"], score, m["value"], m["comment"], m["source_info"])


_SCORE_COLUMNS = (
    feedback.c.run_id,
    feedback.c.key,
    feedback.c.score,
    feedback.c.score_is_bool,
    feedback.c.value,
    feedback.c.comment,
    feedback.c.source_info,
)
_SCORE_COLUMNS_LEAN = (
    feedback.c.run_id,
    feedback.c.key,
    feedback.c.score,
    feedback.c.score_is_bool,
    feedback.c.source_info,
)


def scores_for_runs(conn: Connection, workspace_id: str, run_ids: Sequence[str]) -> list[RunScore]:
    """Feedback given to these runs (by run id), oldest first."""
    if not run_ids:
        return []
    query = (
        sa.select(*_SCORE_COLUMNS)
        .where(feedback.c.workspace_id == workspace_id, feedback.c.run_id.in_(list(run_ids)))
        .order_by(feedback.c.created_at, feedback.c.pk)
    )
    return [_run_score(r) for r in conn.execute(query)]


def scores_for_project(
    conn: Connection, workspace_id: str, project_id: str, *, with_text: bool = True
) -> list[RunScore]:
    """Feedback given to the project's root runs (by run id), oldest first; without
    ``with_text`` the value and comment are not read (None)."""
    wanted = _SCORE_COLUMNS if with_text else _SCORE_COLUMNS_LEAN
    columns = (*wanted, feedback.c.created_at, feedback.c.pk)
    if conn.dialect.name == "postgresql":
        given = _feedback_per_root_run(workspace_id, [project_id], *columns)
    else:
        given = _feedback_on_root_runs(workspace_id, [project_id], *columns)
    query = sa.select(*(given.c[c.name] for c in wanted)).order_by(given.c.created_at, given.c.pk)
    if with_text:
        return [_run_score(r) for r in conn.execute(query)]
    out: list[RunScore] = []
    for run_id, key, score, is_bool, source_info in conn.execute(query):
        if score is not None and is_bool:
            score = bool(score)
        out.append(RunScore(run_id, key, score, None, None, source_info))
    return out


# --- tags ------------------------------------------------------------------------------------


def tags_of(conn: Connection, project_ids: Sequence[str]) -> dict[str, list[str]]:
    if not project_ids:
        return {}
    query = (
        sa.select(experiment_tags.c.project_id, experiment_tags.c.tag)
        .where(experiment_tags.c.project_id.in_(list(project_ids)))
        .order_by(experiment_tags.c.tag)
    )
    out: dict[str, list[str]] = {}
    for pid, tag in conn.execute(query):
        out.setdefault(pid, []).append(tag)
    return out


def tagged(conn: Connection, dataset_id: str, tag: str) -> str | None:
    """The project carrying ``tag`` for this dataset, if any."""
    query = sa.select(experiment_tags.c.project_id).where(
        experiment_tags.c.dataset_id == dataset_id, experiment_tags.c.tag == tag
    )
    return conn.execute(query).scalar_one_or_none()


def set_tag(conn: Connection, dataset_id: str, tag: str, project_id: str, now: int) -> None:
    """Point the dataset's ``tag`` at this project (moving it from another one). The caller
    holds the dataset's row lock, so concurrent moves of one tag take turns."""
    updated = conn.execute(
        sa.update(experiment_tags)
        .where(experiment_tags.c.dataset_id == dataset_id, experiment_tags.c.tag == tag)
        .values(project_id=project_id, updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(
            sa.insert(experiment_tags).values(
                dataset_id=dataset_id, tag=tag, project_id=project_id, updated_at=now
            )
        )


def delete_tag(conn: Connection, dataset_id: str, tag: str, project_id: str) -> bool:
    result = conn.execute(
        sa.delete(experiment_tags).where(
            experiment_tags.c.dataset_id == dataset_id,
            experiment_tags.c.tag == tag,
            experiment_tags.c.project_id == project_id,
        )
    )
    return result.rowcount > 0
