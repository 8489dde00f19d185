"""The lean read path for trace trees: the runs of one trace as plain rows, from the driver.

A trace can hold 10,000 runs. Read through SQLAlchemy's result machinery, building a ``Row`` and
calling the JSON processor for every document of every run cost more than SQLite reading the
rows. This path runs one precompiled SELECT on the DBAPI cursor of the caller's connection, reads
only the columns a run view needs (each column read is a Python object per run: no ``pk``,
``workspace_id``, timestamps, and no ``trace_id``, which is the one asked for), and decodes the
JSON documents with orjson, once each. PostgreSQL's driver returns JSONB already decoded (with
the engine's orjson loader).

Rows come back in ``columns(light)`` order: ``TRACE_COLUMNS``, then ``HEAVY_COLUMNS``
unless ``light``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.engine import Connection

from goldloop.store import payload_store
from goldloop.store.schema import runs

TRACE_COLUMNS = (
    "id",
    "parent_id",
    "project_id",
    "seq",
    "is_root",
    "name",
    "kind",
    "status",
    "start_time",
    "end_time",
    "latency_us",
    "error",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "session_id",
    "user_id",
    "tags",
    "metadata",
    "reference_example_id",
)
HEAVY_COLUMNS = ("inputs", "outputs", "extra")
_DIALECTS = {
    "sqlite": sqlite.dialect(),
    "postgresql": psycopg.dialect(paramstyle="format"),  # type: ignore[no-untyped-call]
}


def columns(light: bool) -> tuple[str, ...]:
    return TRACE_COLUMNS if light else TRACE_COLUMNS + HEAVY_COLUMNS


def _json_positions(names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(names) if isinstance(runs.c[name].type, sa.JSON))


def _compile(light: bool, dialect: Any) -> str:
    query = sa.select(*(runs.c[name] for name in columns(light))).where(
        runs.c.workspace_id == sa.bindparam("workspace_id"),
        runs.c.trace_id == sa.bindparam("trace_id"),
    )
    return str(query.compile(dialect=dialect))  # placeholders in order: workspace, trace


# (dialect name, light) -> (SQL with positional placeholders, positions of the JSON columns)
_QUERIES = {
    (name, light): (_compile(light, dialect), _json_positions(columns(light)))
    for name, dialect in _DIALECTS.items()
    for light in (True, False)
}


def trace_rows(
    conn: Connection, workspace_id: str, trace_id: str, *, light: bool
) -> list[Sequence[Any]]:
    """The runs of a trace, unordered, each a sequence of ``columns(light)`` values."""
    dialect = conn.dialect.name
    sql, json_at = _QUERIES[(dialect, light)]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, (workspace_id, trace_id))
        fetched = cursor.fetchall()
    finally:
        cursor.close()
    if dialect != "sqlite":
        return list(fetched)
    # SQLite returns a JSON document as text, or already as a number: a column declared JSON has
    # NUMERIC affinity, so the document ``5`` is stored as the integer 5 (see database.py).
    # The large documents may be zstd frames (payload_store): decompressed here.
    rows: list[Sequence[Any]] = []
    loads = orjson.loads
    codec = payload_store.codec(conn.engine)
    for row in fetched:
        values = list(row)
        for i in json_at:
            value = values[i]
            if type(value) is str:
                values[i] = loads(value)
            elif type(value) is bytes and codec is not None:
                values[i] = loads(codec.decompress(value))
        rows.append(values)
    return rows
