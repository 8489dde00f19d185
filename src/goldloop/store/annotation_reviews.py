"""Reviews and reservations of annotation-queue items (see services.annotation_reviews).

Handing out items is serialised per queue: the caller first locks the queue's row
(``annotation_queues.get_queue(for_update=True)``, PostgreSQL; SQLite has one writer), so two
reviewers asking at once cannot both take the last reservation of an item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.annotation_queues import ItemRow, answered_by, item_row, items, leases, reviews
from goldloop.store.schema import api_keys, dataset_examples, datasets, runs


@dataclass(frozen=True, slots=True)
class ReviewRow:
    item_id: str
    run_id: str
    reviewer: str
    reviewer_name: str
    outcome: str
    scores: dict[str, Any] | None
    correction: Any
    comment: str | None
    feedback_ids: list[str] | None
    created_at: int


def _others_leases(reviewer: str, now: int) -> sa.ScalarSelect[Any]:
    return (
        sa.select(sa.func.count())
        .where(
            leases.c.item_id == items.c.id,
            leases.c.reviewer != reviewer,
            leases.c.expires_at > now,
        )
        .scalar_subquery()
    )


def held_item(conn: Connection, queue_id: str, reviewer: str, now: int) -> ItemRow | None:
    """The pending item this reviewer holds a live reservation on (and has not answered)."""
    query = (
        sa.select(items)
        .join(leases, leases.c.item_id == items.c.id)
        .where(
            leases.c.queue_id == queue_id,
            leases.c.reviewer == reviewer,
            leases.c.expires_at > now,
            items.c.status == "pending",
            ~answered_by(reviewer),
        )
        .order_by(items.c.pk)
        .limit(1)
    )
    found = conn.execute(query).first()
    return item_row(found) if found else None


def free_item(
    conn: Connection, queue_id: str, reviewer: str, needed: int, now: int
) -> ItemRow | None:
    """The first pending item this reviewer has not answered that still has room: its reviews
    plus other reviewers' live reservations are fewer than ``needed``."""
    query = (
        sa.select(items)
        .where(
            items.c.queue_id == queue_id,
            items.c.status == "pending",
            ~answered_by(reviewer),
            items.c.reviews + _others_leases(reviewer, now) < needed,
        )
        .order_by(items.c.pk)
        .limit(1)
    )
    found = conn.execute(query).first()
    return item_row(found) if found else None


def others_holding(conn: Connection, item_id: str, reviewer: str, now: int) -> int:
    query = sa.select(sa.func.count()).where(
        leases.c.item_id == item_id, leases.c.reviewer != reviewer, leases.c.expires_at > now
    )
    return int(conn.execute(query).scalar_one())


def reserve(conn: Connection, queue_id: str, item_id: str, reviewer: str, until: int) -> None:
    """Give the item to the reviewer until ``until``; their other reservations in the queue
    end (a reviewer holds one item at a time)."""
    conn.execute(
        sa.delete(leases).where(leases.c.queue_id == queue_id, leases.c.reviewer == reviewer)
    )
    conn.execute(
        sa.insert(leases).values(
            item_id=item_id, reviewer=reviewer, queue_id=queue_id, expires_at=until
        )
    )


def release(conn: Connection, item_id: str, reviewer: str) -> None:
    conn.execute(
        sa.delete(leases).where(leases.c.item_id == item_id, leases.c.reviewer == reviewer)
    )


def lease_until(conn: Connection, item_id: str, reviewer: str) -> int | None:
    query = sa.select(leases.c.expires_at).where(
        leases.c.item_id == item_id, leases.c.reviewer == reviewer
    )
    found = conn.execute(query).scalar_one_or_none()
    return None if found is None else int(found)


def answered(conn: Connection, item_id: str, reviewer: str) -> str | None:
    """The reviewer's outcome on the item (``reviewed`` or ``skipped``), or None."""
    query = sa.select(reviews.c.outcome).where(
        reviews.c.item_id == item_id, reviews.c.reviewer == reviewer
    )
    return conn.execute(query).scalar_one_or_none()


def insert_review(conn: Connection, workspace_id: str, queue_id: str, row: ReviewRow) -> None:
    conn.execute(
        sa.insert(reviews).values(
            workspace_id=workspace_id,
            queue_id=queue_id,
            item_id=row.item_id,
            reviewer=row.reviewer,
            reviewer_name=row.reviewer_name,
            outcome=row.outcome,
            scores=row.scores,
            correction=row.correction,
            comment=row.comment,
            feedback_ids=row.feedback_ids,
            created_at=row.created_at,
        )
    )


def reviews_of(
    conn: Connection, queue_id: str, *, item_id: str | None = None, outcome: str | None = None
) -> list[ReviewRow]:
    query = (
        sa.select(reviews, items.c.run_id)
        .join(items, items.c.id == reviews.c.item_id)
        .where(reviews.c.queue_id == queue_id)
        .order_by(reviews.c.pk)
    )
    if item_id is not None:
        query = query.where(reviews.c.item_id == item_id)
    if outcome is not None:
        query = query.where(reviews.c.outcome == outcome)
    return [
        ReviewRow(
            item_id=r.item_id,
            run_id=r.run_id,
            reviewer=r.reviewer,
            reviewer_name=r.reviewer_name,
            outcome=r.outcome,
            scores=r.scores,
            correction=r.correction,
            comment=r.comment,
            feedback_ids=r.feedback_ids,
            created_at=int(r.created_at),
        )
        for r in conn.execute(query)
    ]


def reviewer_counts(conn: Connection, queue_id: str) -> list[tuple[str, str, int, int]]:
    """(reviewer, name, reviewed, skipped) per reviewer of the queue."""
    reviewed = sa.func.sum(sa.case((reviews.c.outcome == "reviewed", 1), else_=0))
    skipped = sa.func.sum(sa.case((reviews.c.outcome == "skipped", 1), else_=0))
    query = (
        sa.select(
            reviews.c.reviewer,
            sa.func.max(reviews.c.reviewer_name).label("name"),
            reviewed.label("reviewed"),
            skipped.label("skipped"),
        )
        .where(reviews.c.queue_id == queue_id)
        .group_by(reviews.c.reviewer)
        .order_by(sa.func.max(reviews.c.reviewer_name))
    )
    return [(r.reviewer, r.name, int(r.reviewed), int(r.skipped)) for r in conn.execute(query)]


def key_name(conn: Connection, workspace_id: str, key_id: str) -> str | None:
    query = sa.select(api_keys.c.name).where(
        api_keys.c.workspace_id == workspace_id, api_keys.c.id == key_id
    )
    return conn.execute(query).scalar_one_or_none()


def reference_outputs(conn: Connection, workspace_id: str, run_id: str) -> Any:
    """The reference outputs of the example an experiment run was made for, if any."""
    example_id = conn.execute(
        sa.select(runs.c.reference_example_id).where(
            runs.c.workspace_id == workspace_id, runs.c.id == run_id
        )
    ).scalar_one_or_none()
    if example_id is None:
        return None
    query = (
        sa.select(dataset_examples.c.outputs)
        .join(datasets, datasets.c.id == dataset_examples.c.dataset_id)
        .where(
            datasets.c.workspace_id == workspace_id,
            dataset_examples.c.example_id == example_id,
            dataset_examples.c.version_to.is_(None),
        )
        .limit(1)
    )
    return conn.execute(query).scalar_one_or_none()
