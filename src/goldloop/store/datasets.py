"""Datasets, their versions and tags. Examples live in ``store.examples``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import dataset_examples, dataset_tags, dataset_versions, datasets


@dataclass(frozen=True, slots=True)
class DatasetRow:
    id: str
    workspace_id: str
    name: str
    description: str | None
    inputs_schema: dict[str, Any] | None
    outputs_schema: dict[str, Any] | None
    head_version: int
    created_at: int
    updated_at: int
    data_type: str = "kv"  # LangSmith's "kv", "llm" or "chat"
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: int
    created_at: int
    message: str | None
    added: int
    updated: int
    removed: int


def _row(r: sa.Row[Any]) -> DatasetRow:
    m = r._mapping
    return DatasetRow(
        id=m["id"],
        workspace_id=m["workspace_id"],
        name=m["name"],
        description=m["description"],
        inputs_schema=m["inputs_schema"],
        outputs_schema=m["outputs_schema"],
        head_version=int(m["head_version"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        data_type=m["data_type"],
        metadata=m["metadata"],
    )


def insert(conn: Connection, d: DatasetRow) -> None:
    conn.execute(
        sa.insert(datasets).values(
            id=d.id,
            workspace_id=d.workspace_id,
            name=d.name,
            description=d.description,
            inputs_schema=d.inputs_schema,
            outputs_schema=d.outputs_schema,
            head_version=d.head_version,
            created_at=d.created_at,
            updated_at=d.updated_at,
            data_type=d.data_type,
            metadata=d.metadata,
        )
    )
    add_version(conn, d.id, VersionRow(0, d.created_at, "created", 0, 0, 0))


def get(
    conn: Connection, workspace_id: str, ref: str, *, for_update: bool = False
) -> DatasetRow | None:
    """The dataset with this id, else with this name. ``for_update`` locks the row (PostgreSQL;
    SQLite has a single writer anyway) so concurrent writers take versions one at a time."""
    for column in (datasets.c.id, datasets.c.name):
        query = sa.select(datasets).where(datasets.c.workspace_id == workspace_id, column == ref)
        if for_update:
            query = query.with_for_update()
        found = conn.execute(query).first()
        if found:
            return _row(found)
    return None


def get_by_name(conn: Connection, workspace_id: str, name: str) -> DatasetRow | None:
    query = sa.select(datasets).where(
        datasets.c.workspace_id == workspace_id, datasets.c.name == name
    )
    found = conn.execute(query).first()
    return _row(found) if found else None


def list_page(
    conn: Connection, workspace_id: str, *, limit: int, after_name: str | None
) -> list[DatasetRow]:
    query = (
        sa.select(datasets)
        .where(datasets.c.workspace_id == workspace_id)
        .order_by(datasets.c.name)
        .limit(limit)
    )
    if after_name is not None:
        query = query.where(datasets.c.name > after_name)
    return [_row(r) for r in conn.execute(query)]


def update(conn: Connection, dataset_id: str, values: dict[str, Any]) -> None:
    conn.execute(sa.update(datasets).where(datasets.c.id == dataset_id).values(**values))


def delete(conn: Connection, dataset_id: str) -> None:
    # Children go explicitly: the result does not depend on foreign-key enforcement.

    for table in (dataset_examples, dataset_tags, dataset_versions):
        conn.execute(sa.delete(table).where(table.c.dataset_id == dataset_id))
    conn.execute(sa.delete(datasets).where(datasets.c.id == dataset_id))


# --- versions ------------------------------------------------------------------------------


def add_version(conn: Connection, dataset_id: str, v: VersionRow) -> None:
    conn.execute(
        sa.insert(dataset_versions).values(
            dataset_id=dataset_id,
            version=v.version,
            created_at=v.created_at,
            message=v.message,
            added=v.added,
            updated=v.updated,
            removed=v.removed,
        )
    )


def _version(r: sa.Row[Any]) -> VersionRow:
    m = r._mapping
    return VersionRow(
        int(m["version"]), m["created_at"], m["message"], m["added"], m["updated"], m["removed"]
    )


def list_versions(
    conn: Connection, dataset_id: str, *, limit: int, before: int | None
) -> list[VersionRow]:
    query = (
        sa.select(dataset_versions)
        .where(dataset_versions.c.dataset_id == dataset_id)
        .order_by(dataset_versions.c.version.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(dataset_versions.c.version < before)
    return [_version(r) for r in conn.execute(query)]


def get_version(conn: Connection, dataset_id: str, version: int) -> VersionRow | None:
    query = sa.select(dataset_versions).where(
        dataset_versions.c.dataset_id == dataset_id, dataset_versions.c.version == version
    )
    found = conn.execute(query).first()
    return _version(found) if found else None


def version_at(conn: Connection, dataset_id: str, time_us: int) -> int | None:
    """The newest version created at or before this time."""
    query = sa.select(sa.func.max(dataset_versions.c.version)).where(
        dataset_versions.c.dataset_id == dataset_id, dataset_versions.c.created_at <= time_us
    )
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


# --- tags ----------------------------------------------------------------------------------


def tags(conn: Connection, dataset_id: str) -> dict[str, int]:
    query = (
        sa.select(dataset_tags.c.tag, dataset_tags.c.version)
        .where(dataset_tags.c.dataset_id == dataset_id)
        .order_by(dataset_tags.c.tag)
    )
    return {r.tag: int(r.version) for r in conn.execute(query)}


def set_tag(conn: Connection, dataset_id: str, tag: str, version: int, now: int) -> None:
    updated = conn.execute(
        sa.update(dataset_tags)
        .where(dataset_tags.c.dataset_id == dataset_id, dataset_tags.c.tag == tag)
        .values(version=version, updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(
            sa.insert(dataset_tags).values(
                dataset_id=dataset_id, tag=tag, version=version, updated_at=now
            )
        )


def delete_tag(conn: Connection, dataset_id: str, tag: str) -> bool:
    result = conn.execute(
        sa.delete(dataset_tags).where(
            dataset_tags.c.dataset_id == dataset_id, dataset_tags.c.tag == tag
        )
    )
    return result.rowcount > 0
