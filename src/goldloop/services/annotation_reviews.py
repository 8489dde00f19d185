"""Reviewing a queue: the next item (reserved for the reviewer), a review, a skip.

A reviewer is an API key (the dashboard's session signs in with one). ``next_item`` gives the
reviewer the item they already hold, else the first pending item they have not answered that
still has room (its reviews plus other reviewers' live reservations are fewer than the queue's
``reviewers_needed``), and reserves it for ``lease_s`` seconds: an item needing one review is
never handed to two people at once. A review stores each key's answer as feedback (source
``human``) with the correction and comment on the first key's feedback, so the scores show up
on the run, in judge alignment and wherever feedback is read. The review that brings an item
to ``reviewers_needed`` completes it; if the queue has a dataset, the run then becomes an
example there in the same transaction (a new version; reference outputs from the latest
correction on the run, else the run's outputs; lineage as for rule-added examples).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import annotation_queues as rules
from goldloop.domain import feedback as feedback_rules
from goldloop.domain.errors import Conflict, NotFound
from goldloop.domain.safe_values import scrub
from goldloop.services.annotation_queues import load, refuse_pairwise, to_dataset
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import annotation_queues as store
from goldloop.store import annotation_reviews as review_store
from goldloop.store import feedback as feedback_store
from goldloop.store.annotation_queues import ItemRow, QueueRow
from goldloop.store.annotation_reviews import ReviewRow
from goldloop.store.feedback import FeedbackRow

_FEEDBACK_NS = uuid.UUID("0b7e3f9a-52c4-4c7e-8d8e-6a1f2b9c4d31")


@dataclass(frozen=True)
class Reservation:
    queue: QueueRow
    item: ItemRow
    expires_at: int


@dataclass(frozen=True)
class Submitted:
    item: ItemRow  # as it is after the review
    review: ReviewRow
    completed: bool  # this review completed the item


def next_item(ctx: ServiceContext, who: Principal, queue_id: str) -> Reservation | None:
    """Reserve the caller's next item of the queue (None: nothing left for them)."""
    now = ctx.clock()

    def write(conn: Connection) -> Reservation | None:
        queue = load(conn, who, queue_id, for_update=True)
        item = review_store.held_item(conn, queue.id, who.key_id, now) or review_store.free_item(
            conn, queue.id, who.key_id, queue.reviewers_needed, now
        )
        if item is None:
            return None
        until = now + queue.lease_s * 1_000_000
        review_store.reserve(conn, queue.id, item.id, who.key_id, until)
        return Reservation(queue, item, until)

    return ctx.db.write(write)


def _feedback_id(item: ItemRow, reviewer: str, key: str) -> str:
    return str(uuid.uuid5(_FEEDBACK_NS, f"{item.id}:{reviewer}:{key}"))


def claimable(
    conn: Connection,
    queue: QueueRow,
    item: ItemRow,
    who: Principal,
    now: int,
    *,
    noun: str = "item",
) -> None:
    """Refuse an answer the reviewer may not give now (already answered, ``noun`` complete, or
    every remaining review reserved by others). Shared by single and pairwise queues."""
    previous = review_store.answered(conn, item.id, who.key_id)
    if previous is not None:
        raise Conflict(f"you already {previous} this {noun}", details={"item_id": item.id})
    if item.status == "completed":
        raise Conflict(
            f"this {noun} already has its {queue.reviewers_needed} review(s)",
            details={"item_id": item.id},
        )
    held = (review_store.lease_until(conn, item.id, who.key_id) or 0) > now
    others = review_store.others_holding(conn, item.id, who.key_id, now)
    if not held and item.reviews + others >= queue.reviewers_needed:
        raise Conflict(
            f"this {noun} is reserved by other reviewers; ask for the next item instead",
            details={"item_id": item.id},
        )


def submit(
    ctx: ServiceContext,
    who: Principal,
    queue_id: str,
    item_id: str,
    *,
    scores: Any,
    correction: Any = None,
    comment: Any = None,
) -> Submitted:
    comment = rules.check_text("comment", comment)
    correction = scrub(correction)
    now = ctx.clock()

    def write(conn: Connection) -> Submitted:
        queue = load(conn, who, queue_id, for_update=True)
        refuse_pairwise(conn, who, queue, "give a preference (POST .../pairs/{item}/preference)")
        item = _item(conn, who, queue, item_id)
        claimable(conn, queue, item, who, now)
        answers = rules.parse_scores(scores, queue.keys)
        name = review_store.key_name(conn, who.workspace_id, who.key_id) or who.key_id
        info = {
            "via": "annotation-queue",
            "annotation_queue_id": queue.id,
            "annotation_queue_item_id": item.id,
            "api_key_id": who.key_id,
            "reviewer": name,
        }
        stored: dict[str, Any] = {}
        feedback_ids: list[str] = []
        targets = list(answers) or ([rules.ANNOTATION_KEY] if correction or comment else [])
        for i, key in enumerate(targets):
            answer = answers.get(key)
            spec = feedback_store.get_key(conn, who.workspace_id, key)
            score, value = feedback_rules.fit(
                spec,
                answer.score if answer else None,
                answer.value if answer else None,
            )
            if answer is not None:
                stored[key] = {"score": score, "value": value}
            row = FeedbackRow(
                id=_feedback_id(item, who.key_id, key),
                workspace_id=who.workspace_id,
                run_id=item.run_id,
                trace_id=item.trace_id,
                key=key,
                score=score,
                value=value,
                comment=comment if i == 0 else None,
                correction=correction if i == 0 else None,
                source="human",
                source_info=info,
                created_at=now,
                updated_at=now,
            )
            body = {"key": key, "score": score, "value": value, "item": item.id}
            if feedback_store.insert_if_absent(conn, row, feedback_rules.request_hash(body)):
                feedback_ids.append(row.id)
        review = ReviewRow(
            item_id=item.id,
            run_id=item.run_id,
            reviewer=who.key_id,
            reviewer_name=name,
            outcome="reviewed",
            scores=stored,
            correction=correction,
            comment=comment,
            feedback_ids=feedback_ids,
            created_at=now,
        )
        review_store.insert_review(conn, who.workspace_id, queue.id, review)
        review_store.release(conn, item.id, who.key_id)
        completed = store.mark_reviewed(conn, item, queue.reviewers_needed, now)
        if completed and queue.dataset_id is not None:
            store.set_dataset_result(conn, item.id, to_dataset(conn, who, queue, item, now))
        return Submitted(_item(conn, who, queue, item.id), review, completed)

    return ctx.db.write(write)


def _item(conn: Connection, who: Principal, queue: QueueRow, item_id: str) -> ItemRow:
    item = store.get_item(conn, who.workspace_id, queue.id, item_id)
    if item is None:
        raise NotFound(f"no item {item_id!r} in annotation queue {queue.id!r}")
    return item


def skip(ctx: ServiceContext, who: Principal, queue_id: str, item_id: str) -> ItemRow:
    """The caller passes on the item: it is not offered to them again, and their reservation
    goes to the next reviewer."""
    now = ctx.clock()

    def write(conn: Connection) -> ItemRow:
        queue = load(conn, who, queue_id, for_update=True)
        item = _item(conn, who, queue, item_id)
        previous = review_store.answered(conn, item.id, who.key_id)
        if previous is not None:
            raise Conflict(f"you already {previous} this item", details={"item_id": item.id})
        name = review_store.key_name(conn, who.workspace_id, who.key_id) or who.key_id
        review_store.insert_review(
            conn,
            who.workspace_id,
            queue.id,
            ReviewRow(
                item.id, item.run_id, who.key_id, name, "skipped", None, None, None, None, now
            ),
        )
        review_store.release(conn, item.id, who.key_id)
        return item

    return ctx.db.write(write)


def reviews(
    ctx: ServiceContext, who: Principal, queue_id: str, *, item_id: str | None = None
) -> list[ReviewRow]:
    """The reviews and skips of the queue (or one item), oldest first."""

    def read(conn: Connection) -> list[ReviewRow]:
        queue = load(conn, who, queue_id)
        if item_id is not None:
            _item(conn, who, queue, item_id)
        return review_store.reviews_of(conn, queue.id, item_id=item_id)

    return ctx.db.read(read)


def reviewers(
    ctx: ServiceContext, who: Principal, queue_id: str
) -> list[tuple[str, str, int, int]]:
    """(key id, name, reviewed, skipped) per reviewer of the queue."""

    def read(conn: Connection) -> list[tuple[str, str, int, int]]:
        return review_store.reviewer_counts(conn, load(conn, who, queue_id).id)

    return ctx.db.read(read)


def reference(ctx: ServiceContext, who: Principal, run_id: str) -> Any:
    """The reference outputs for a run made from a dataset example (an experiment's), if any."""
    return ctx.db.read(lambda c: review_store.reference_outputs(c, who.workspace_id, run_id))
