"""How far a queue's reviewers agree with each other, per key (math in domain.agreement).

Per key, each item is a unit holding the ratings its reviewers gave: the category of a
categorical key, the boolean of a boolean key (both compared as labels, ``nominal``), the score
of a continuous key (``interval``). Cohen's kappa is reported when exactly two reviewers rated
the key (for nominal keys); Krippendorff's alpha always, since it takes any number of reviewers
and items that not everyone rated. ``method`` names the figure to read first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import agreement
from goldloop.domain import annotation_queues as rules
from goldloop.domain.feedback import KeySpec
from goldloop.services.annotation_queues import load
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import annotation_reviews as review_store
from goldloop.store import feedback as feedback_store
from goldloop.store.annotation_queues import QueueRow
from goldloop.store.annotation_reviews import ReviewRow


def key_agreement(
    key: str,
    spec: KeySpec | None,
    reviews: list[ReviewRow],
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Agreement on one key from the reviews that rated it."""
    level = rules.level(spec)
    by_item: dict[str, dict[str, Any]] = {}
    for review in reviews:
        answer = (review.scores or {}).get(key)
        if not isinstance(answer, dict):
            continue
        rating = rules.rating(spec, answer)
        if rating is None:
            continue
        by_item.setdefault(review.item_id, {})[review.reviewer] = rating
    reviewers = sorted({r for ratings in by_item.values() for r in ratings})
    units = [[ratings.get(r) for r in reviewers] for ratings in by_item.values()]
    alpha = agreement.alpha_interval(units, level, confidence)
    out: dict[str, Any] = {
        "key": key,
        "kind": spec.kind if spec else None,
        "level": level,
        "reviewers": len(reviewers),
        "items_rated": len(by_item),
        "items_compared": alpha.n,
        "alpha": alpha.as_dict(),
        "kappa": None,
        "method": "krippendorff_alpha",
    }
    if len(reviewers) == 2 and level == agreement.NOMINAL:
        first, second = reviewers
        pairs = [
            (ratings[first], ratings[second])
            for ratings in by_item.values()
            if first in ratings and second in ratings
        ]
        out["kappa"] = agreement.kappa_of_pairs(pairs, confidence).as_dict()
        out["method"] = "cohen_kappa"
    return out


def queue_agreement(
    ctx: ServiceContext, who: Principal, queue_id: str, *, confidence: float = 0.95
) -> dict[str, Any]:
    def read(conn: Connection) -> tuple[QueueRow, list[ReviewRow], dict[str, KeySpec | None]]:
        queue = load(conn, who, queue_id)
        reviews = review_store.reviews_of(conn, queue.id, outcome="reviewed")
        specs = {k: feedback_store.get_key(conn, who.workspace_id, k) for k in queue.keys}
        return queue, reviews, specs

    queue, reviews, specs = ctx.db.read(read)
    names = {r.reviewer: r.reviewer_name for r in reviews}
    return {
        "queue_id": queue.id,
        "confidence": confidence,
        "reviewers": [{"id": k, "name": v} for k, v in sorted(names.items(), key=lambda i: i[1])],
        "keys": [key_agreement(k, specs[k], reviews, confidence) for k in queue.keys],
    }
