"""Experiments: register, list, get (with aggregate scores per feedback key), tag.

An experiment is a project whose ``extra`` holds an ``experiment`` document::

    {"experiment": {"dataset_version": 3, "repetitions": 3, "evaluators": ["exact_match"],
                    "metadata": {...}},
     "reference_dataset_id": "<dataset id>", "metadata": {...}}

(``reference_dataset_id`` and ``metadata`` are where the LangSmith API keeps the same facts, so
experiments made through either API look alike.) Its root runs are the target calls, and the
feedback on them the scores. Results and comparisons are in ``services.experiment_results``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.safe_values import scrub
from goldloop.services import projects
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import datasets as dataset_store
from goldloop.store import experiments as store
from goldloop.store import projects as project_store
from goldloop.store.experiments import KeyAggregate
from goldloop.store.projects import ProjectRow

MAX_LIMIT = 1000
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

__all__ = [
    "Experiment",
    "ExperimentPage",
    "KeyAggregate",
    "NewExperiment",
    "TagMove",
    "get_experiment",
    "list_experiments",
    "register",
    "tag_experiment",
    "untag_experiment",
]


@dataclass(frozen=True)
class NewExperiment:
    """What the runner registers when an experiment starts."""

    name: str
    dataset: str | None = None
    """Dataset id or name (None: the examples did not come from a dataset on the server)."""
    dataset_version: int | None = None
    repetitions: int = 1
    evaluators: Sequence[str] = ()
    metadata: Mapping[str, Any] | None = None
    description: str | None = None


@dataclass(frozen=True)
class Experiment:
    """An experiment with its aggregates: root runs, failed root runs, and per feedback key the
    number of scores and their mean (for binary keys the pass rate)."""

    project: ProjectRow
    dataset_id: str | None
    dataset: str | None
    dataset_version: int | None
    repetitions: int | None
    evaluators: list[str]
    metadata: dict[str, Any]
    tags: list[str]
    run_count: int
    error_count: int
    scores: list[KeyAggregate] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.project.id

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def created_at(self) -> int:
        return self.project.created_at


@dataclass(frozen=True)
class ExperimentPage:
    items: list[Experiment]
    next_cursor: str | None


@dataclass(frozen=True)
class TagMove:
    experiment: Experiment
    previous: str | None
    """The experiment that carried the tag before (None if none, or this one already did)."""


def _doc(row: ProjectRow) -> dict[str, Any]:
    doc = (row.extra or {}).get("experiment")
    return doc if isinstance(doc, dict) else {}


def _dataset_id(row: ProjectRow) -> str | None:
    value = (row.extra or {}).get("reference_dataset_id")
    return str(value) if value is not None else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def build(
    conn: Connection,
    who: Principal,
    rows: list[ProjectRow],
    *,
    known: Mapping[str, tuple[store.RunTotals, list[KeyAggregate]]] | None = None,
) -> list[Experiment]:
    """Experiments with their aggregates: four queries for any number of rows. ``known``:
    aggregates the caller already computed from the same snapshot's runs and feedback (see
    ``aggregates_of``), so they are not read again."""
    ids = [r.id for r in rows]
    if known is not None and all(i in known for i in ids):
        totals = {i: known[i][0] for i in ids}
        scores = {i: known[i][1] for i in ids}
    else:
        totals = store.run_totals(conn, who.workspace_id, ids)
        scores = store.key_aggregates(conn, who.workspace_id, ids)
    tags = store.tags_of(conn, ids)
    wanted = {d for d in (_dataset_id(r) for r in rows) if d is not None}
    names = store.dataset_names(conn, who.workspace_id, sorted(wanted))
    out = []
    for row in rows:
        doc = _doc(row)
        ds = _dataset_id(row)
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict):
            metadata = (row.extra or {}).get("metadata")
        total = totals.get(row.id, store.RunTotals(0, 0))
        evaluators = doc.get("evaluators")
        out.append(
            Experiment(
                project=row,
                dataset_id=ds,
                dataset=names.get(ds) if ds else None,
                dataset_version=_int_or_none(doc.get("dataset_version")),
                repetitions=_int_or_none(doc.get("repetitions")),
                evaluators=[str(e) for e in evaluators] if isinstance(evaluators, list) else [],
                metadata=dict(metadata) if isinstance(metadata, dict) else {},
                tags=tags.get(row.id, []),
                run_count=total.runs,
                error_count=total.errors,
                scores=scores.get(row.id, []),
            )
        )
    return out


def aggregates_of(
    statuses: Iterable[str], scores: Iterable[tuple[str, float | bool | None]]
) -> tuple[store.RunTotals, list[KeyAggregate]]:
    """What ``store.run_totals`` and ``store.key_aggregates`` give for one experiment, from its
    root runs' statuses and the (key, score) of every feedback on them, already in memory."""
    runs = errors = 0
    for status in statuses:
        runs += 1
        errors += status == "error"
    per_key: dict[str, tuple[int, list[float]]] = {}
    for key, score in scores:
        count, values = per_key.get(key, (0, []))
        if score is not None:
            values.append(float(score))
        per_key[key] = (count + 1, values)
    aggregates = [
        KeyAggregate(
            key=key,
            count=count,
            n=len(values),
            mean=math.fsum(values) / len(values) if values else None,
            binary=bool(values) and all(v in (0.0, 1.0) for v in values),
        )
        for key, (count, values) in sorted(per_key.items())
    ]
    return store.RunTotals(runs, errors), aggregates


def load(conn: Connection, who: Principal, ref: str) -> ProjectRow:
    """The experiment with this id or name in the caller's workspace, else ``NotFound``."""
    row = store.get(conn, who.workspace_id, ref)
    if row is None:
        raise NotFound(f"no experiment with id or name {ref!r}")
    return row


def _dataset_ref(conn: Connection, who: Principal, ref: str) -> str:
    row = dataset_store.get(conn, who.workspace_id, ref)
    if row is None:
        raise NotFound(f"no dataset with id or name {ref!r}", details={"field": "dataset"})
    return row.id


def register(ctx: ServiceContext, who: Principal, new: NewExperiment) -> tuple[Experiment, bool]:
    """Create the experiment's project (or mark an existing project of that name as this
    experiment); returns it and whether the project was created."""
    if new.repetitions < 1:
        raise InvalidInput("repetitions must be at least 1", details={"field": "repetitions"})
    metadata = scrub(dict(new.metadata or {}))  # NUL: stored alike on both backends
    doc: dict[str, Any] = {
        "dataset_version": None,
        "repetitions": new.repetitions,
        "evaluators": [scrub(str(e)) for e in new.evaluators],
        "metadata": metadata,
    }
    extra: dict[str, Any] = {"experiment": doc, "metadata": dict(metadata)}
    if new.dataset is not None:

        def pin(conn: Connection) -> tuple[str, int]:
            row = dataset_store.get(conn, who.workspace_id, new.dataset or "")
            if row is None:
                raise NotFound(f"no dataset with id or name {new.dataset!r}")
            return row.id, row.head_version

        dataset_id, head = ctx.db.read(pin)
        version = head if new.dataset_version is None else new.dataset_version
        if not 0 <= version <= head:
            raise InvalidInput(
                f"dataset version {version} does not exist (newest: {head})",
                details={"field": "dataset_version"},
            )
        doc["dataset_version"] = version
        extra["reference_dataset_id"] = dataset_id
    created = True
    try:
        row = projects.create(ctx, who, new.name, new.description, extra=extra)
    except Conflict:
        existing = projects.get_by_name(ctx, who, new.name)
        row = projects.update(
            ctx, who, existing.id, description=new.description,
            extra={**(existing.extra or {}), **extra},
        )  # fmt: skip
        created = False
    return ctx.db.read(lambda c: build(c, who, [row])[0]), created


def _cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    created, _, pid = cursor.partition("_")
    try:
        return int(created), pid
    except ValueError:
        raise InvalidInput("not a cursor from this list", details={"field": "cursor"}) from None


def list_experiments(
    ctx: ServiceContext,
    who: Principal,
    *,
    dataset: str | None = None,
    tag: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
    oldest_first: bool = False,
) -> ExperimentPage:
    """Newest first (or ``oldest_first``), optionally only those on ``dataset`` (id or name)
    and/or carrying ``tag``. A cursor only continues a list in the order it was made in."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    after = _cursor(cursor)

    def read(conn: Connection) -> tuple[list[Experiment], bool]:
        dataset_id = _dataset_ref(conn, who, dataset) if dataset is not None else None
        rows = store.list_page(
            conn,
            who.workspace_id,
            dataset_id=dataset_id,
            tag=tag,
            after=after,
            limit=limit + 1,
            oldest_first=oldest_first,
        )
        return build(conn, who, rows[:limit]), len(rows) > limit

    items, more = ctx.db.read(read)
    last = items[-1] if more and items else None
    return ExperimentPage(items, f"{last.created_at}_{last.id}" if last else None)


def get_experiment(ctx: ServiceContext, who: Principal, ref: str) -> Experiment:
    """By id or by name."""
    return ctx.db.read(lambda c: build(c, who, [load(c, who, ref)])[0])


def tagged_experiment(ctx: ServiceContext, who: Principal, dataset: str, tag: str) -> Experiment:
    """The experiment of ``dataset`` (id or name) carrying ``tag``, else ``NotFound``."""

    def read(conn: Connection) -> Experiment:
        dataset_id = _dataset_ref(conn, who, dataset)
        pid = store.tagged(conn, dataset_id, tag)
        row = project_store.get(conn, who.workspace_id, pid) if pid else None
        if row is None:
            raise NotFound(f"no experiment of dataset {dataset!r} is tagged {tag!r}")
        return build(conn, who, [row])[0]

    return ctx.db.read(read)


def _check_tag(tag: str) -> None:
    if not TAG.match(tag):
        raise InvalidInput(
            "a tag is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            details={"field": "tag"},
        )


def tag_experiment(ctx: ServiceContext, who: Principal, ref: str, tag: str) -> TagMove:
    """Put ``tag`` on the experiment; the tag is unique per dataset, so it leaves the
    experiment of the same dataset that had it."""
    _check_tag(tag)

    def write(conn: Connection) -> tuple[str, str | None]:
        row = load(conn, who, ref)
        dataset_id = _dataset_id(row)
        if dataset_id is None:
            raise InvalidInput(
                f"experiment {row.name!r} did not run on a dataset on the server; tags mark "
                "the experiments of a dataset",
                details={"field": "experiment"},
            )
        # the dataset's row lock: concurrent moves of its tags take turns (PostgreSQL)
        if dataset_store.get(conn, who.workspace_id, dataset_id, for_update=True) is None:
            raise InvalidInput(f"the dataset of experiment {row.name!r} no longer exists")
        before = store.tagged(conn, dataset_id, tag)
        store.set_tag(conn, dataset_id, tag, row.id, ctx.clock())
        return row.id, before if before != row.id else None

    pid, previous = ctx.db.write(write)
    return TagMove(get_experiment(ctx, who, pid), previous)


def untag_experiment(ctx: ServiceContext, who: Principal, ref: str, tag: str) -> Experiment:
    def write(conn: Connection) -> str:
        row = load(conn, who, ref)
        dataset_id = _dataset_id(row)
        if dataset_id is None or not store.delete_tag(conn, dataset_id, tag, row.id):
            raise NotFound(f"experiment {row.name!r} has no tag {tag!r}")
        return row.id

    return get_experiment(ctx, who, ctx.db.write(write))
