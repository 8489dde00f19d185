"""Dataset examples in open file formats: JSONL, CSV and Parquet, both ways.

One record per example: ``id``, ``inputs``, ``outputs``, ``metadata``, ``splits``, ``lineage``.

- JSONL: one JSON object per line with those keys.
- CSV: a header row ``id,inputs,outputs,metadata,splits,lineage``; each cell holds the JSON text
  of the value (empty = null). On import, flat columns ``inputs.<name>``, ``outputs.<name>`` and
  ``metadata.<name>`` (plain text cells) build those objects too, for hand-made spreadsheets.
- Parquet (needs ``pyarrow``, extra ``goldloop[parquet]``): columns ``id`` string, ``inputs``
  string (JSON), ``outputs`` string (JSON, nullable), ``metadata`` string (JSON, nullable),
  ``splits`` list<string> (nullable), ``lineage`` string (JSON, nullable); schema metadata
  ``goldloop.format = dataset-examples/1``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import orjson

from goldloop.domain.errors import InvalidInput

FORMATS = ("jsonl", "csv", "parquet")
FIELDS = ("id", "inputs", "outputs", "metadata", "splits", "lineage")
JSON_FIELDS = ("inputs", "outputs", "metadata", "lineage")
FORMAT_TAG = b"dataset-examples/1"
MEDIA_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
Record = dict[str, Any]


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", details={"field": "format"}
        )
    return fmt


def format_for_media_type(media_type: str | None) -> str | None:
    base = (media_type or "").split(";")[0].strip().lower()
    return {
        "application/x-ndjson": "jsonl",
        "application/jsonl": "jsonl",
        "application/json-lines": "jsonl",
        "text/csv": "csv",
        "application/vnd.apache.parquet": "parquet",
        "application/x-parquet": "parquet",
    }.get(base)


def format_for_filename(name: str) -> str | None:
    lowered = name.lower()
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".csv", "csv")):
        if lowered.endswith(ext):
            return fmt
    return "parquet" if lowered.endswith((".parquet", ".pq")) else None


def _bad(line: str, message: str) -> InvalidInput:
    return InvalidInput(f"{line}: {message}", details={"line": line})


def _record(obj: Any, where: str) -> Record:
    if not isinstance(obj, dict):
        raise _bad(where, "each record must be a JSON object")
    if obj.get("inputs") is None:
        raise _bad(where, "inputs are required")
    return {f: obj.get(f) for f in FIELDS}


# --- encode --------------------------------------------------------------------------------


def encode(records: Iterable[Record], fmt: str, *, meta: dict[str, str] | None = None) -> bytes:
    if fmt == "jsonl":
        return b"".join(orjson.dumps({f: r.get(f) for f in FIELDS}) + b"\n" for r in records)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        for r in records:
            writer.writerow(
                [r.get("id") or ""]
                + ["" if r.get(f) is None else orjson.dumps(r[f]).decode() for f in FIELDS[1:]]
            )
        return out.getvalue().encode()
    return _encode_parquet(records, meta or {})


def load_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise InvalidInput(
            "Parquet needs pyarrow on the server: pip install 'goldloop[parquet]'",
            details={"field": "format"},
        ) from None
    return pyarrow


def _dump(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _encode_parquet(records: Iterable[Record], meta: dict[str, str]) -> bytes:
    pa = load_pyarrow()
    rows = list(records)
    schema = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("inputs", pa.string(), nullable=False),
            pa.field("outputs", pa.string()),
            pa.field("metadata", pa.string()),
            pa.field("splits", pa.list_(pa.string())),
            pa.field("lineage", pa.string()),
        ],
        metadata={b"goldloop.format": FORMAT_TAG}
        | {f"goldloop.{k}".encode(): v.encode() for k, v in meta.items()},
    )
    columns = {
        "id": [r["id"] for r in rows],
        "inputs": [_dump(r["inputs"]) for r in rows],
        "outputs": [_dump(r.get("outputs")) for r in rows],
        "metadata": [_dump(r.get("metadata")) for r in rows],
        "splits": [r.get("splits") for r in rows],
        "lineage": [_dump(r.get("lineage")) for r in rows],
    }
    table = pa.table(columns, schema=schema)
    sink = io.BytesIO()
    pa.parquet.write_table(table, sink, compression="zstd")
    return sink.getvalue()


# --- decode --------------------------------------------------------------------------------


def decode(data: bytes, fmt: str) -> list[Record]:
    check_format(fmt)
    if fmt == "jsonl":
        return _decode_jsonl(data)
    if fmt == "csv":
        return _decode_csv(data)
    return _decode_parquet(data)


def _decode_jsonl(data: bytes) -> list[Record]:
    records = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _bad(f"line {n}", f"not valid JSON ({exc})") from None
        records.append(_record(obj, f"line {n}"))
    return records


def _cell_json(text: str, where: str, column: str) -> Any:
    if text == "":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _bad(where, f"column {column!r} must hold JSON (a string needs quotes)") from None


def _decode_csv(data: bytes) -> list[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("CSV must be UTF-8", details={"field": "body"}) from None
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    flat = {
        c for c in columns if c.split(".", 1)[0] in ("inputs", "outputs", "metadata") and "." in c
    }
    if "inputs" not in columns and not any(c.startswith("inputs.") for c in flat):
        raise InvalidInput(
            "CSV needs an 'inputs' column (JSON) or 'inputs.<name>' columns",
            details={"field": "body"},
        )
    records = []
    for n, row in enumerate(reader, start=2):
        where = f"line {n}"
        obj: Record = {"id": row.get("id") or None}
        for column in ("inputs", "outputs", "metadata", "lineage"):
            if column in row:
                obj[column] = _cell_json(row[column] or "", where, column)
        splits = row.get("splits") or ""
        if splits:
            obj["splits"] = (
                _cell_json(splits, where, "splits")
                if splits.lstrip().startswith("[")
                else [s.strip() for s in splits.split(",") if s.strip()]
            )
        for column in sorted(flat):
            group, name = column.split(".", 1)
            if obj.get(group) is not None and not isinstance(obj[group], dict):
                raise _bad(where, f"{group} is not an object, so {column!r} cannot go in it")
            obj.setdefault(group, None)
            obj[group] = {**(obj[group] or {}), name: row[column]}
        records.append(_record(obj, where))
    return records


def _decode_parquet(data: bytes) -> list[Record]:
    pa = load_pyarrow()
    try:
        table = pa.parquet.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InvalidInput(
            f"not a readable Parquet file: {exc}", details={"field": "body"}
        ) from None
    if "inputs" not in table.column_names:
        raise InvalidInput("Parquet file needs an 'inputs' column", details={"field": "body"})
    records = []
    for n, row in enumerate(table.to_pylist()):
        where = f"row {n}"
        obj: Record = {"id": row.get("id"), "splits": row.get("splits")}
        for column in JSON_FIELDS:
            value = row.get(column)
            obj[column] = _cell_json(value, where, column) if isinstance(value, str) else value
        records.append(_record(obj, where))
    return records
