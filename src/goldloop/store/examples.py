"""Dataset examples as immutable rows valid over ``[version_from, version_to)``.

Writing version v: an added example gets a row with ``version_from = v``; an update closes the
current row (``version_to = v``) and adds a new one; a delete only closes. The examples as of
version v are the rows with ``version_from <= v < version_to`` (``version_to`` NULL = current):
one indexed range query, and old versions never change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from goldloop.domain.langsmith.example_filter import Match
from goldloop.store import example_filters
from goldloop.store.schema import dataset_examples as ex

CHUNK = 500


@dataclass(frozen=True, slots=True)
class ExampleRow:
    id: str
    inputs: Any
    outputs: Any
    metadata: dict[str, Any] | None
    splits: list[str] | None
    lineage: dict[str, Any] | None
    source_run_id: str | None
    inputs_hash: str
    created_at: int
    updated_at: int
    version: int  # the version that wrote this row

    def content(self) -> tuple[Any, ...]:
        return (self.inputs, self.outputs, self.metadata, self.splits, self.lineage)


def _row(r: sa.Row[Any]) -> ExampleRow:
    m = r._mapping
    return ExampleRow(
        id=m["example_id"],
        inputs=m["inputs"],
        outputs=m["outputs"],
        metadata=m["metadata"],
        splits=m["splits"],
        lineage=m["lineage"],
        source_run_id=m["source_run_id"],
        inputs_hash=m["inputs_hash"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        version=int(m["version_from"]),
    )


def _valid_at(version: int | None) -> sa.ColumnElement[bool]:
    """Rows valid at ``version`` (None = the current rows)."""
    if version is None:
        return ex.c.version_to.is_(None)
    return sa.and_(
        ex.c.version_from <= version,
        sa.or_(ex.c.version_to.is_(None), ex.c.version_to > version),
    )


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _has_split(conn: Connection, split: str) -> sa.ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return ex.c.splits.op("@>")(sa.literal([split], postgresql.JSONB))
    each = sa.func.json_each(ex.c.splits).table_valued("value")
    return sa.select(sa.literal(1)).select_from(each).where(each.c.value == split).exists()


def _metadata_is(conn: Connection, key: str, value: Any) -> sa.ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return ex.c.metadata.op("@>")(sa.literal({key: value}, postgresql.JSONB))
    path = f'$."{key}"'
    if isinstance(value, bool):
        return sa.func.json_type(ex.c.metadata, path) == ("true" if value else "false")
    extracted: sa.ColumnElement[Any] = sa.func.json_extract(ex.c.metadata, path)
    matches: sa.ColumnElement[bool] = extracted == value
    return matches


def list_page(
    conn: Connection,
    dataset_id: str,
    version: int | None,
    *,
    split: str | None = None,
    metadata: dict[str, Any] | None = None,
    match: Match | None = None,
    limit: int,
    after_id: str | None = None,
) -> list[ExampleRow]:
    query = (
        sa.select(ex)
        .where(ex.c.dataset_id == dataset_id, _valid_at(version))
        .order_by(ex.c.example_id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(ex.c.example_id > after_id)
    if split is not None:
        query = query.where(_has_split(conn, split))
    for key, value in (metadata or {}).items():
        query = query.where(_metadata_is(conn, key, value))
    if match is not None:
        query = query.where(example_filters.condition(conn, match))
    return [_row(r) for r in conn.execute(query)]


def count(conn: Connection, dataset_id: str, version: int | None) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(ex)
        .where(ex.c.dataset_id == dataset_id, _valid_at(version))
    )
    return int(conn.execute(query).scalar_one())


def by_ids(
    conn: Connection, dataset_id: str, ids: Iterable[str], version: int | None = None
) -> dict[str, ExampleRow]:
    found: dict[str, ExampleRow] = {}
    for chunk in _chunks(sorted(set(ids))):
        query = sa.select(ex).where(
            ex.c.dataset_id == dataset_id, _valid_at(version), ex.c.example_id.in_(chunk)
        )
        found.update((row.id, row) for row in map(_row, conn.execute(query)))
    return found


def current_by_run(conn: Connection, dataset_id: str, run_ids: list[str]) -> dict[str, str]:
    """run id -> id of a current example made from it."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(run_ids))):
        query = sa.select(ex.c.source_run_id, ex.c.example_id).where(
            ex.c.dataset_id == dataset_id, _valid_at(None), ex.c.source_run_id.in_(chunk)
        )
        found.update((r.source_run_id, r.example_id) for r in conn.execute(query))
    return found


def current_by_hash(conn: Connection, dataset_id: str, hashes: list[str]) -> dict[str, str]:
    """inputs hash -> id of a current example with those inputs."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(hashes))):
        query = sa.select(ex.c.inputs_hash, ex.c.example_id).where(
            ex.c.dataset_id == dataset_id, _valid_at(None), ex.c.inputs_hash.in_(chunk)
        )
        found.update((r.inputs_hash, r.example_id) for r in conn.execute(query))
    return found


def insert(conn: Connection, dataset_id: str, version: int, rows: list[ExampleRow]) -> None:
    if not rows:
        return
    conn.execute(
        sa.insert(ex),
        [
            {
                "dataset_id": dataset_id,
                "example_id": r.id,
                "version_from": version,
                "version_to": None,
                "inputs": r.inputs,
                "outputs": r.outputs,
                "metadata": r.metadata,
                "splits": r.splits,
                "lineage": r.lineage,
                "source_run_id": r.source_run_id,
                "inputs_hash": r.inputs_hash,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            }
            for r in rows
        ],
    )


def close(conn: Connection, dataset_id: str, ids: list[str], version: int) -> int:
    """End the current rows of these examples at ``version``; returns how many were open."""
    closed = 0
    for chunk in _chunks(ids):
        result = conn.execute(
            sa.update(ex)
            .where(ex.c.dataset_id == dataset_id, _valid_at(None), ex.c.example_id.in_(chunk))
            .values(version_to=version)
        )
        closed += result.rowcount
    return closed


def purge(conn: Connection, dataset_id: str, ids: list[str]) -> int:
    """Delete every row of these examples, in every version; returns how many rows went."""
    gone = 0
    for chunk in _chunks(ids):
        result = conn.execute(
            sa.delete(ex).where(ex.c.dataset_id == dataset_id, ex.c.example_id.in_(chunk))
        )
        gone += result.rowcount
    return gone


def touched_between(conn: Connection, dataset_id: str, old: int, new: int) -> list[str]:
    """Ids of examples with a row opened or closed by a version in ``(old, new]``."""
    opened = sa.select(ex.c.example_id).where(
        ex.c.dataset_id == dataset_id, ex.c.version_from > old, ex.c.version_from <= new
    )
    ended = sa.select(ex.c.example_id).where(
        ex.c.dataset_id == dataset_id, ex.c.version_to > old, ex.c.version_to <= new
    )
    return sorted(set(conn.execute(sa.union(opened, ended)).scalars()))
