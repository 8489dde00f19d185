"""Feedback out in open formats: JSONL (one feedback per line, as the API shows it) and Parquet.

Parquet columns: ``id``, ``run_id``, ``trace_id``, ``key``, ``source`` string; ``score``
double (booleans as 0/1, with ``score_is_bool``); ``value``, ``correction``, ``source_info``
string (JSON text); ``comment`` string; ``created_at``, ``updated_at`` int64 µs since the epoch.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import InvalidInput
from goldloop.domain.example_formats import load_pyarrow
from goldloop.services import feedback as svc
from goldloop.services.context import Principal, ServiceContext
from goldloop.store.feedback import FeedbackFilter, FeedbackRow

FORMATS = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


def _rows(ctx: ServiceContext, who: Principal, where: FeedbackFilter) -> Iterator[FeedbackRow]:
    cursor: str | None = None
    while True:
        page = svc.list_feedback(ctx, who, where, limit=svc.MAX_LIMIT, cursor=cursor)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return


def record(row: FeedbackRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "run_id": row.run_id,
        "trace_id": row.trace_id,
        "key": row.key,
        "score": row.score,
        "value": row.value,
        "comment": row.comment,
        "correction": row.correction,
        "source": row.source,
        "source_info": row.source_info,
        "created_at": row.created_at,
        "created_at_iso": to_iso(row.created_at),
        "updated_at": row.updated_at,
        "updated_at_iso": to_iso(row.updated_at),
    }


def export(
    ctx: ServiceContext, who: Principal, where: FeedbackFilter, fmt: str
) -> tuple[int, bytes, str]:
    """(count, file bytes, media type) of the feedback matching ``where``, newest first."""
    if fmt not in FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", details={"field": "format"}
        )
    rows = list(_rows(ctx, who, where))
    if fmt == "jsonl":
        data = b"".join(orjson.dumps(record(r)) + b"\n" for r in rows)
    else:
        data = _parquet(rows)
    return len(rows), data, FORMATS[fmt]


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _parquet(rows: list[FeedbackRow]) -> bytes:
    pa = load_pyarrow()
    schema = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("run_id", pa.string()),
            pa.field("trace_id", pa.string()),
            pa.field("key", pa.string(), nullable=False),
            pa.field("score", pa.float64()),
            pa.field("score_is_bool", pa.bool_(), nullable=False),
            pa.field("value", pa.string()),
            pa.field("comment", pa.string()),
            pa.field("correction", pa.string()),
            pa.field("source", pa.string(), nullable=False),
            pa.field("source_info", pa.string()),
            pa.field("created_at", pa.int64(), nullable=False),
            pa.field("updated_at", pa.int64(), nullable=False),
        ],
        metadata={b"goldloop.format": b"feedback/1"},
    )
    columns = {
        "id": [r.id for r in rows],
        "run_id": [r.run_id for r in rows],
        "trace_id": [r.trace_id for r in rows],
        "key": [r.key for r in rows],
        "score": [None if r.score is None else float(r.score) for r in rows],
        "score_is_bool": [isinstance(r.score, bool) for r in rows],
        "value": [_json(r.value) for r in rows],
        "comment": [r.comment for r in rows],
        "correction": [_json(r.correction) for r in rows],
        "source": [r.source for r in rows],
        "source_info": [_json(r.source_info) for r in rows],
        "created_at": [r.created_at for r in rows],
        "updated_at": [r.updated_at for r in rows],
    }
    sink = io.BytesIO()
    pa.parquet.write_table(pa.table(columns, schema=schema), sink, compression="zstd")
    return sink.getvalue()
