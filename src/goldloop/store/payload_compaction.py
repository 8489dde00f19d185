"""The SQL of rewriting stored run payloads on SQLite (``goldloop payloads compact|retrain``; see
``goldloop.services.payload_maintenance``).

Rows are visited in ``pk`` order from a cursor, a bounded batch at a time, each batch read in
one snapshot and written back in one short write transaction. A value is replaced only if it is
still what was read (``UPDATE ... WHERE pk = ? AND col = ?``): a run merged or deleted in
between keeps what the other writer gave it. Values are read and written raw (text or BLOB),
without the JSON type's decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import zstandard
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from goldloop.domain import payload_codec
from goldloop.store.payload_store import COMPRESSED_COLUMNS
from goldloop.store.schema import payload_dictionaries, runs

# The longest zstd frame header: magic (4), descriptor (1), window (1), dictionary id (4),
# content size (8). Reading this much of a BLOB names its dictionary.
_HEADER_BYTES = 18
_RAW = sa.types.NullType()  # values as stored, without the JSON type's encoding or decoding


@dataclass(frozen=True)
class Change:
    """One stored value to replace: ``old`` (as read) becomes ``new`` in column ``column``."""

    pk: int
    column: str
    old: str | bytes
    new: str | bytes


def _raw(name: str) -> sa.ColumnElement[Any]:
    return sa.type_coerce(runs.c[name], _RAW)


def _is_blob(name: str) -> sa.ColumnElement[bool]:
    return sa.func.typeof(runs.c[name]) == "blob"


def _long_text(name: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        sa.func.typeof(runs.c[name]) == "text",
        sa.func.length(runs.c[name]) >= payload_codec.MIN_BYTES,
    )


def long_texts(conn: Connection, after_pk: int, limit: int) -> list[tuple[int, list[str | None]]]:
    """Up to ``limit`` runs after ``after_pk`` holding a payload left as text that is long
    enough to compress: (pk, [each payload column's text, or None when it is not one]).
    ``length`` counts characters, as ``PayloadCodec.compress`` does; a BLOB's type is read from
    the record header without loading the value."""
    query = (
        sa.select(runs.c.pk, *(_raw(c) for c in COMPRESSED_COLUMNS))
        .where(runs.c.pk > after_pk, sa.or_(*(_long_text(c) for c in COMPRESSED_COLUMNS)))
        .order_by(runs.c.pk)
        .limit(limit)
    )
    out: list[tuple[int, list[str | None]]] = []
    for row in conn.execute(query):
        texts = [
            v if type(v) is str and len(v) >= payload_codec.MIN_BYTES else None for v in row[1:]
        ]
        out.append((int(row[0]), texts))
    return out


def frame_dictionaries(
    conn: Connection, after_pk: int, limit: int
) -> list[tuple[int, list[int | None]]]:
    """Up to ``limit`` runs after ``after_pk`` holding a frame: (pk, [the dictionary id each
    payload column's frame names, or None when it holds no frame; -1 for a frame whose header
    does not parse]). Reads only the frames' headers."""
    heads = (
        sa.case((_is_blob(c), sa.func.substr(_raw(c), 1, _HEADER_BYTES)), else_=sa.null())
        for c in COMPRESSED_COLUMNS
    )
    query = (
        sa.select(runs.c.pk, *heads)
        .where(runs.c.pk > after_pk, sa.or_(*(_is_blob(c) for c in COMPRESSED_COLUMNS)))
        .order_by(runs.c.pk)
        .limit(limit)
    )
    out: list[tuple[int, list[int | None]]] = []
    for row in conn.execute(query):
        named: list[int | None] = []
        for head in row[1:]:
            if type(head) is not bytes or not payload_codec.is_frame(head):
                named.append(None)
                continue
            try:
                named.append(payload_codec.frame_dictionary(head))
            except zstandard.ZstdError:
                named.append(-1)
        out.append((int(row[0]), named))
    return out


def payloads(conn: Connection, pks: Sequence[int]) -> dict[int, list[str | bytes | None]]:
    """The payload columns of these runs as stored (text, BLOB or NULL), by pk."""
    if not pks:
        return {}
    query = sa.select(runs.c.pk, *(_raw(c) for c in COMPRESSED_COLUMNS)).where(
        runs.c.pk.in_(list(pks))
    )
    return {int(row[0]): list(row[1:]) for row in conn.execute(query)}


def _update(name: str) -> str:
    """``UPDATE runs SET name = ? WHERE pk = ? AND name = ?`` for the driver (new, pk, old)."""
    stmt = (
        sa.update(runs)
        .values({runs.c[name]: sa.bindparam("new", type_=_RAW)})
        .where(runs.c.pk == sa.bindparam("pk"), _raw(name) == sa.bindparam("old", type_=_RAW))
    )
    compiled = stmt.compile(dialect=sqlite.dialect())
    assert tuple(compiled.positiontup or ()) == ("new", "pk", "old")
    return str(compiled)


_UPDATES = {name: _update(name) for name in COMPRESSED_COLUMNS}


def newest_dictionary(conn: Connection) -> int | None:
    top = conn.execute(sa.select(sa.func.max(payload_dictionaries.c.id))).scalar()
    return None if top is None else int(top)


def replace(conn: Connection, changes: Sequence[Change], dict_id: int) -> list[Change] | None:
    """Apply the changes whose old value is still stored; returns those applied. None (nothing
    written) when ``dict_id``, the dictionary the new values were made with, is no longer the
    newest: another process retrained meanwhile, and every write must name the newest."""
    if newest_dictionary(conn) != dict_id:
        return None
    applied: list[Change] = []
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for change in changes:
            cursor.execute(_UPDATES[change.column], (change.new, change.pk, change.old))
            if cursor.rowcount == 1:
                applied.append(change)
    finally:
        cursor.close()
    return applied


def max_pk(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(runs.c.pk), 0))).scalar_one())


def dictionaries(conn: Connection) -> dict[int, int]:
    """Every stored dictionary's id and size in bytes."""
    d = payload_dictionaries.c
    query = sa.select(d.id, sa.func.length(d.data)).order_by(d.id)
    return {int(row[0]): int(row[1]) for row in conn.execute(query)}


def drop_dictionaries(conn: Connection, ids: Sequence[int]) -> int:
    """Delete these dictionaries, never the newest; their pages are zeroed as they are freed
    (``secure_delete``), so the text fragments they hold leave the database file once the WAL
    is checkpointed. Returns how many were deleted."""
    top = newest_dictionary(conn)
    doomed = [i for i in ids if i != top]
    if not doomed:
        return 0
    # per connection; SQLite builds differ in the default (Debian's is on): put it back after
    was = int(conn.exec_driver_sql("PRAGMA secure_delete").scalar_one())
    conn.exec_driver_sql("PRAGMA secure_delete = ON")
    try:
        d = payload_dictionaries.c
        return int(conn.execute(sa.delete(payload_dictionaries).where(d.id.in_(doomed))).rowcount)
    finally:
        conn.exec_driver_sql(f"PRAGMA secure_delete = {'ON' if was else 'OFF'}")


def free_bytes(conn: Connection) -> int:
    """Bytes of free pages in the database file (reused by new writes; VACUUM returns them)."""
    pages = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
    size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    return pages * size
