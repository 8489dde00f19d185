"""/api/v1/annotation-queues: queues of runs for people to review (see docs/annotation-queues.md).

Creating, changing and deleting a queue, and removing items, need an admin key; adding runs,
asking for the next item, reviewing and skipping need any key of the workspace (the key is the
reviewer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.annotation_queues import LEASE_S
from goldloop.domain.clock import to_iso
from goldloop.domain.errors import NotFound
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.services import annotation_agreement as agreement_svc
from goldloop.services import annotation_queues as svc
from goldloop.services import annotation_reviews as reviews_svc
from goldloop.services import run_queries
from goldloop.store.annotation_queues import ItemRow
from goldloop.store.annotation_reviews import ReviewRow

router = APIRouter(prefix="/annotation-queues", tags=["annotation queues"])


class QueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str | None = None
    instructions: str | None = Field(default=None, description="What reviewers read first.")
    keys: list[str] = Field(
        default_factory=list,
        description="Declared feedback keys (score configs) every review must fill, in order.",
    )
    reviewers_needed: int = Field(default=1, description="Reviews an item needs to complete.")
    dataset: str | None = Field(
        default=None,
        description="A dataset (id or name): each completed item becomes an example there.",
    )
    lease_seconds: int = Field(
        default=LEASE_S, description="How long an item stays reserved for its reviewer."
    )


class QueuePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    keys: list[str] | None = None
    reviewers_needed: int | None = None
    dataset: str | None = Field(default=None, description="`null` detaches the dataset.")
    lease_seconds: int | None = None


class QueueOut(BaseModel):
    id: str
    name: str
    description: str | None
    instructions: str | None
    keys: list[str]
    reviewers_needed: int
    dataset_id: str | None
    dataset_name: str | None
    lease_seconds: int
    items: int
    completed: int
    reviews: int
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, view: svc.QueueView) -> QueueOut:
        q = view.queue
        return cls(
            id=q.id,
            name=q.name,
            description=q.description,
            instructions=q.instructions,
            keys=q.keys,
            reviewers_needed=q.reviewers_needed,
            dataset_id=q.dataset_id,
            dataset_name=view.dataset_name,
            lease_seconds=q.lease_s,
            items=view.counts.items,
            completed=view.counts.completed,
            reviews=view.counts.reviews,
            created_at=q.created_at,
            updated_at=q.updated_at,
        )


class QueueList(BaseModel):
    items: list[QueueOut]


class ItemOut(BaseModel):
    id: str
    queue_id: str
    run_id: str
    trace_id: str
    status: str = Field(description="pending or completed")
    reviews: int
    added_by: str | None
    added_at: int
    added_at_iso: str | None
    last_reviewed_at: int | None
    completed_at: int | None
    dataset_result: dict[str, Any] | None = Field(
        description="What completing the item did to the queue's dataset."
    )

    @classmethod
    def of(cls, row: ItemRow) -> ItemOut:
        return cls(
            id=row.id,
            queue_id=row.queue_id,
            run_id=row.run_id,
            trace_id=row.trace_id,
            status=row.status,
            reviews=row.reviews,
            added_by=row.added_by,
            added_at=row.added_at,
            added_at_iso=to_iso(row.added_at),
            last_reviewed_at=row.last_reviewed_at,
            completed_at=row.completed_at,
            dataset_result=row.dataset_result,
        )


class ItemList(BaseModel):
    items: list[ItemOut]


class RunsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_ids: list[str]


class AddedOut(BaseModel):
    added: list[ItemOut]
    already_queued: list[str]


class ReviewOut(BaseModel):
    item_id: str
    run_id: str
    reviewer: str = Field(description="The reviewer's API key id.")
    reviewer_name: str
    outcome: str = Field(description="reviewed or skipped")
    scores: dict[str, Any] | None
    correction: Any
    comment: str | None
    feedback_ids: list[str] | None
    created_at: int

    @classmethod
    def of(cls, row: ReviewRow) -> ReviewOut:
        return cls(**{f: getattr(row, f) for f in cls.model_fields})


class ItemDetail(BaseModel):
    item: ItemOut
    run: dict[str, Any] | None = Field(description="The run (null when it was deleted).")
    reference: Any = Field(description="Reference outputs of the run's example, if any.")
    reviews: list[ReviewOut]


class NextOut(BaseModel):
    item: ItemOut | None = Field(description="null: nothing left for you in this queue.")
    lease_expires_at: int | None
    run: dict[str, Any] | None
    reference: Any


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scores: dict[str, Any] = Field(
        default_factory=dict,
        description='Per key: {"score": n|bool} or {"value": "category"} (or the bare value).',
    )
    correction: Any = Field(default=None, description="What the run should have returned.")
    comment: str | None = None


class SubmittedOut(BaseModel):
    item: ItemOut
    review: ReviewOut
    completed: bool


@router.post("", status_code=201, response_model=QueueOut)
def create_queue(body: QueueIn, ctx: Ctx, who: Admin) -> QueueOut:
    """Create a queue. Its keys must be declared feedback keys."""
    return QueueOut.of(svc.create(ctx, who, **body.model_dump()))


@router.get("", response_model=QueueList)
def list_queues(
    ctx: Ctx,
    who: Who,
    name: str | None = None,
    name_contains: str | None = None,
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=100, ge=1, le=svc.MAX_LIMIT),
) -> QueueList:
    views = svc.list_queues(
        ctx, who, name=name, name_contains=name_contains, offset=offset, limit=limit
    )
    return QueueList(items=[QueueOut.of(v) for v in views])


@router.get("/{queue_id}", response_model=QueueOut)
def get_queue(queue_id: str, ctx: Ctx, who: Who) -> QueueOut:
    return QueueOut.of(svc.get(ctx, who, queue_id))


@router.patch("/{queue_id}", response_model=QueueOut)
def update_queue(queue_id: str, body: QueuePatch, ctx: Ctx, who: Admin) -> QueueOut:
    changes = {f: getattr(body, f) for f in body.model_fields_set}
    return QueueOut.of(svc.update(ctx, who, queue_id, changes))


@router.delete("/{queue_id}", status_code=204)
def delete_queue(queue_id: str, ctx: Ctx, who: Admin) -> Response:
    """Delete the queue, its items and reviews (their feedback and examples stay)."""
    svc.delete(ctx, who, queue_id)
    return Response(status_code=204)


@router.post("/{queue_id}/items", response_model=AddedOut)
def add_runs(queue_id: str, body: RunsIn, ctx: Ctx, who: Who) -> AddedOut:
    """Add runs (once each; a run already queued is listed in `already_queued`)."""
    result = svc.add_runs(ctx, who, queue_id, body.run_ids)
    return AddedOut(
        added=[ItemOut.of(i) for i in result.added], already_queued=result.already_queued
    )


@router.get("/{queue_id}/items", response_model=ItemList)
def list_items(
    queue_id: str,
    ctx: Ctx,
    who: Who,
    status: str | None = Query(default=None, description="pending or completed"),
    mine: bool = Query(default=False, description="Only pending items you have not answered."),
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=100, ge=1, le=svc.MAX_LIMIT),
) -> ItemList:
    rows = svc.list_items(ctx, who, queue_id, status=status, mine=mine, offset=offset, limit=limit)
    return ItemList(items=[ItemOut.of(r) for r in rows])


def _run(ctx: Ctx, who: Who, run_id: str) -> dict[str, Any] | None:
    try:
        return run_queries.get_run(ctx, who, run_id)
    except NotFound:
        return None


@router.get("/{queue_id}/items/{item_id}", response_model=ItemDetail)
def get_item(queue_id: str, item_id: str, ctx: Ctx, who: Who) -> ItemDetail:
    item = svc.get_item(ctx, who, queue_id, item_id)
    return ItemDetail(
        item=ItemOut.of(item),
        run=_run(ctx, who, item.run_id),
        reference=reviews_svc.reference(ctx, who, item.run_id),
        reviews=[ReviewOut.of(r) for r in reviews_svc.reviews(ctx, who, queue_id, item_id=item_id)],
    )


@router.delete("/{queue_id}/items/{item_id}", status_code=204)
def remove_item(queue_id: str, item_id: str, ctx: Ctx, who: Admin) -> Response:
    svc.remove_item(ctx, who, queue_id, item_id)
    return Response(status_code=204)


@router.post("/{queue_id}/next", response_model=NextOut)
def next_item(queue_id: str, ctx: Ctx, who: Who) -> NextOut:
    """Reserve your next item (the one you hold, else the first with room for your review)."""
    got = reviews_svc.next_item(ctx, who, queue_id)
    if got is None:
        return NextOut(item=None, lease_expires_at=None, run=None, reference=None)
    return NextOut(
        item=ItemOut.of(got.item),
        lease_expires_at=got.expires_at,
        run=_run(ctx, who, got.item.run_id),
        reference=reviews_svc.reference(ctx, who, got.item.run_id),
    )


@router.post("/{queue_id}/items/{item_id}/reviews", status_code=201, response_model=SubmittedOut)
def submit_review(queue_id: str, item_id: str, body: ReviewIn, ctx: Ctx, who: Who) -> SubmittedOut:
    """Review an item: a score or value for every key of the queue, and optionally a
    correction and a comment. Stored as feedback (source `human`) on the run."""
    done = reviews_svc.submit(
        ctx,
        who,
        queue_id,
        item_id,
        scores=body.scores,
        correction=body.correction,
        comment=body.comment,
    )
    return SubmittedOut(
        item=ItemOut.of(done.item), review=ReviewOut.of(done.review), completed=done.completed
    )


@router.post("/{queue_id}/items/{item_id}/skip", response_model=ItemOut)
def skip_item(queue_id: str, item_id: str, ctx: Ctx, who: Who) -> ItemOut:
    """Pass on an item: it is not offered to you again."""
    return ItemOut.of(reviews_svc.skip(ctx, who, queue_id, item_id))


@router.get("/{queue_id}/reviews", response_model=list[ReviewOut])
def list_reviews(queue_id: str, ctx: Ctx, who: Who) -> list[ReviewOut]:
    return [ReviewOut.of(r) for r in reviews_svc.reviews(ctx, who, queue_id)]


@router.get("/{queue_id}/agreement")
def agreement(
    queue_id: str,
    ctx: Ctx,
    who: Who,
    confidence: float = Query(default=0.95, gt=0.5, lt=1, description="Interval level."),
) -> dict[str, Any]:
    """Agreement between reviewers per key: Cohen's kappa when exactly two people reviewed
    (categorical and boolean keys), Krippendorff's alpha (nominal, or interval for continuous
    keys) for any number, each with its interval and n."""
    return agreement_svc.queue_agreement(ctx, who, queue_id, confidence=confidence)
