"""/api/v1/annotation-queues (pairwise): queues of pairs of runs for the same input, where a
reviewer says which output is better (see docs/annotation-queues.md, "Pairwise review").

Creating a pairwise queue needs an admin key; adding pairs, reading them, giving a preference
and reading the results need any key of the workspace (the key is the reviewer). Asking for
the next item and skipping are the queue routes' (``POST /{queue_id}/next``, ``.../skip``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.annotation_queues import LEASE_S
from goldloop.domain.errors import NotFound
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.http.routes.annotation_queues import QueueOut, ReviewOut
from goldloop.services import annotation_queues as queues_svc
from goldloop.services import pairwise_reviews as svc
from goldloop.services import run_queries
from goldloop.services.context import Principal, ServiceContext

router = APIRouter(prefix="/annotation-queues", tags=["annotation queues"])


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_a: str = Field(description="The baseline's run (for example production).")
    run_b: str = Field(description="The candidate's run for the same input.")


class PairwiseQueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str | None = None
    instructions: str | None = Field(default=None, description="What reviewers read first.")
    experiments: list[str] | None = Field(
        default=None,
        description="Two experiments (ids or names) of the same dataset, [A, B]: one pair per "
        "example and repetition both ran. Give this or `pairs`.",
    )
    pairs: list[PairIn] | None = Field(default=None, description="Pairs of runs, A and B.")
    reviewers_needed: int = Field(default=1, description="Reviews a pair needs to complete.")
    lease_seconds: int = Field(
        default=LEASE_S, description="How long a pair stays reserved for its reviewer."
    )


class PairsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pairs: list[PairIn]


class AddedPairsOut(BaseModel):
    added: int
    already_queued: list[str] = Field(description="Run A ids that were in the queue already.")


class PairwiseQueueOut(BaseModel):
    queue: QueueOut
    experiment_a: str | None
    experiment_b: str | None
    added: int
    already_queued: list[str]


class PairOut(BaseModel):
    item_id: str
    queue_id: str
    status: str = Field(description="pending or completed")
    reviews: int
    example_id: str | None
    run_a: str
    trace_a: str
    run_b: str
    trace_b: str
    left: str = Field(description="Which run reviewers see on the left (Output 1): A or B.")

    @classmethod
    def of(cls, p: svc.Pair) -> PairOut:
        return cls(
            item_id=p.item.id,
            queue_id=p.item.queue_id,
            status=p.item.status,
            reviews=p.item.reviews,
            example_id=p.pair.example_id,
            run_a=p.item.run_id,
            trace_a=p.item.trace_id,
            run_b=p.pair.run_b_id,
            trace_b=p.pair.trace_b_id,
            left="B" if p.pair.swapped else "A",
        )


class PairDetail(BaseModel):
    pair: PairOut
    a: dict[str, Any] | None = Field(description="Run A (null when it was deleted).")
    b: dict[str, Any] | None = Field(description="Run B (null when it was deleted).")


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preference: str = Field(description="A, B or tie.")
    comment: str | None = None


class PreferenceOut(BaseModel):
    pair: PairOut
    review: ReviewOut
    completed: bool


def _run(ctx: ServiceContext, who: Principal, run_id: str) -> dict[str, Any] | None:
    try:
        return run_queries.get_run(ctx, who, run_id)
    except NotFound:
        return None


@router.post("/pairwise", status_code=201, response_model=PairwiseQueueOut)
def create_pairwise(body: PairwiseQueueIn, ctx: Ctx, who: Admin) -> PairwiseQueueOut:
    """Create a pairwise queue from two experiments or from pairs of runs."""
    queue, info, added = svc.create(
        ctx,
        who,
        name=body.name,
        description=body.description,
        instructions=body.instructions,
        reviewers_needed=body.reviewers_needed,
        lease_seconds=body.lease_seconds,
        experiments=body.experiments,
        pairs=None if body.pairs is None else [p.model_dump() for p in body.pairs],
    )
    return PairwiseQueueOut(
        queue=QueueOut.of(queues_svc.get(ctx, who, queue.id)),
        experiment_a=info.experiment_a,
        experiment_b=info.experiment_b,
        added=added.added,
        already_queued=added.already_queued,
    )


@router.post("/{queue_id}/pairs", response_model=AddedPairsOut)
def add_pairs(queue_id: str, body: PairsIn, ctx: Ctx, who: Who) -> AddedPairsOut:
    """Add pairs of runs to a pairwise queue (each with a random left/right order)."""
    added = svc.add_pairs(ctx, who, queue_id, [p.model_dump() for p in body.pairs])
    return AddedPairsOut(added=added.added, already_queued=added.already_queued)


@router.get("/{queue_id}/pairs", response_model=list[PairOut])
def list_pairs(
    queue_id: str,
    ctx: Ctx,
    who: Who,
    limit: int = Query(default=100, ge=1, le=queues_svc.MAX_LIMIT),
) -> list[PairOut]:
    return [PairOut.of(p) for p in svc.list_pairs(ctx, who, queue_id, limit=limit)]


@router.get("/{queue_id}/pairs/{item_id}", response_model=PairDetail)
def get_pair(queue_id: str, item_id: str, ctx: Ctx, who: Who) -> PairDetail:
    """One pair with both runs."""
    pair = svc.get_pair(ctx, who, queue_id, item_id)
    return PairDetail(
        pair=PairOut.of(pair), a=_run(ctx, who, pair.run_a), b=_run(ctx, who, pair.run_b)
    )


@router.post(
    "/{queue_id}/pairs/{item_id}/preference", status_code=201, response_model=PreferenceOut
)
def submit_preference(
    queue_id: str, item_id: str, body: PreferenceIn, ctx: Ctx, who: Who
) -> PreferenceOut:
    """Say which run of the pair is better: A, B or tie (once per reviewer and pair)."""
    pair, review, completed = svc.submit(
        ctx, who, queue_id, item_id, preference=body.preference, comment=body.comment
    )
    return PreferenceOut(pair=PairOut.of(pair), review=ReviewOut.of(review), completed=completed)


@router.get("/{queue_id}/results")
def results(
    queue_id: str,
    ctx: Ctx,
    who: Who,
    confidence: float = Query(default=0.95, gt=0.5, lt=1, description="Interval level."),
) -> dict[str, Any]:
    """Win rate of B over A (ties count half) with a Wilson interval, the decisive win rate,
    the tie share, an exact two-sided sign test over non-tied pairs, n (judged pairs: each
    pair's reviews averaged) and the reviewers' agreement on the preference."""
    return svc.results(ctx, who, queue_id, confidence=confidence)
