"""Compressed run payloads on SQLite: each database's dictionaries, its codec, and the SQL that
reads compressed columns (see ``goldloop.domain.payload_codec``).

Runs' ``inputs``, ``outputs`` and ``extra`` may hold a zstd frame (a BLOB) instead of JSON text.
Every read decodes it transparently: the engine's JSON loader (``database.create_engine``) and
the lean trace reader (``trace_rows``) call ``decode``; SQL that looks inside these columns
(filters, statistics) wraps them in ``readable(col)``, which decompresses BLOBs with the
``goldloop_payload`` function registered on every SQLite connection and leaves text untouched.
PostgreSQL never stores frames: its TOAST compresses these columns (lz4, migration 0028).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import zstandard
from sqlalchemy.engine import Connection, Engine

from goldloop.domain import payload_codec
from goldloop.domain.payload_codec import PayloadCodec
from goldloop.store.schema import payload_dictionaries, runs

COMPRESSED_COLUMNS = ("inputs", "outputs", "extra")
SQL_FUNCTION = "goldloop_payload"
CONTAINS_FUNCTION = "goldloop_payload_contains"

log = logging.getLogger("goldloop.store")

_codecs: weakref.WeakKeyDictionary[Engine, PayloadCodec] = weakref.WeakKeyDictionary()


def attach(engine: Engine) -> PayloadCodec:
    """Give a SQLite engine its codec (``create_engine`` calls this once)."""

    def load(dict_id: int) -> bytes | None:
        query = sa.select(payload_dictionaries.c.data).where(payload_dictionaries.c.id == dict_id)
        with engine.connect() as conn:
            data = conn.execute(query).scalar()
        return None if data is None else bytes(data)

    codec = PayloadCodec(load)
    _codecs[engine] = codec
    return codec


def codec(engine: Engine) -> PayloadCodec | None:
    """The engine's codec; None on PostgreSQL."""
    return _codecs.get(engine)


def functions(codec: PayloadCodec) -> list[tuple[str, int, Any]]:
    """The SQLite functions (name, arguments, function) registered on every connection:

    - ``goldloop_payload(value)``: a frame's JSON text, other values as they are;
    - ``goldloop_payload_contains(value, needle)``: 1 when the JSON text holds ``needle``
      (already lowercased) ignoring ASCII case, else 0. The same match as the text filter's
      ``lower(value) LIKE '%needle%'`` on text (SQLite's ``lower`` and ``LIKE`` fold ASCII
      only, as ``bytes.lower`` does; a UTF-8 substring is a byte substring), without making a
      string of the document for SQLite to lower and scan again."""

    def goldloop_payload(value: Any) -> Any:
        if type(value) is bytes and payload_codec.is_frame(value):
            return codec.decompress(value).decode()
        return value

    def goldloop_payload_contains(value: Any, needle: Any) -> int:
        if value is None or needle is None:
            return 0
        if type(value) is bytes and payload_codec.is_frame(value):
            data = codec.decompress(value)
        else:
            data = value.encode() if isinstance(value, str) else str(value).encode()
        return int(str(needle).encode().lower() in data.lower())

    return [(SQL_FUNCTION, 1, goldloop_payload), (CONTAINS_FUNCTION, 2, goldloop_payload_contains)]


def readable(col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``col`` as JSON text for SQL on SQLite: BLOBs (frames) decompressed, text as it is (no
    function call for it)."""
    return sa.case(
        (sa.func.typeof(col) == "blob", sa.func.goldloop_payload(col)),
        else_=col,
    )


def contains(col: sa.ColumnElement[Any], needle: str) -> sa.ColumnElement[bool]:
    """Whether a compressed document holds ``needle`` (lowercased), ignoring ASCII case."""
    return sa.func.goldloop_payload_contains(col, needle) == 1


def compress_values(conn: Connection, values: list[list[Any]], positions: Sequence[int]) -> None:
    """On SQLite, the encoded JSON documents at ``positions`` of each row of parameters replaced
    by frames where the codec compresses them (in place), always with the database's newest
    dictionary (``_newest_in_use``: a retrained one is picked up by the next write, and a
    dictionary ``goldloop payloads retrain --recompress`` drops is never named again). Frames
    already there (compressed by an ingest worker process) are kept when they name it, else
    rewritten onto it."""
    found = codec(conn.engine)
    if found is None or found.current is None or not found.enabled:
        return
    if not _newest_in_use(conn, found):
        return  # the documents stay text
    current = found.current
    for row in values:
        for i in positions:
            value = row[i]
            if type(value) is bytes and payload_codec.frame_dictionary(value) != current:
                text = found.try_decompress(value)
                if text is not None:
                    row[i] = found.compress(text.decode())
    compress_rows(found, values, positions)


def _newest_in_use(conn: Connection, found: PayloadCodec) -> bool:
    """Make the codec compress with the newest stored dictionary, read inside the caller's
    write transaction (so no write committed after a newer dictionary can name an older one);
    False when it cannot be used (then nothing is compressed)."""
    top = conn.exec_driver_sql("SELECT max(id) FROM payload_dictionaries").scalar()
    if top is not None and int(top) == found.current:
        return True
    stored = newest(conn)
    return stored is not None and use_dictionary(found, stored) and found.current == stored[0]


def use_dictionary(codec: PayloadCodec, stored: tuple[int, bytes]) -> bool:
    """Make ``codec`` compress with this stored dictionary (id, bytes); False, logged, when
    the dictionary is damaged (frames naming it still read what they can)."""
    try:
        codec.use(*stored)
    except (ValueError, zstandard.ZstdError) as exc:
        log.error("payload dictionary %d is damaged, not compressing with it: %s", stored[0], exc)
        return False
    return True


def compress_rows(found: PayloadCodec, values: list[list[Any]], positions: Sequence[int]) -> None:
    """``compress_values`` with a given codec, without a database (ingest worker processes)."""
    compress = found.compress
    for row in values:
        for i in positions:
            value = row[i]
            if type(value) is str:
                row[i] = compress(value)


# -- the dictionaries -----------------------------------------------------------------------------
def newest(conn: Connection) -> tuple[int, bytes] | None:
    query = (
        sa.select(payload_dictionaries.c.id, payload_dictionaries.c.data)
        .order_by(payload_dictionaries.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else (int(row.id), bytes(row.data))


def enough_runs(conn: Connection, n: int) -> bool:
    """Whether the database holds at least ``n`` runs (reads at most ``n`` index entries)."""
    some = sa.select(runs.c.pk).limit(n).subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(some)).scalar_one()) >= n


def samples(conn: Connection, n_runs: int) -> list[bytes]:
    """The large JSON documents of the newest ``n_runs`` runs, as text, for training."""
    found = codec(conn.engine)
    cols = [runs.c[name] for name in COMPRESSED_COLUMNS]
    query = sa.select(*(sa.cast(c, sa.LargeBinary) for c in cols))
    query = query.order_by(runs.c.pk.desc()).limit(n_runs)
    out: list[bytes] = []
    for row in conn.execute(query):
        for value in row:
            if value is None:
                continue
            data = bytes(value)
            if payload_codec.is_frame(data):
                if found is None:
                    continue
                data = found.decompress(data)
            if len(data) >= payload_codec.MIN_BYTES:
                out.append(data)
    return out


def store(conn: Connection, dictionary: bytes, n_samples: int, now: int) -> tuple[int, bytes]:
    """Add a trained dictionary under the next free id (inside the caller's write transaction,
    so two processes never take the same id); returns the id and the dictionary as stored."""
    top = conn.execute(sa.select(sa.func.max(payload_dictionaries.c.id))).scalar()
    dict_id = payload_codec.FIRST_ID if top is None else int(top) + 1
    data = payload_codec.with_id(dictionary, dict_id)
    conn.execute(
        sa.insert(payload_dictionaries).values(
            id=dict_id, data=data, samples=n_samples, created_at=now
        )
    )
    return dict_id, data
