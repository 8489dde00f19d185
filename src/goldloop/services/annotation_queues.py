"""Annotation queues: create, read, change and delete a queue; add runs to it and list them.

A queue names the declared feedback keys (score configs) reviewers fill, how many reviewers
each item needs and, optionally, the dataset completed items flow into. Creating, changing and
deleting a queue needs an admin key (it decides what lands in a dataset); any key of the
workspace may add runs and review (``services.annotation_reviews``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import annotation_queues as rules
from goldloop.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from goldloop.services import dataset_runs
from goldloop.services import datasets as ds
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import annotation_queues as store
from goldloop.store import datasets as dataset_store
from goldloop.store import feedback as feedback_store
from goldloop.store import pairwise_reviews as pairwise_store
from goldloop.store import run_sources
from goldloop.store.annotation_queues import ItemRow, QueueCounts, QueueRow

MAX_LIMIT = 1000
ITEM_STATUSES = ("pending", "completed")


@dataclass(frozen=True)
class QueueView:
    queue: QueueRow
    counts: QueueCounts
    dataset_name: str | None


@dataclass(frozen=True)
class AddedRuns:
    added: list[ItemRow]
    already_queued: list[str]  # run ids that were in the queue already


def need_admin(who: Principal, what: str = "changing annotation queues") -> None:
    if not who.is_admin:
        raise Forbidden(f"{what} needs an admin API key (goldloop keys create --role admin)")


def load(conn: Connection, who: Principal, queue_id: str, *, for_update: bool = False) -> QueueRow:
    """The queue with this id (or, failing that, this name) in the caller's workspace."""
    row = store.get_queue(conn, who.workspace_id, queue_id, for_update=for_update)
    if row is None:
        named = store.list_queues(conn, who.workspace_id, name=queue_id, limit=1)
        if named:
            row = store.get_queue(conn, who.workspace_id, named[0].id, for_update=for_update)
    if row is None:
        raise NotFound(f"no annotation queue with id {queue_id!r}")
    return row


def refuse_pairwise(conn: Connection, who: Principal, queue: QueueRow, instead: str) -> None:
    """Refuse a single-run operation on a pairwise queue (``services.pairwise_reviews``)."""
    if pairwise_store.get_queue(conn, who.workspace_id, queue.id) is not None:
        raise InvalidInput(
            f"annotation queue {queue.name!r} is a pairwise queue: {instead}",
            details={"field": "queue"},
        )


def _check_declared(conn: Connection, who: Principal, keys: list[str]) -> None:
    for key in keys:
        if feedback_store.get_key(conn, who.workspace_id, key) is None:
            raise InvalidInput(
                f"feedback key {key!r} is not declared: declare it first "
                "(PUT /api/v1/feedback-keys/{key}) so reviewers know what to fill",
                details={"field": "keys", "key": key},
            )


def _dataset_id(conn: Connection, who: Principal, ref: str | None) -> str | None:
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str):
        raise InvalidInput("dataset is a dataset's id or name", details={"field": "dataset"})
    return ds.load(conn, who, ref).id


def _view(conn: Connection, row: QueueRow) -> QueueView:
    counts = store.counts(conn, [row.id]).get(row.id, QueueCounts())
    return QueueView(row, counts, _dataset_name(conn, row))


def _dataset_name(conn: Connection, row: QueueRow) -> str | None:
    if row.dataset_id is None:
        return None
    found = dataset_store.get(conn, row.workspace_id, row.dataset_id)
    return found.name if found else None


def create(
    ctx: ServiceContext,
    who: Principal,
    *,
    name: Any,
    description: Any = None,
    instructions: Any = None,
    keys: Any = None,
    reviewers_needed: Any = 1,
    dataset: Any = None,
    lease_seconds: Any = rules.LEASE_S,
    queue_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> QueueView:
    need_admin(who)
    row = QueueRow(
        id=_new_id(queue_id),
        workspace_id=who.workspace_id,
        name=rules.check_name(name),
        description=rules.check_text("description", description),
        instructions=rules.check_text("instructions", instructions),
        keys=rules.check_keys(keys),
        reviewers_needed=rules.check_reviewers(reviewers_needed),
        dataset_id=None,
        lease_s=rules.check_lease(lease_seconds),
        extra=extra,
        created_at=ctx.clock(),
        updated_at=0,
    )
    row = replace(row, updated_at=row.created_at)

    def write(conn: Connection) -> QueueView:
        _check_declared(conn, who, row.keys)
        final = replace(row, dataset_id=_dataset_id(conn, who, dataset))
        if store.queue_id_exists(conn, final.id):
            raise Conflict(
                f"an annotation queue with id {final.id!r} exists", details={"field": "id"}
            )
        if not store.insert_queue(conn, final):
            raise Conflict(
                f"an annotation queue named {final.name!r} exists in this workspace",
                details={"field": "name"},
            )
        return _view(conn, final)

    return ctx.db.write(write)


def _new_id(given: str | None) -> str:
    if given is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(str(given)))
    except ValueError:
        raise InvalidInput("id must be a UUID", details={"field": "id"}) from None


def get(ctx: ServiceContext, who: Principal, queue_id: str) -> QueueView:
    return ctx.db.read(lambda c: _view(c, load(c, who, queue_id)))


def list_queues(
    ctx: ServiceContext,
    who: Principal,
    *,
    ids: list[str] | None = None,
    name: str | None = None,
    name_contains: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[QueueView]:
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}, offset not negative",
            details={"field": "limit"},
        )

    def read(conn: Connection) -> list[QueueView]:
        rows = store.list_queues(
            conn,
            who.workspace_id,
            ids=ids,
            name=name,
            name_contains=name_contains,
            offset=offset,
            limit=limit,
        )
        counts = store.counts(conn, [r.id for r in rows])
        return [QueueView(r, counts.get(r.id, QueueCounts()), _dataset_name(conn, r)) for r in rows]

    return ctx.db.read(read)


UPDATABLE = (
    "name",
    "description",
    "instructions",
    "keys",
    "reviewers_needed",
    "dataset",
    "lease_seconds",
    "extra",
)


def update(
    ctx: ServiceContext, who: Principal, queue_id: str, changes: dict[str, Any]
) -> QueueView:
    """Change the given fields (``dataset: null`` detaches the dataset). Items already
    completed stay completed; a higher ``reviewers_needed`` applies to pending items, and a
    lower one completes the pending items that already have enough reviews."""
    need_admin(who)
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InvalidInput(
            f"cannot change {', '.join(unknown)}; updatable: {', '.join(UPDATABLE)}",
            details={"field": unknown[0]},
        )
    checked: dict[str, Any] = {}
    if "name" in changes:
        checked["name"] = rules.check_name(changes["name"])
    for field in ("description", "instructions"):
        if field in changes:
            checked[field] = rules.check_text(field, changes[field])
    if "keys" in changes:
        checked["keys"] = rules.check_keys(changes["keys"])
    if "reviewers_needed" in changes:
        checked["reviewers_needed"] = rules.check_reviewers(changes["reviewers_needed"])
    if "lease_seconds" in changes:
        checked["lease_s"] = rules.check_lease(changes["lease_seconds"])
    if "extra" in changes:
        checked["extra"] = changes["extra"]

    def write(conn: Connection) -> QueueView:
        row = load(conn, who, queue_id, for_update=True)
        if "keys" in checked:
            _check_declared(conn, who, checked["keys"])
        values = dict(checked)
        if "dataset" in changes:
            values["dataset_id"] = _dataset_id(conn, who, changes["dataset"])
        now = ctx.clock()
        new = replace(row, **values, updated_at=now)
        if not store.update_queue(conn, new):
            raise Conflict(
                f"an annotation queue named {new.name!r} exists in this workspace",
                details={"field": "name"},
            )
        if new.reviewers_needed < row.reviewers_needed:
            _complete_ready(conn, who, new, now)
        return _view(conn, new)

    return ctx.db.write(write)


def delete(ctx: ServiceContext, who: Principal, queue_id: str) -> None:
    """Delete a queue with its items, reviews and reservations. The feedback its reviews
    wrote and the examples it added stay."""
    need_admin(who)
    if not ctx.db.write(lambda c: store.delete_queue(c, who.workspace_id, queue_id)):
        raise NotFound(f"no annotation queue with id {queue_id!r}")


def to_dataset(
    conn: Connection, who: Principal, queue: QueueRow, item: ItemRow, now: int
) -> dict[str, Any]:
    """Add a completed item's run to the queue's dataset (in the caller's transaction); what
    happened, to record on the item."""
    assert queue.dataset_id is not None
    base: dict[str, Any] = {"dataset_id": queue.dataset_id}
    try:
        result = dataset_runs.add_runs_on(
            conn,
            who,
            queue.dataset_id,
            [item.run_id],
            now,
            prefer_correction=True,
            metadata={"annotation_queue_id": queue.id, "annotation_queue_item_id": item.id},
            message=f"annotation queue {queue.name!r}",
        )
    except NotFound as exc:  # the run was deleted since it was queued
        return {**base, "outcome": "skipped", "reason": exc.message}
    if result.added:
        added = result.added[0]
        return {
            **base,
            "outcome": "added",
            "example_id": added.example_id,
            "outputs_from": added.outputs_from,
            "version": result.write.version,
        }
    if result.updated:
        return {
            **base,
            "outcome": "updated",
            "example_id": result.updated[0].example_id,
            "outputs_from": "correction",
            "version": result.write.version,
        }
    skipped = result.skipped[0]
    return {**base, "outcome": skipped.reason, "example_id": skipped.example_id}


def _complete_ready(conn: Connection, who: Principal, queue: QueueRow, now: int) -> None:
    """Complete the pending items that already have the reviews the queue needs (after
    ``reviewers_needed`` was lowered), each into the dataset as a review would."""
    for item in store.ready_items(conn, queue.id, queue.reviewers_needed):
        store.complete_item(conn, item.id, now)
        if queue.dataset_id is not None:
            store.set_dataset_result(conn, item.id, to_dataset(conn, who, queue, item, now))


# --- items -----------------------------------------------------------------------------------


def add_runs(
    ctx: ServiceContext,
    who: Principal,
    queue_id: str,
    run_ids: Any,
    *,
    added_by: str | None = None,
) -> AddedRuns:
    """Add runs (stored ones, of the caller's workspace) to the queue, once each: a run already
    queued is reported in ``already_queued``."""
    if not isinstance(run_ids, list) or not all(isinstance(r, str) and r for r in run_ids):
        raise InvalidInput("run_ids must be a list of run ids", details={"field": "run_ids"})
    wanted = list(dict.fromkeys(run_ids))
    if not wanted:
        raise InvalidInput("no run ids given", details={"field": "run_ids"})
    if len(wanted) > rules.MAX_RUNS_PER_ADD:
        raise InvalidInput(
            f"at most {rules.MAX_RUNS_PER_ADD} runs per request", details={"field": "run_ids"}
        )
    now = ctx.clock()

    def write(conn: Connection) -> AddedRuns:
        queue = load(conn, who, queue_id)
        refuse_pairwise(conn, who, queue, "add pairs of runs (POST .../pairs), not single runs")
        found = run_sources.by_ids(conn, who.workspace_id, wanted)
        missing = [r for r in wanted if r not in found]
        if missing:
            raise NotFound(
                f"no run with id {missing[0]!r} in this workspace"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                details={"missing_run_ids": missing[:100]},
            )
        queued = store.queued_run_ids(conn, queue.id, wanted)
        added: list[ItemRow] = []
        already = [r for r in wanted if r in queued]
        for run_id in wanted:
            if run_id in queued:
                continue
            item = ItemRow(
                pk=0,
                id=str(uuid.uuid4()),
                workspace_id=who.workspace_id,
                queue_id=queue.id,
                run_id=run_id,
                trace_id=found[run_id].trace_id,
                status="pending",
                reviews=0,
                added_by=added_by or who.key_id,
                added_at=now,
                last_reviewed_at=None,
                completed_at=None,
                dataset_result=None,
            )
            if store.insert_item(conn, item):
                added.append(item)
            else:
                already.append(run_id)
        return AddedRuns(added, already)

    return ctx.db.write(write)


def list_items(
    ctx: ServiceContext,
    who: Principal,
    queue_id: str,
    *,
    status: str | None = None,
    mine: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> list[ItemRow]:
    """Items in the order they were added; ``mine`` keeps the pending ones the caller has
    neither reviewed nor skipped."""
    if status is not None and status not in ITEM_STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(ITEM_STATUSES)}", details={"field": "status"}
        )
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}, offset not negative",
            details={"field": "limit"},
        )

    def read(conn: Connection) -> list[ItemRow]:
        queue = load(conn, who, queue_id)
        return store.list_items(
            conn,
            queue.id,
            status="pending" if mine else status,
            reviewer=who.key_id if mine else None,
            offset=offset,
            limit=limit,
        )

    return ctx.db.read(read)


def left_for(ctx: ServiceContext, who: Principal, queue_id: str) -> int:
    """How many pending items the caller has neither reviewed nor skipped."""
    return ctx.db.read(lambda c: store.count_left(c, load(c, who, queue_id).id, who.key_id))


def get_item(ctx: ServiceContext, who: Principal, queue_id: str, item_id: str) -> ItemRow:
    found = ctx.db.read(lambda c: store.get_item(c, who.workspace_id, queue_id, item_id))
    if found is None:
        raise NotFound(f"no item {item_id!r} in annotation queue {queue_id!r}")
    return found


def remove_item(ctx: ServiceContext, who: Principal, queue_id: str, item_id: str) -> None:
    """Take an item (and its reviews) out of the queue; its feedback and examples stay."""
    need_admin(who, "removing items from an annotation queue")

    def write(conn: Connection) -> bool:
        queue = load(conn, who, queue_id)
        return store.delete_item(conn, queue.id, item_id)

    if not ctx.db.write(write):
        raise NotFound(f"no item {item_id!r} in annotation queue {queue_id!r}")


def remove_run(ctx: ServiceContext, who: Principal, queue_id: str, run_id: str) -> None:
    """Take the item of this run out of the queue (LangSmith's call names the run)."""
    need_admin(who, "removing items from an annotation queue")

    def write(conn: Connection) -> bool:
        queue = load(conn, who, queue_id)
        item = store.item_by_run(conn, queue.id, run_id)
        return item is not None and store.delete_item(conn, queue.id, item.id)

    if not ctx.db.write(write):
        raise NotFound(f"run {run_id!r} is not in annotation queue {queue_id!r}")
