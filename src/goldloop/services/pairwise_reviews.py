"""Pairwise review: an annotation queue whose items are two runs for the same input, and a
reviewer says which output is better (A, B or tie; statistics in ``domain.pairwise``).

A pairwise queue is made from two experiments on the same dataset (A the baseline, B the
candidate: one item per example and repetition both ran) or from pairs of runs given by id (for
example production against a candidate). Each item's own run is A; B and the left/right order
drawn for the item live in ``pairwise_items``. Reservations, ``reviewers_needed``, skips and
reviewer identity are the annotation queue's (``services.annotation_reviews.next_item`` and
``skip`` serve both kinds). A review stores the preference on the review itself (its ``scores``
hold ``{"preference": {"value": "A" | "B" | "tie"}}``), so reviewer agreement is computed by
the same code as for any categorical key; it writes no feedback on the runs.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import annotation_queues as rules
from goldloop.domain import pairwise
from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.feedback import KeySpec
from goldloop.services import experiment_results, experiments
from goldloop.services.annotation_agreement import key_agreement
from goldloop.services.annotation_queues import load, need_admin
from goldloop.services.annotation_reviews import claimable
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import annotation_queues as store
from goldloop.store import annotation_reviews as review_store
from goldloop.store import pairwise_reviews as pair_store
from goldloop.store import run_sources
from goldloop.store.annotation_queues import ItemRow, QueueRow
from goldloop.store.annotation_reviews import ReviewRow
from goldloop.store.pairwise_reviews import PairRow, PairwiseQueueRow

MAX_PAIRS = 5000  # items one request (or one pair of experiments) may make


@dataclass(frozen=True)
class Pair:
    """A pairwise item: A is ``item.run_id``; ``left``/``right`` are the runs in the order the
    reviewer sees them."""

    item: ItemRow
    pair: PairRow

    @property
    def run_a(self) -> str:
        return self.item.run_id

    @property
    def run_b(self) -> str:
        return self.pair.run_b_id

    @property
    def left(self) -> tuple[str, str]:
        """(run id, trace id) shown on the left as "Output 1"."""
        if self.pair.swapped:
            return self.pair.run_b_id, self.pair.trace_b_id
        return self.item.run_id, self.item.trace_id

    @property
    def right(self) -> tuple[str, str]:
        if self.pair.swapped:
            return self.item.run_id, self.item.trace_id
        return self.pair.run_b_id, self.pair.trace_b_id


@dataclass(frozen=True)
class Added:
    queue_id: str
    added: int
    already_queued: list[str]  # run A ids that were in the queue already


def meta(conn: Connection, who: Principal, queue: QueueRow) -> PairwiseQueueRow | None:
    return pair_store.get_queue(conn, who.workspace_id, queue.id)


def _pairwise_queue(conn: Connection, who: Principal, queue_id: str, **kw: Any) -> QueueRow:
    queue = load(conn, who, queue_id, **kw)
    if meta(conn, who, queue) is None:
        raise InvalidInput(
            f"annotation queue {queue.name!r} is not a pairwise queue", details={"field": "queue"}
        )
    return queue


def _check_pairs(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(
            "pairs must be a non-empty list of {run_a, run_b}", details={"field": "pairs"}
        )
    if len(raw) > MAX_PAIRS:
        raise InvalidInput(f"at most {MAX_PAIRS} pairs per request", details={"field": "pairs"})
    out: list[tuple[str, str]] = []
    for i, p in enumerate(raw):
        a = p.get("run_a") if isinstance(p, dict) else None
        b = p.get("run_b") if isinstance(p, dict) else None
        if not (isinstance(a, str) and a and isinstance(b, str) and b):
            raise InvalidInput(
                f"pairs[{i}] needs run_a and run_b (run ids)", details={"field": "pairs"}
            )
        if a == b:
            raise InvalidInput(f"pairs[{i}] compares a run with itself", details={"field": "pairs"})
        out.append((a, b))
    return out


def _insert(
    conn: Connection,
    who: Principal,
    queue: QueueRow,
    pairs: list[tuple[str, str, str, str, str | None]],
    now: int,
) -> Added:
    """Insert (run A, trace A, run B, trace B, example) items, each with a fresh random order."""
    already: list[str] = []
    added = 0
    for run_a, trace_a, run_b, trace_b, example in pairs:
        item = ItemRow(
            pk=0,
            id=str(uuid.uuid4()),
            workspace_id=who.workspace_id,
            queue_id=queue.id,
            run_id=run_a,
            trace_id=trace_a,
            status="pending",
            reviews=0,
            added_by=who.key_id,
            added_at=now,
            last_reviewed_at=None,
            completed_at=None,
            dataset_result=None,
        )
        if not store.insert_item(conn, item):
            already.append(run_a)
            continue
        swapped = secrets.randbits(1) == 1
        pair_store.insert_pair(conn, PairRow(item.id, queue.id, run_b, trace_b, example, swapped))
        added += 1
    return Added(queue.id, added, already)


def _run_pairs(
    conn: Connection, who: Principal, wanted: list[tuple[str, str]]
) -> list[tuple[str, str, str, str, str | None]]:
    ids = list(dict.fromkeys(r for pair in wanted for r in pair))
    found = run_sources.by_ids(conn, who.workspace_id, ids)
    missing = [r for r in ids if r not in found]
    if missing:
        raise NotFound(
            f"no run with id {missing[0]!r} in this workspace",
            details={"missing_run_ids": missing[:100]},
        )
    return [(a, found[a].trace_id, b, found[b].trace_id, None) for a, b in wanted]


def _experiment_pairs(
    conn: Connection, who: Principal, refs: Any
) -> tuple[str, str, list[tuple[str, str, str, str, str | None]]]:
    if not (isinstance(refs, list) and len(refs) == 2 and all(isinstance(r, str) for r in refs)):
        raise InvalidInput(
            "experiments is a list of two experiment ids or names: [A, B]",
            details={"field": "experiments"},
        )
    a, b = experiments.build(
        conn, who, [experiments.load(conn, who, refs[0]), experiments.load(conn, who, refs[1])]
    )
    if a.id == b.id:
        raise InvalidInput("compare two different experiments", details={"field": "experiments"})
    if a.dataset_id != b.dataset_id:
        raise InvalidInput(
            f"experiments {a.name!r} and {b.name!r} ran on different datasets",
            details={"field": "experiments"},
        )
    runs_a = experiment_results.runs_by_position(conn, who, a.id)
    runs_b = experiment_results.runs_by_position(conn, who, b.id)
    shared = sorted(set(runs_a) & set(runs_b))
    if not shared:
        raise InvalidInput(
            f"experiments {a.name!r} and {b.name!r} share no examples",
            details={"field": "experiments"},
        )
    if len(shared) > MAX_PAIRS:
        raise InvalidInput(
            f"the experiments share {len(shared)} runs; a pairwise queue takes at most {MAX_PAIRS}",
            details={"field": "experiments"},
        )
    pairs: list[tuple[str, str, str, str, str | None]] = [
        (
            runs_a[pos]["id"],
            runs_a[pos]["trace_id"],
            runs_b[pos]["id"],
            runs_b[pos]["trace_id"],
            pos[0],
        )
        for pos in shared
    ]
    return a.id, b.id, pairs


def create(
    ctx: ServiceContext,
    who: Principal,
    *,
    name: Any,
    description: Any = None,
    instructions: Any = None,
    reviewers_needed: Any = 1,
    lease_seconds: Any = rules.LEASE_S,
    experiments: Any = None,
    pairs: Any = None,
) -> tuple[QueueRow, PairwiseQueueRow, Added]:
    """A pairwise queue from two experiments (``[A, B]``, ids or names) or from ``pairs`` of
    runs (``[{"run_a", "run_b"}]``); exactly one of the two."""
    need_admin(who)
    if (experiments is None) == (pairs is None):
        raise InvalidInput(
            "give either experiments ([A, B]) or pairs ([{run_a, run_b}])",
            details={"field": "experiments"},
        )
    wanted = None if pairs is None else _check_pairs(pairs)
    now = ctx.clock()
    row = QueueRow(
        id=str(uuid.uuid4()),
        workspace_id=who.workspace_id,
        name=rules.check_name(name),
        description=rules.check_text("description", description),
        instructions=rules.check_text("instructions", instructions),
        keys=[],
        reviewers_needed=rules.check_reviewers(reviewers_needed),
        dataset_id=None,
        lease_s=rules.check_lease(lease_seconds),
        extra=None,
        created_at=now,
        updated_at=now,
    )

    def write(conn: Connection) -> tuple[QueueRow, PairwiseQueueRow, Added]:
        exp_a = exp_b = None
        if wanted is not None:
            items = _run_pairs(conn, who, wanted)
        else:
            exp_a, exp_b, items = _experiment_pairs(conn, who, experiments)
        if not store.insert_queue(conn, row):
            raise Conflict(
                f"an annotation queue named {row.name!r} exists in this workspace",
                details={"field": "name"},
            )
        info = PairwiseQueueRow(row.id, who.workspace_id, exp_a, exp_b, now)
        pair_store.insert_queue(conn, info)
        return row, info, _insert(conn, who, row, items, now)

    return ctx.db.write(write)


def add_pairs(ctx: ServiceContext, who: Principal, queue_id: str, pairs: Any) -> Added:
    """Add pairs of runs to a pairwise queue (any key of the workspace, as for adding runs);
    a pair whose run A is queued already is reported, not added twice."""
    wanted = _check_pairs(pairs)
    now = ctx.clock()

    def write(conn: Connection) -> Added:
        queue = _pairwise_queue(conn, who, queue_id)
        return _insert(conn, who, queue, _run_pairs(conn, who, wanted), now)

    return ctx.db.write(write)


def info(ctx: ServiceContext, who: Principal, queue_id: str) -> PairwiseQueueRow | None:
    """The queue's pairwise settings, or None for a queue of single runs."""
    return ctx.db.read(lambda c: meta(c, who, load(c, who, queue_id)))


def pairwise_ids(ctx: ServiceContext, who: Principal, queue_ids: list[str]) -> set[str]:
    """Which of these queues (of the caller's workspace) are pairwise."""
    return ctx.db.read(lambda c: pair_store.pairwise_ids(c, who.workspace_id, queue_ids))


def get_pair(ctx: ServiceContext, who: Principal, queue_id: str, item_id: str) -> Pair:
    def read(conn: Connection) -> Pair:
        queue = _pairwise_queue(conn, who, queue_id)
        item = store.get_item(conn, who.workspace_id, queue.id, item_id)
        pair = pair_store.get_pair(conn, queue.id, item_id) if item else None
        if item is None or pair is None:
            raise NotFound(f"no pair {item_id!r} in annotation queue {queue.id!r}")
        return Pair(item, pair)

    return ctx.db.read(read)


def list_pairs(
    ctx: ServiceContext, who: Principal, queue_id: str, *, limit: int = 100
) -> list[Pair]:
    def read(conn: Connection) -> list[Pair]:
        queue = _pairwise_queue(conn, who, queue_id)
        items = store.list_items(conn, queue.id, limit=limit)
        found = pair_store.pairs_of(conn, queue.id, [i.id for i in items])
        return [Pair(i, found[i.id]) for i in items if i.id in found]

    return ctx.db.read(read)


def submit(
    ctx: ServiceContext,
    who: Principal,
    queue_id: str,
    item_id: str,
    *,
    preference: Any,
    comment: Any = None,
) -> tuple[Pair, ReviewRow, bool]:
    """Record the caller's preference (``A``, ``B`` or ``tie``) on a pair; returns the pair as
    it is after, the review, and whether this review completed it."""
    if preference not in pairwise.PREFERENCES:
        raise InvalidInput("preference is 'A', 'B' or 'tie'", details={"field": "preference"})
    comment = rules.check_text("comment", comment)
    now = ctx.clock()

    def write(conn: Connection) -> tuple[Pair, ReviewRow, bool]:
        queue = _pairwise_queue(conn, who, queue_id, for_update=True)
        item = store.get_item(conn, who.workspace_id, queue.id, item_id)
        pair = pair_store.get_pair(conn, queue.id, item_id) if item else None
        if item is None or pair is None:
            raise NotFound(f"no pair {item_id!r} in annotation queue {queue.id!r}")
        claimable(conn, queue, item, who, now, noun="pair")
        name = review_store.key_name(conn, who.workspace_id, who.key_id) or who.key_id
        review = ReviewRow(
            item_id=item.id,
            run_id=item.run_id,
            reviewer=who.key_id,
            reviewer_name=name,
            outcome="reviewed",
            scores={pairwise.PREFERENCE_KEY: {"score": None, "value": preference}},
            correction=None,
            comment=comment,
            feedback_ids=[],
            created_at=now,
        )
        review_store.insert_review(conn, who.workspace_id, queue.id, review)
        review_store.release(conn, item.id, who.key_id)
        completed = store.mark_reviewed(conn, item, queue.reviewers_needed, now)
        after = store.get_item(conn, who.workspace_id, queue.id, item.id)
        assert after is not None
        return Pair(after, pair), review, completed

    return ctx.db.write(write)


_PREFERENCE_SPEC = KeySpec(pairwise.PREFERENCE_KEY, "categorical")


_FLIP = {"A": "B", "B": "A", "tie": "tie"}


def _results_of(
    conn: Connection, who: Principal, queue: QueueRow, confidence: float, *, flip: bool = False
) -> dict[str, Any]:
    """The queue's figures; ``flip`` reads them the other way round (B over A becomes A over
    B), for a comparison page showing the queue's experiments swapped."""
    info = meta(conn, who, queue)
    reviews = review_store.reviews_of(conn, queue.id, outcome="reviewed")
    by_item: dict[str, list[str]] = {}
    for review in reviews:
        answer = (review.scores or {}).get(pairwise.PREFERENCE_KEY)
        if isinstance(answer, dict) and answer.get("value") in pairwise.PREFERENCES:
            by_item.setdefault(review.item_id, []).append(answer["value"])
    outcomes = [o for prefs in by_item.values() if (o := pairwise.item_outcome(prefs))]
    if flip:
        outcomes = [_FLIP[o] for o in outcomes]
    summary = pairwise.summarize(outcomes, confidence)
    return {
        "queue_id": queue.id,
        "queue_name": queue.name,
        "experiment_a": info.experiment_a if info else None,
        "experiment_b": info.experiment_b if info else None,
        "flipped": flip,
        "reviews": sum(len(p) for p in by_item.values()),
        **summary.as_dict(),
        "agreement": key_agreement(pairwise.PREFERENCE_KEY, _PREFERENCE_SPEC, reviews, confidence),
    }


def results(
    ctx: ServiceContext, who: Principal, queue_id: str, *, confidence: float = 0.95
) -> dict[str, Any]:
    """Win rate of B over A (ties count half) with its interval, the tie share, the sign test,
    n (judged pairs) and the reviewers' agreement on the preference."""
    if not 0.5 < confidence < 1:
        raise InvalidInput("confidence must be between 0.5 and 1", details={"field": "confidence"})
    return ctx.db.read(lambda c: _results_of(c, who, _pairwise_queue(c, who, queue_id), confidence))


def for_experiments(
    ctx: ServiceContext, who: Principal, experiment_a: str, experiment_b: str
) -> dict[str, Any] | None:
    """Human preference between two experiments (ids), as B (``experiment_b``) over A: the
    results of the newest pairwise queue made from them that has judged pairs (else the newest
    one), read the other way round (``flipped``) when the queue has them as B and A. None when
    no pairwise queue compares them."""

    def read(conn: Connection) -> dict[str, Any] | None:
        found = [
            (info, False)
            for info in pair_store.queues_for(conn, who.workspace_id, experiment_a, experiment_b)
        ] + [
            (info, True)
            for info in pair_store.queues_for(conn, who.workspace_id, experiment_b, experiment_a)
        ]
        found.sort(key=lambda f: (f[0].created_at, f[0].queue_id), reverse=True)
        best: dict[str, Any] | None = None
        for info, flip in found:
            queue = store.get_queue(conn, who.workspace_id, info.queue_id)
            if queue is None:
                continue
            got = _results_of(conn, who, queue, 0.95, flip=flip)
            if got["n"]:
                return got
            best = best or got
        return best

    return ctx.db.read(read)
