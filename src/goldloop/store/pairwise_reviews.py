"""Pairwise queues and the second run of their items (see services.pairwise_reviews); the queue,
its items, reviews and reservations are the annotation-queue tables'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import pairwise_items, pairwise_queues


@dataclass(frozen=True, slots=True)
class PairwiseQueueRow:
    queue_id: str
    workspace_id: str
    experiment_a: str | None
    experiment_b: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class PairRow:
    item_id: str
    queue_id: str
    run_b_id: str
    trace_b_id: str
    example_id: str | None
    swapped: bool


def _queue(r: sa.Row[Any]) -> PairwiseQueueRow:
    m = r._mapping
    return PairwiseQueueRow(**{f: m[f] for f in PairwiseQueueRow.__dataclass_fields__})


def _pair(r: sa.Row[Any]) -> PairRow:
    m = r._mapping
    values = {f: m[f] for f in PairRow.__dataclass_fields__}
    values["swapped"] = bool(values["swapped"])
    return PairRow(**values)


def insert_queue(conn: Connection, row: PairwiseQueueRow) -> None:
    values = {f: getattr(row, f) for f in PairwiseQueueRow.__dataclass_fields__}
    conn.execute(sa.insert(pairwise_queues).values(**values))


def get_queue(conn: Connection, workspace_id: str, queue_id: str) -> PairwiseQueueRow | None:
    found = conn.execute(
        sa.select(pairwise_queues).where(
            pairwise_queues.c.workspace_id == workspace_id, pairwise_queues.c.queue_id == queue_id
        )
    ).first()
    return _queue(found) if found else None


def queues_for(
    conn: Connection, workspace_id: str, experiment_a: str, experiment_b: str
) -> list[PairwiseQueueRow]:
    """The pairwise queues made from these two experiments (in this order), oldest first."""
    query = (
        sa.select(pairwise_queues)
        .where(
            pairwise_queues.c.workspace_id == workspace_id,
            pairwise_queues.c.experiment_a == experiment_a,
            pairwise_queues.c.experiment_b == experiment_b,
        )
        .order_by(pairwise_queues.c.created_at, pairwise_queues.c.queue_id)
    )
    return [_queue(r) for r in conn.execute(query)]


def insert_pair(conn: Connection, row: PairRow) -> None:
    values = {f: getattr(row, f) for f in PairRow.__dataclass_fields__}
    conn.execute(sa.insert(pairwise_items).values(**values))


def get_pair(conn: Connection, queue_id: str, item_id: str) -> PairRow | None:
    found = conn.execute(
        sa.select(pairwise_items).where(
            pairwise_items.c.queue_id == queue_id, pairwise_items.c.item_id == item_id
        )
    ).first()
    return _pair(found) if found else None


def pairs_of(conn: Connection, queue_id: str, item_ids: list[str]) -> dict[str, PairRow]:
    out: dict[str, PairRow] = {}
    for i in range(0, len(item_ids), 500):
        query = sa.select(pairwise_items).where(
            pairwise_items.c.queue_id == queue_id,
            pairwise_items.c.item_id.in_(item_ids[i : i + 500]),
        )
        out |= {r.item_id: _pair(r) for r in conn.execute(query)}
    return out


def pairwise_ids(conn: Connection, workspace_id: str, queue_ids: list[str]) -> set[str]:
    """Which of these queues are pairwise."""
    if not queue_ids:
        return set()
    query = sa.select(pairwise_queues.c.queue_id).where(
        pairwise_queues.c.workspace_id == workspace_id,
        pairwise_queues.c.queue_id.in_(queue_ids),
    )
    return {str(r) for r in conn.scalars(query)}
