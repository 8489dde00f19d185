"""Annotation queues and their items (see services.annotation_queues); the reviews and
reservations are in ``store.annotation_reviews``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import (
    annotation_queue_items,
    annotation_queue_leases,
    annotation_queue_reviews,
    annotation_queues,
    pairwise_items,
    pairwise_queues,
)

queues = annotation_queues
items = annotation_queue_items
reviews = annotation_queue_reviews
leases = annotation_queue_leases
pairs = pairwise_items


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: str
    workspace_id: str
    name: str
    description: str | None
    instructions: str | None
    keys: list[str]
    reviewers_needed: int
    dataset_id: str | None
    lease_s: int
    extra: dict[str, Any] | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class QueueCounts:
    items: int = 0
    completed: int = 0
    reviews: int = 0  # reviews given (not skips)


@dataclass(frozen=True, slots=True)
class ItemRow:
    pk: int
    id: str
    workspace_id: str
    queue_id: str
    run_id: str
    trace_id: str
    status: str
    reviews: int
    added_by: str | None
    added_at: int
    last_reviewed_at: int | None
    completed_at: int | None
    dataset_result: dict[str, Any] | None


def _queue(r: sa.Row[Any]) -> QueueRow:
    m = r._mapping
    return QueueRow(
        id=m["id"],
        workspace_id=m["workspace_id"],
        name=m["name"],
        description=m["description"],
        instructions=m["instructions"],
        keys=list(m["keys"] or []),
        reviewers_needed=int(m["reviewers_needed"]),
        dataset_id=m["dataset_id"],
        lease_s=int(m["lease_s"]),
        extra=m["extra"],
        created_at=int(m["created_at"]),
        updated_at=int(m["updated_at"]),
    )


def item_row(r: sa.Row[Any]) -> ItemRow:
    m = r._mapping
    return ItemRow(**{f: m[f] for f in ItemRow.__dataclass_fields__})


def insert_queue(conn: Connection, row: QueueRow) -> bool:
    """Insert; False when the workspace already has a queue of that name (or that id)."""
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(queues).values(**_queue_values(row)))
    except sa.exc.IntegrityError:
        return False
    return True


def _queue_values(row: QueueRow) -> dict[str, Any]:
    return {f: getattr(row, f) for f in QueueRow.__dataclass_fields__}


def update_queue(conn: Connection, row: QueueRow) -> bool:
    """Store the changed queue; False when its new name is taken."""
    values = _queue_values(row)
    del values["id"], values["workspace_id"], values["created_at"]
    try:
        with conn.begin_nested():
            conn.execute(
                sa.update(queues)
                .where(queues.c.workspace_id == row.workspace_id, queues.c.id == row.id)
                .values(**values)
            )
    except sa.exc.IntegrityError:
        return False
    return True


def get_queue(
    conn: Connection, workspace_id: str, queue_id: str, *, for_update: bool = False
) -> QueueRow | None:
    query = sa.select(queues).where(queues.c.workspace_id == workspace_id, queues.c.id == queue_id)
    if for_update:
        query = query.with_for_update()
    found = conn.execute(query).first()
    return _queue(found) if found else None


def queue_id_exists(conn: Connection, queue_id: str) -> bool:
    """Whether any workspace has a queue with this id (ids are global primary keys)."""
    found = conn.execute(sa.select(queues.c.id).where(queues.c.id == queue_id)).first()
    return found is not None


def list_queues(
    conn: Connection,
    workspace_id: str,
    *,
    ids: list[str] | None = None,
    name: str | None = None,
    name_contains: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[QueueRow]:
    query = sa.select(queues).where(queues.c.workspace_id == workspace_id)
    if ids is not None:
        query = query.where(queues.c.id.in_(ids))
    if name is not None:
        query = query.where(queues.c.name == name)
    if name_contains:
        escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(queues.c.name.ilike(f"%{escaped}%", escape="\\"))
    query = query.order_by(queues.c.created_at.desc(), queues.c.id).offset(offset).limit(limit)
    return [_queue(r) for r in conn.execute(query)]


def delete_queue(conn: Connection, workspace_id: str, queue_id: str) -> bool:
    if get_queue(conn, workspace_id, queue_id, for_update=True) is None:
        return False
    # children first: SQLite enforces the cascade too, but explicit deletes keep both alike
    for table in (leases, reviews, pairs, items, pairwise_queues):
        conn.execute(sa.delete(table).where(table.c.queue_id == queue_id))
    result = conn.execute(
        sa.delete(queues).where(queues.c.workspace_id == workspace_id, queues.c.id == queue_id)
    )
    return result.rowcount > 0


def counts(conn: Connection, queue_ids: list[str]) -> dict[str, QueueCounts]:
    if not queue_ids:
        return {}
    done = sa.case((items.c.status == "completed", 1), else_=0)
    query = (
        sa.select(
            items.c.queue_id,
            sa.func.count().label("n"),
            sa.func.coalesce(sa.func.sum(done), 0).label("completed"),
            sa.func.coalesce(sa.func.sum(items.c.reviews), 0).label("reviews"),
        )
        .where(items.c.queue_id.in_(queue_ids))
        .group_by(items.c.queue_id)
    )
    return {
        r.queue_id: QueueCounts(int(r.n), int(r.completed), int(r.reviews))
        for r in conn.execute(query)
    }


# --- items -----------------------------------------------------------------------------------


def queued_run_ids(conn: Connection, queue_id: str, run_ids: list[str]) -> set[str]:
    query = sa.select(items.c.run_id).where(
        items.c.queue_id == queue_id, items.c.run_id.in_(run_ids)
    )
    return {r.run_id for r in conn.execute(query)}


def insert_item(conn: Connection, row: ItemRow) -> bool:
    """Insert unless the run is already in the queue (even concurrently); True if inserted."""
    values = {f: getattr(row, f) for f in ItemRow.__dataclass_fields__ if f != "pk"}
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(items).values(**values))
    except sa.exc.IntegrityError:
        return False
    return True


def get_item(conn: Connection, workspace_id: str, queue_id: str, item_id: str) -> ItemRow | None:
    query = sa.select(items).where(
        items.c.workspace_id == workspace_id, items.c.queue_id == queue_id, items.c.id == item_id
    )
    found = conn.execute(query).first()
    return item_row(found) if found else None


def item_by_run(conn: Connection, queue_id: str, run_id: str) -> ItemRow | None:
    query = sa.select(items).where(items.c.queue_id == queue_id, items.c.run_id == run_id)
    found = conn.execute(query).first()
    return item_row(found) if found else None


def list_items(
    conn: Connection,
    queue_id: str,
    *,
    status: str | None = None,
    reviewer: str | None = None,
    after: int | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[ItemRow]:
    """Items in the order they were added. ``reviewer`` with status ``pending`` keeps only
    the items that reviewer has not reviewed or skipped."""
    query = sa.select(items).where(items.c.queue_id == queue_id)
    if status is not None:
        query = query.where(items.c.status == status)
    if reviewer is not None:
        query = query.where(~answered_by(reviewer))
    if after is not None:
        query = query.where(items.c.pk > after)
    query = query.order_by(items.c.pk).offset(offset).limit(limit)
    return [item_row(r) for r in conn.execute(query)]


def count_left(conn: Connection, queue_id: str, reviewer: str) -> int:
    """Pending items of the queue the reviewer has neither reviewed nor skipped."""
    query = sa.select(sa.func.count()).where(
        items.c.queue_id == queue_id, items.c.status == "pending", ~answered_by(reviewer)
    )
    return int(conn.execute(query).scalar_one())


def delete_item(conn: Connection, queue_id: str, item_id: str) -> bool:
    for table in (leases, reviews, pairs):
        conn.execute(sa.delete(table).where(table.c.item_id == item_id))
    result = conn.execute(
        sa.delete(items).where(items.c.queue_id == queue_id, items.c.id == item_id)
    )
    return result.rowcount > 0


def answered_by(reviewer: str) -> sa.ColumnElement[bool]:
    return sa.exists().where(reviews.c.item_id == items.c.id, reviews.c.reviewer == reviewer)


def mark_reviewed(conn: Connection, item: ItemRow, needed: int, now: int) -> bool:
    """Count one more review; returns True when that completes the item."""
    completes = item.reviews + 1 >= needed
    values: dict[str, Any] = {"reviews": items.c.reviews + 1, "last_reviewed_at": now}
    if completes:
        values |= {"status": "completed", "completed_at": now}
    conn.execute(sa.update(items).where(items.c.id == item.id).values(**values))
    return completes


def ready_items(conn: Connection, queue_id: str, needed: int) -> list[ItemRow]:
    """Pending items that have ``needed`` reviews or more."""
    query = (
        sa.select(items)
        .where(items.c.queue_id == queue_id, items.c.status == "pending", items.c.reviews >= needed)
        .order_by(items.c.pk)
    )
    return [item_row(r) for r in conn.execute(query)]


def complete_item(conn: Connection, item_id: str, now: int) -> None:
    conn.execute(
        sa.update(items).where(items.c.id == item_id).values(status="completed", completed_at=now)
    )


def set_dataset_result(conn: Connection, item_id: str, result: dict[str, Any]) -> None:
    conn.execute(sa.update(items).where(items.c.id == item_id).values(dataset_result=result))


def forget_runs(conn: Connection, workspace_id: str, run_ids: list[str]) -> int:
    """Take these runs out of every queue, with their reviews (which copy corrections and
    comments) and reservations: called when the runs are deleted or erased. A pairwise item
    goes when either of its runs does. Returns the items removed."""
    removed = 0
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i : i + 500]
        as_b = sa.select(pairs.c.item_id).where(pairs.c.run_b_id.in_(chunk))
        match = sa.or_(items.c.run_id.in_(chunk), items.c.id.in_(as_b))
        doomed = sa.select(items.c.id).where(items.c.workspace_id == workspace_id, match)
        for table in (leases, reviews, pairs):
            conn.execute(sa.delete(table).where(table.c.item_id.in_(doomed)))
        removed += conn.execute(
            sa.delete(items).where(items.c.workspace_id == workspace_id, match)
        ).rowcount
    return removed
