"""LangSmith datasets, versions, tags and splits -> Goldloop's versioned datasets.

A LangSmith dataset version is a point in time; a Goldloop version is a number with the time it
was made. ``as_of`` in LangSmith form (an ISO time, ``str(datetime)``, a tag, or ``latest``) is
turned into a Goldloop selector, and a version is shown as the ISO time it was made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from goldloop.domain.clock import from_iso, to_iso
from goldloop.domain.errors import InvalidInput
from goldloop.services import datasets as ds
from goldloop.services import examples
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.datasets import DatasetInfo, VersionInfo

MAX_PAGE = 100


def selector(as_of: str | None) -> str | None:
    """A LangSmith ``as_of`` as a Goldloop one: ISO times normalised, ``latest`` = newest."""
    if as_of is None or not as_of.strip() or as_of.strip() == "latest":
        return None
    raw = as_of.strip()
    try:
        return to_iso(from_iso(raw))
    except ValueError:
        return raw  # a tag


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"'{key}' must be a string", details={"field": key})
    return value


def _schema(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"'{key}' must be a JSON Schema object", details={"field": key})
    return value


def _metadata(body: Mapping[str, Any]) -> Any:
    """The SDK sends a dataset's metadata as ``extra.metadata``; a bare ``metadata`` works too."""
    extra = body.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise InvalidInput("'extra' must be an object", details={"field": "extra"})
    if extra and "metadata" in extra:
        return extra["metadata"]
    return body.get("metadata")


def create(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> DatasetInfo:
    name = _text(body, "name")
    if not name:
        raise InvalidInput("a dataset needs a 'name'", details={"field": "name"})
    return ds.create(
        ctx,
        who,
        name,
        description=_text(body, "description"),
        inputs_schema=_schema(body, "inputs_schema_definition"),
        outputs_schema=_schema(body, "outputs_schema_definition"),
        data_type=_text(body, "data_type") or "kv",
        metadata=_metadata(body),
    )


def _metadata_filter(metadata: str | None) -> dict[str, Any] | None:
    if metadata is None:
        return None
    try:
        wanted = orjson.loads(metadata)
    except orjson.JSONDecodeError:
        wanted = None
    if not isinstance(wanted, dict):
        raise InvalidInput("'metadata' must be a JSON object", details={"field": "metadata"})
    return wanted


def get(ctx: ServiceContext, who: Principal, ref: str) -> DatasetInfo:
    return ds.get(ctx, who, ref)


def list_datasets(
    ctx: ServiceContext,
    who: Principal,
    *,
    ids: list[str],
    name: str | None,
    name_contains: str | None,
    offset: int,
    limit: int,
    data_type: str | None = None,
    metadata: str | None = None,
) -> list[DatasetInfo]:
    wanted_meta = _metadata_filter(metadata)
    rows: list[DatasetInfo] = []
    cursor: str | None = None
    while True:
        page = ds.list_datasets(ctx, who, limit=1000, cursor=cursor)
        rows += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    if ids:
        rows = [r for r in rows if r.row.id in set(ids)]
    if name is not None:
        rows = [r for r in rows if r.row.name == name]
    if name_contains:
        rows = [r for r in rows if name_contains.lower() in r.row.name.lower()]
    if data_type is not None:
        rows = [r for r in rows if r.row.data_type == data_type]
    if wanted_meta:
        rows = [
            r
            for r in rows
            if all(
                key in (r.row.metadata or {}) and (r.row.metadata or {})[key] == value
                for key, value in wanted_meta.items()
            )
        ]
    return rows[offset : offset + max(1, min(limit, MAX_PAGE))]


def update(ctx: ServiceContext, who: Principal, ref: str, body: Mapping[str, Any]) -> DatasetInfo:
    changes: dict[str, Any] = {}
    if body.get("name") is not None:
        changes["name"] = _text(body, "name")
    if body.get("description") is not None:
        changes["description"] = _text(body, "description")
    if body.get("data_type") is not None:
        changes["data_type"] = _text(body, "data_type")
    meta = _metadata(body)
    if meta is not None:
        changes["metadata"] = meta
    if changes:
        ds.update(ctx, who, ref, **changes)
    return ds.get(ctx, who, ref)


def delete(ctx: ServiceContext, who: Principal, ref: str) -> None:
    ds.delete(ctx, who, ref)


def _versions(ctx: ServiceContext, who: Principal, ref: str) -> list[VersionInfo]:
    out: list[VersionInfo] = []
    cursor: str | None = None
    while True:
        items, cursor = ds.list_versions(ctx, who, ref, limit=1000, cursor=cursor)
        out += items
        if cursor is None:
            return out


def version_json(info: VersionInfo) -> dict[str, Any]:
    return {"as_of": to_iso(info.row.created_at), "tags": sorted(info.tags)}


def list_versions(
    ctx: ServiceContext, who: Principal, ref: str, *, search: str | None, offset: int, limit: int
) -> list[dict[str, Any]]:
    versions = [version_json(v) for v in _versions(ctx, who, ref)]
    if search:
        versions = [v for v in versions if any(search in t for t in v["tags"])]
    return versions[offset : offset + max(1, min(limit, MAX_PAGE))]


def read_version(
    ctx: ServiceContext, who: Principal, ref: str, *, as_of: str | None, tag: str | None
) -> dict[str, Any]:
    number = ds.resolve_version(ctx, who, ref, selector(tag) if tag else selector(as_of))
    for info in _versions(ctx, who, ref):
        if info.row.version == number:
            return version_json(info)
    dataset = ds.get(ctx, who, ref)  # version 0: the empty dataset as created
    return {"as_of": to_iso(dataset.row.created_at), "tags": []}


def set_tag(ctx: ServiceContext, who: Principal, ref: str, body: Mapping[str, Any]) -> None:
    tag = _text(body, "tag")
    if not tag:
        raise InvalidInput("'tag' is required", details={"field": "tag"})
    ds.set_tag(ctx, who, ref, tag, selector(_text(body, "as_of")))


def diff(
    ctx: ServiceContext, who: Principal, ref: str, from_version: str, to_version: str
) -> dict[str, list[str]]:
    head = str(ds.get(ctx, who, ref).row.head_version)
    result = ds.diff(
        ctx, who, ref, selector(from_version) or head, selector(to_version), by_revision=True
    )
    return {
        "examples_modified": result.changed,
        "examples_added": result.added,
        "examples_removed": result.removed,
    }


def list_splits(ctx: ServiceContext, who: Principal, ref: str, as_of: str | None) -> list[str]:
    names: set[str] = set()
    cursor: str | None = None
    while True:
        page = examples.list_examples(
            ctx, who, ref, as_of=selector(as_of), limit=1000, cursor=cursor
        )
        for row in page.items:
            names.update(row.splits or ["base"])
        cursor = page.next_cursor
        if cursor is None:
            return sorted(names)


def update_splits(ctx: ServiceContext, who: Principal, ref: str, body: Mapping[str, Any]) -> None:
    split = _text(body, "split_name")
    ids = body.get("examples")
    if not split or not isinstance(ids, list):
        raise InvalidInput("'split_name' and 'examples' (ids) are required")
    remove = bool(body.get("remove"))
    for example_id in ids:
        _, row = examples.get(ctx, who, ref, str(example_id))
        splits = set(row.splits or [])
        splits = splits - {split} if remove else splits | {split}
        examples.update(ctx, who, ref, str(example_id), {"splits": sorted(splits) or None})
