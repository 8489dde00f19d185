"""Attachment rows: which blob a run or an example holds under a name, per workspace."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from goldloop.store.schema import attachment_orphans as orphans
from goldloop.store.schema import attachments as at
from goldloop.store.schema import datasets

CHUNK = 500


def example_owner(dataset_id: str, example_id: str) -> str:
    """The owner id of an example's attachments: example ids are unique per dataset only."""
    return f"{dataset_id}:{example_id}"


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    owner_kind: str  # "run" | "example"
    owner_id: str
    name: str
    sha256: str
    size: int
    mime_type: str
    created_at: int


def _row(r: sa.Row[Any]) -> AttachmentRow:
    m = r._mapping
    return AttachmentRow(
        owner_kind=m["owner_kind"],
        owner_id=m["owner_id"],
        name=m["name"],
        sha256=m["sha256"],
        size=int(m["size"]),
        mime_type=m["mime_type"],
        created_at=int(m["created_at"]),
    )


def _owner(workspace_id: str, kind: str, owner_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        at.c.workspace_id == workspace_id, at.c.owner_kind == kind, at.c.owner_id == owner_id
    )


def _forget(conn: Connection, where: sa.ColumnElement[bool]) -> int:
    """Delete the rows ``where`` selects; their blobs become sweep candidates."""
    digests = list(conn.execute(sa.select(at.c.sha256).where(where).distinct()).scalars())
    if not digests:
        return 0
    removed = int(conn.execute(sa.delete(at).where(where)).rowcount)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(digests), CHUNK):
        chunk = digests[start : start + CHUNK]
        statement = insert(orphans).values([{"sha256": d} for d in chunk])
        conn.execute(statement.on_conflict_do_nothing(index_elements=["sha256"]))
    return removed


def put(conn: Connection, workspace_id: str, rows: Sequence[AttachmentRow]) -> None:
    """Insert or replace each row (an owner's name is unique)."""
    for row in rows:
        _forget(
            conn, sa.and_(_owner(workspace_id, row.owner_kind, row.owner_id), at.c.name == row.name)
        )
        conn.execute(
            sa.insert(at).values(
                workspace_id=workspace_id,
                owner_kind=row.owner_kind,
                owner_id=row.owner_id,
                name=row.name,
                sha256=row.sha256,
                size=row.size,
                mime_type=row.mime_type,
                created_at=row.created_at,
            )
        )


def of_owners(
    conn: Connection, workspace_id: str, kind: str, owner_ids: Sequence[str]
) -> dict[str, list[AttachmentRow]]:
    """Each owner's attachments, by name; owners without any are absent."""
    out: dict[str, list[AttachmentRow]] = {}
    unique = list(dict.fromkeys(owner_ids))
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        query = (
            sa.select(at)
            .where(
                at.c.workspace_id == workspace_id, at.c.owner_kind == kind, at.c.owner_id.in_(chunk)
            )
            .order_by(at.c.owner_id, at.c.name)
        )
        for r in conn.execute(query):
            row = _row(r)
            out.setdefault(row.owner_id, []).append(row)
    return out


def remove(
    conn: Connection, workspace_id: str, kind: str, owner_id: str, names: Sequence[str]
) -> None:
    if names:
        _forget(conn, sa.and_(_owner(workspace_id, kind, owner_id), at.c.name.in_(list(names))))


def by_digest(conn: Connection, workspace_id: str, digest: str) -> AttachmentRow | None:
    """One of the workspace's rows naming this blob, or None: the workspace cannot read it."""
    r = conn.execute(
        sa.select(at).where(at.c.workspace_id == workspace_id, at.c.sha256 == digest).limit(1)
    ).first()
    return None if r is None else _row(r)


def usage(conn: Connection, workspace_id: str) -> tuple[int, int, int]:
    """(attachment rows, distinct blobs, bytes of those distinct blobs) of one workspace."""
    rows = conn.execute(
        sa.select(sa.func.count()).select_from(at).where(at.c.workspace_id == workspace_id)
    ).scalar_one()
    blobs = (
        sa.select(at.c.sha256, sa.func.max(at.c.size).label("size"))
        .where(at.c.workspace_id == workspace_id)
        .group_by(at.c.sha256)
        .subquery()
    )
    count, size = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(blobs.c.size), 0))
    ).one()
    return int(rows), int(count), int(size)


def remove_owners(conn: Connection, workspace_id: str, kind: str, owner_ids: Sequence[str]) -> int:
    """Forget every attachment of these owners (their runs or examples are being deleted)."""
    removed = 0
    unique = list(dict.fromkeys(owner_ids))
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        removed += _forget(
            conn,
            sa.and_(
                at.c.workspace_id == workspace_id, at.c.owner_kind == kind, at.c.owner_id.in_(chunk)
            ),
        )
    return removed


def remove_examples(conn: Connection, keys: Iterable[tuple[str, str]]) -> int:
    """Forget the attachments of these (dataset id, example id) examples, in the workspace
    that owns each dataset."""
    by_dataset: dict[str, list[str]] = {}
    for dataset_id, example_id in keys:
        by_dataset.setdefault(dataset_id, []).append(example_owner(dataset_id, example_id))
    removed = 0
    for dataset_id, owners in by_dataset.items():
        ws = conn.execute(
            sa.select(datasets.c.workspace_id).where(datasets.c.id == dataset_id)
        ).scalar()
        if ws is not None:
            removed += remove_owners(conn, str(ws), "example", owners)
    return removed


def remove_dataset(conn: Connection, workspace_id: str, dataset_id: str) -> int:
    """Forget the attachments of every example of a dataset (it is being deleted)."""
    prefix = example_owner(dataset_id, "")
    return _forget(
        conn,
        sa.and_(
            at.c.workspace_id == workspace_id,
            at.c.owner_kind == "example",
            at.c.owner_id.startswith(prefix, autoescape=True),
        ),
    )


def referenced(conn: Connection, digests: Sequence[str]) -> set[str]:
    """The digests some attachment row (of any workspace) still names."""
    found: set[str] = set()
    for start in range(0, len(digests), CHUNK):
        chunk = list(digests[start : start + CHUNK])
        found.update(
            conn.execute(sa.select(at.c.sha256).where(at.c.sha256.in_(chunk)).distinct()).scalars()
        )
    return found


def orphan_page(conn: Connection, after: str, limit: int) -> list[str]:
    """Up to ``limit`` sweep candidates after ``after``, in digest order."""
    query = (
        sa.select(orphans.c.sha256)
        .where(orphans.c.sha256 > after)
        .order_by(orphans.c.sha256)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def drop_orphans(conn: Connection, digests: Sequence[str]) -> None:
    """These candidates are settled: their file is gone, or a row names them again."""
    for start in range(0, len(digests), CHUNK):
        chunk = list(digests[start : start + CHUNK])
        conn.execute(sa.delete(orphans).where(orphans.c.sha256.in_(chunk)))
