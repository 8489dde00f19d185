"""LangSmith annotation queues -> Goldloop annotation queues.

A LangSmith queue's ``description`` is the queue's description, ``rubric_instructions`` its
instructions, and its ``rubric_items`` name the feedback keys reviewers fill (each must be a
declared key, a feedback config). The items as sent (per-key descriptions and the like) are
kept and given back, with the key's feedback config filled in. Queues created this way need one
review per item and have no dataset; both can be set through Goldloop's own API. Runs are added
by id; the queue's runs read back as LangSmith runs with ``added_at`` and
``last_reviewed_time``. Changing or deleting a queue, and removing a run, need an admin key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.services import annotation_queues as queues
from goldloop.services import feedback, run_queries
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.langsmith.feedback_configs import schema_json
from goldloop.services.langsmith.run_reads import ls_run
from goldloop.store.annotation_queues import ItemRow

STATUSES = ("needs_my_review", "needs_others_review", "completed")
_ITEM_FIELDS = (
    "feedback_key",
    "description",
    "value_descriptions",
    "score_descriptions",
    "is_required",
    "is_assertion",
    "regex_validator",
)


def _queue_json(view: queues.QueueView) -> dict[str, Any]:
    q = view.queue
    return {
        "id": q.id,
        "name": q.name,
        "description": q.description,
        "created_at": to_iso(q.created_at),
        "updated_at": to_iso(q.updated_at),
        "tenant_id": q.workspace_id,
        "rubric_instructions": q.instructions,
        "num_reviewers_per_item": q.reviewers_needed,
        "default_dataset": q.dataset_id,
        "total_runs": view.counts.items,
    }


def _rubric(raw: Any) -> tuple[list[str] | None, list[dict[str, Any]] | None]:
    """The keys of ``rubric_items`` and the items as kept (None: not given)."""
    if raw is None:
        return None, None
    if not isinstance(raw, list) or not all(isinstance(i, Mapping) for i in raw):
        raise InvalidInput(
            "rubric_items must be a list of objects", details={"field": "rubric_items"}
        )
    kept: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        key = item.get("feedback_key")
        if not isinstance(key, str):
            raise InvalidInput(
                f"rubric_items[{i}] needs a feedback_key", details={"field": "rubric_items"}
            )
        kept.append({f: item[f] for f in _ITEM_FIELDS if item.get(f) is not None})
    return [k["feedback_key"] for k in kept], kept


def _details(ctx: ServiceContext, who: Principal, view: queues.QueueView) -> dict[str, Any]:
    kept = {i["feedback_key"]: i for i in (view.queue.extra or {}).get("rubric_items", [])}
    times = feedback.key_times(ctx, who)
    items = []
    for key in view.queue.keys:
        item = {**kept.get(key, {}), "feedback_key": key}
        spec = feedback.find_key(ctx, who, key)
        if spec is not None:
            item["feedback_config"] = schema_json(spec, who, times.get(key))
        items.append(item)
    return {**_queue_json(view), "rubric_items": items}


def create(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    keys, kept = _rubric(body.get("rubric_items"))
    view = queues.create(
        ctx,
        who,
        name=body.get("name"),
        description=body.get("description"),
        instructions=body.get("rubric_instructions"),
        keys=keys or [],
        queue_id=body.get("id"),
        extra={"rubric_items": kept} if kept else None,
    )
    return _details(ctx, who, view)


def read(ctx: ServiceContext, who: Principal, queue_id: str) -> dict[str, Any]:
    return _details(ctx, who, queues.get(ctx, who, queue_id))


def list_queues(
    ctx: ServiceContext,
    who: Principal,
    *,
    ids: list[str],
    name: str | None,
    name_contains: str | None,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    views = queues.list_queues(
        ctx,
        who,
        ids=ids or None,
        name=name,
        name_contains=name_contains,
        offset=offset,
        limit=limit,
    )
    return [_queue_json(v) for v in views]


def update(
    ctx: ServiceContext, who: Principal, queue_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for ours, theirs in (
        ("name", "name"),
        ("description", "description"),
        ("instructions", "rubric_instructions"),
    ):
        if theirs in body:
            changes[ours] = body[theirs]
    if "rubric_items" in body:
        keys, kept = _rubric(body["rubric_items"])
        changes["keys"] = keys or []
        changes["extra"] = {"rubric_items": kept} if kept else None
    if "num_reviewers_per_item" in body and body["num_reviewers_per_item"] is not None:
        changes["reviewers_needed"] = body["num_reviewers_per_item"]
    return _details(ctx, who, queues.update(ctx, who, queue_id, changes))


def delete(ctx: ServiceContext, who: Principal, queue_id: str) -> None:
    queues.delete(ctx, who, queue_id)


def add_runs(ctx: ServiceContext, who: Principal, queue_id: str, body: Any) -> None:
    """``["run id", ...]`` or ``[{"run_id", "session_id", "start_time"}, ...]``."""
    if not isinstance(body, list):
        raise InvalidInput("send a list of run ids", details={"field": "runs"})
    run_ids = [r.get("run_id") if isinstance(r, Mapping) else r for r in body]
    queues.add_runs(ctx, who, queue_id, run_ids)


def remove_run(ctx: ServiceContext, who: Principal, queue_id: str, run_id: str) -> None:
    queues.remove_run(ctx, who, queue_id, run_id)


def _run_json(ctx: ServiceContext, who: Principal, item: ItemRow) -> dict[str, Any] | None:
    try:
        view = run_queries.get_run(ctx, who, item.run_id)
    except NotFound:
        return None
    return {
        **ls_run(view, who.workspace_id),
        "added_at": to_iso(item.added_at),
        "last_reviewed_time": to_iso(item.last_reviewed_at) if item.last_reviewed_at else None,
    }


def list_runs(
    ctx: ServiceContext,
    who: Principal,
    queue_id: str,
    *,
    status: str | None,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(STATUSES)}", details={"field": "status"}
        )
    if status == "needs_others_review":
        # pending items this key has answered: they wait for other reviewers
        pending = queues.list_items(ctx, who, queue_id, status="pending", limit=1000)
        mine = {i.id for i in queues.list_items(ctx, who, queue_id, mine=True, limit=1000)}
        rows = [i for i in pending if i.id not in mine][offset : offset + limit]
    else:
        rows = queues.list_items(
            ctx,
            who,
            queue_id,
            status="completed" if status == "completed" else None,
            mine=status == "needs_my_review",
            offset=offset,
            limit=limit,
        )
    return [r for r in (_run_json(ctx, who, i) for i in rows) if r is not None]


def run_at(ctx: ServiceContext, who: Principal, queue_id: str, index: int) -> dict[str, Any]:
    """The queue's ``index``-th run (in the order added)."""
    rows = queues.list_items(ctx, who, queue_id, offset=index, limit=1)
    found = _run_json(ctx, who, rows[0]) if rows else None
    if found is None:
        raise NotFound(f"annotation queue {queue_id!r} has no run at index {index}")
    return found
