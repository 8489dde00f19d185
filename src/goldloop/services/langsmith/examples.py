"""LangSmith examples -> Goldloop dataset examples (``services.examples``).

LangSmith addresses an example by id alone, so the dataset is looked up when the request does not
name it. Its ``split`` is Goldloop's ``splits``; the SDK reads splits back from
``metadata.dataset_split``, so reads put them there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import Forbidden, InvalidInput, NotFound
from goldloop.domain.langsmith import example_filter
from goldloop.services import datasets, examples
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.examples import ExampleIn
from goldloop.services.langsmith.datasets import MAX_PAGE, selector
from goldloop.store import example_lookup
from goldloop.store.examples import ExampleRow

SPLIT_KEY = "dataset_split"


def example_json(row: ExampleRow, dataset_id: str) -> dict[str, Any]:
    metadata = dict(row.metadata or {})
    if row.splits:
        metadata[SPLIT_KEY] = list(row.splits)
    return {
        "id": row.id,
        "dataset_id": dataset_id,
        "inputs": row.inputs,
        "outputs": row.outputs,
        "metadata": metadata or None,
        "created_at": to_iso(row.created_at),
        "modified_at": to_iso(row.updated_at),
        "source_run_id": row.source_run_id,
        "attachment_urls": None,
    }


def _splits(body: Mapping[str, Any]) -> list[str] | None:
    split = body.get("split")
    meta = body.get("metadata")
    if split is None and isinstance(meta, dict):
        split = meta.get(SPLIT_KEY)
    if split is None:
        return None
    return [split] if isinstance(split, str) else list(split)


def _metadata(body: Mapping[str, Any]) -> dict[str, Any] | None:
    meta = body.get("metadata")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InvalidInput("'metadata' must be an object", details={"field": "metadata"})
    return {k: v for k, v in meta.items() if k != SPLIT_KEY} or None


def _example_in(body: Mapping[str, Any]) -> ExampleIn:
    if not isinstance(body, Mapping):
        raise InvalidInput("an example must be a JSON object")
    return ExampleIn(
        inputs=body.get("inputs") if body.get("inputs") is not None else {},
        outputs=body.get("outputs"),
        metadata=_metadata(body),
        splits=_splits(body),
        id=str(body["id"]) if body.get("id") is not None else None,
        source_run_id=str(body["source_run_id"]) if body.get("source_run_id") else None,
    )


def dataset_of(ctx: ServiceContext, who: Principal, example_id: str) -> str:
    found = ctx.db.read(lambda c: example_lookup.datasets_of(c, who.workspace_id, [example_id]))
    if example_id not in found:
        raise NotFound(f"no example with id {example_id!r}")
    return found[example_id]


def create_many(
    ctx: ServiceContext, who: Principal, bodies: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Examples (each naming its ``dataset_id``); one new version per dataset. Re-sending the
    same examples (a retry) changes nothing."""
    by_dataset: dict[str, list[ExampleIn]] = {}
    order: list[tuple[str, int]] = []
    for index, body in enumerate(bodies):
        dataset_id = body.get("dataset_id") if isinstance(body, Mapping) else None
        if not dataset_id:
            raise InvalidInput(f"example {index}: 'dataset_id' is required")
        items = by_dataset.setdefault(str(dataset_id), [])
        order.append((str(dataset_id), len(items)))
        items.append(_example_in(body))
    ids: dict[str, list[str]] = {}
    for dataset_id, items in by_dataset.items():
        result = examples.add(ctx, who, dataset_id, items, upsert=True)
        given = [i.id for i in items]
        named = {g for g in given if g is not None}
        fresh = iter([a for a in result.added if a not in named])
        ids[dataset_id] = [g if g is not None else next(fresh) for g in given]
    out = []
    for dataset_id, position in order:
        _, row = examples.get(ctx, who, dataset_id, ids[dataset_id][position])
        out.append(example_json(row, dataset_id))
    return out


def read(ctx: ServiceContext, who: Principal, example_id: str, as_of: str | None) -> dict[str, Any]:
    dataset_id = dataset_of(ctx, who, example_id)
    _, row = examples.get(ctx, who, dataset_id, example_id, selector(as_of))
    return example_json(row, dataset_id)


def list_examples(
    ctx: ServiceContext,
    who: Principal,
    *,
    dataset: str | None,
    ids: list[str],
    splits: list[str],
    as_of: str | None,
    metadata: str | None,
    offset: int,
    limit: int,
    filter: str | None = None,
) -> list[dict[str, Any]]:
    limit = max(1, min(limit, MAX_PAGE))
    match = example_filter.parse_filter(filter)
    meta_filter: dict[str, Any] | None = None
    if metadata:
        try:
            meta_filter = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            meta_filter = None
        if not isinstance(meta_filter, dict):
            raise InvalidInput("'metadata' must be a JSON object", details={"field": "metadata"})
    if dataset is None:
        if not ids:
            raise InvalidInput("list examples of a 'dataset', or by 'id'")
        found = ctx.db.read(lambda c: example_lookup.datasets_of(c, who.workspace_id, ids))
        if match is not None:
            kept = _matching(ctx, who, found, as_of, match)
            found = {i: d for i, d in found.items() if i in kept}
        out = [read(ctx, who, i, as_of) for i in ids if i in found]
        return out[offset : offset + limit]
    rows: list[ExampleRow] = []
    cursor: str | None = None
    wanted = set(ids)
    split_set = set(splits)
    while len(rows) < offset + limit:
        page = examples.list_examples(
            ctx,
            who,
            dataset,
            as_of=selector(as_of),
            split=splits[0] if len(splits) == 1 else None,
            metadata=meta_filter,
            match=match,
            limit=1000,
            cursor=cursor,
        )
        for row in page.items:
            if wanted and row.id not in wanted:
                continue
            if split_set and not split_set & set(row.splits or ["base"]):
                continue
            rows.append(row)
        cursor = page.next_cursor
        if cursor is None:
            break
    dataset_id = datasets.get(ctx, who, dataset).row.id
    return [example_json(r, dataset_id) for r in rows[offset : offset + limit]]


def _matching(
    ctx: ServiceContext,
    who: Principal,
    found: dict[str, str],
    as_of: str | None,
    match: example_filter.Match,
) -> set[str]:
    """Which of these examples (id -> dataset id) the filter selects."""
    kept: set[str] = set()
    for dataset_id in set(found.values()):
        cursor: str | None = None
        while True:
            page = examples.list_examples(
                ctx, who, dataset_id, as_of=selector(as_of), match=match, limit=1000, cursor=cursor
            )
            kept.update(row.id for row in page.items if row.id in found)
            cursor = page.next_cursor
            if cursor is None:
                break
    return kept


def _changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """Only the keys sent (the SDK drops unset ones); ``split`` becomes ``splits``."""
    changes: dict[str, Any] = {}
    for key in ("inputs", "outputs"):
        if body.get(key) is not None:
            changes[key] = body[key]
    if body.get("metadata") is not None:
        changes["metadata"] = _metadata(body)
    splits = _splits(body)
    if splits is not None:
        changes["splits"] = splits
    return changes


def update(
    ctx: ServiceContext, who: Principal, example_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    dataset_id = str(body.get("dataset_id") or dataset_of(ctx, who, example_id))
    _, row = examples.update(ctx, who, dataset_id, example_id, _changes(body), touch=True)
    return example_json(row, dataset_id)


def update_many(
    ctx: ServiceContext, who: Principal, bodies: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    for body in bodies:
        if not isinstance(body, Mapping) or not body.get("id"):
            raise InvalidInput("each example update needs an 'id'")
        update(ctx, who, str(body["id"]), body)
    return {"message": f"{len(bodies)} examples updated", "count": len(bodies)}


def delete(
    ctx: ServiceContext, who: Principal, example_ids: list[str], *, hard: bool = False
) -> None:
    """Soft (a new version without them) or ``hard`` (their content erased from every version
    too: old ``as_of`` reads no longer show them)."""
    if not example_ids:
        raise InvalidInput("no example ids given", details={"field": "example_ids"})
    found = ctx.db.read(lambda c: example_lookup.datasets_of(c, who.workspace_id, example_ids))
    missing = [i for i in example_ids if i not in found]
    if missing:
        raise NotFound(f"no example with id {missing[0]!r}")
    by_dataset: dict[str, list[str]] = {}
    for example_id in dict.fromkeys(example_ids):
        by_dataset.setdefault(found[example_id], []).append(example_id)
    for dataset_id, ids in by_dataset.items():
        if hard:
            examples.hard_delete(ctx, who, dataset_id, ids)
        else:
            examples.delete(ctx, who, dataset_id, ids)


def delete_request(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> int:
    """``POST /v1/platform/datasets/examples/delete``: ``{"example_ids": [...],
    "hard_delete": bool}``; returns how many examples were deleted."""
    ids = body.get("example_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise InvalidInput(
            "'example_ids' must be a list of example ids", details={"field": "example_ids"}
        )
    hard = body.get("hard_delete", False)
    if not isinstance(hard, bool):
        raise InvalidInput("'hard_delete' must be true or false", details={"field": "hard_delete"})
    if hard and not who.is_admin:
        raise Forbidden(
            "a hard delete erases examples from every version: it needs an admin API key"
        )
    delete(ctx, who, list(ids), hard=hard)
    return len(set(ids))
