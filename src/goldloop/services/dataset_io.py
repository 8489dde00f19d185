"""Export a dataset version to JSONL, CSV or Parquet, and import such files as one version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from goldloop.domain import datasets as rules
from goldloop.domain import example_formats as formats
from goldloop.services import datasets as ds
from goldloop.services import examples
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import examples as example_store
from goldloop.store.examples import ExampleRow

PAGE = 1000


@dataclass(frozen=True)
class Exported:
    dataset_name: str
    version: int
    count: int
    data: bytes
    fmt: str

    @property
    def media_type(self) -> str:
        return formats.MEDIA_TYPES[self.fmt]

    @property
    def filename(self) -> str:
        return f"{self.dataset_name}-v{self.version}.{self.fmt}"


def _all_rows(conn: Connection, dataset_id: str, version: int) -> Iterator[ExampleRow]:
    after: str | None = None
    while True:
        page = example_store.list_page(conn, dataset_id, version, limit=PAGE, after_id=after)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].id


def export(
    ctx: ServiceContext, who: Principal, ref: str, fmt: str, as_of: str | None = None
) -> Exported:
    formats.check_format(fmt)
    selector = rules.parse_as_of(as_of)

    def read(conn: Connection) -> tuple[str, int, list[ExampleRow]]:
        row = ds.load(conn, who, ref)
        version = ds.resolve(conn, row, selector)
        return row.name, version, list(_all_rows(conn, row.id, version))

    name, version, rows = ctx.db.read(read)
    records = (
        {
            "id": r.id,
            "inputs": r.inputs,
            "outputs": r.outputs,
            "metadata": r.metadata,
            "splits": r.splits,
            "lineage": r.lineage,
        }
        for r in rows
    )
    data = formats.encode(records, fmt, meta={"dataset": name, "version": str(version)})
    return Exported(name, version, len(rows), data, fmt)


def import_file(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    data: bytes,
    fmt: str,
    *,
    message: str | None = None,
) -> examples.WriteResult:
    """Add the file's examples as one version. Examples with an id that exists are updated when
    different and left alone when equal, so importing the same file twice changes nothing."""
    records = formats.decode(data, fmt)
    items = [
        examples.ExampleIn(
            inputs=r["inputs"],
            outputs=r["outputs"],
            metadata=r["metadata"],
            splits=r["splits"],
            id=str(r["id"]) if r["id"] is not None else None,
            lineage=r["lineage"],
            source_run_id=(r["lineage"] or {}).get("run_id")
            if isinstance(r["lineage"], dict)
            else None,
        )
        for r in records
    ]
    return examples.add(ctx, who, ref, items, upsert=True, message=message)
