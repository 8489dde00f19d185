"""``POST /datasets/upload``: a dataset made from a CSV file, one example per row, in one
version. The file is checked in full before anything is written."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from goldloop.domain.errors import InvalidInput
from goldloop.domain.langsmith import csv_upload
from goldloop.services import datasets as ds
from goldloop.services import examples
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.datasets import DatasetInfo
from goldloop.services.examples import MAX_EXAMPLES_PER_REQUEST, ExampleIn

TEXT_FIELDS = ("name", "description", "data_type", "id")


def _one(fields: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = [v for v in fields.get(name, ()) if v != ""]
    if len(values) > 1:
        raise InvalidInput(
            f"form field {name!r} is given {len(values)} times", details={"field": name}
        )
    return values[0] if values else None


def upload(
    ctx: ServiceContext,
    who: Principal,
    fields: Mapping[str, Sequence[str]],
    file: bytes | None,
) -> DatasetInfo:
    """``fields``: the text form fields (``input_keys`` and ``output_keys`` repeated, one per
    column); ``file``: the CSV bytes. Without a ``name`` the dataset is named ``csv-<id>``."""
    if file is None:
        raise InvalidInput(
            "the upload needs a 'file' part holding the CSV", details={"field": "file"}
        )
    for name in TEXT_FIELDS:
        _one(fields, name)
    rows = csv_upload.parse(
        file, list(fields.get("input_keys", ())), list(fields.get("output_keys", ()))
    )
    if len(rows) > MAX_EXAMPLES_PER_REQUEST:
        raise InvalidInput(
            f"the CSV file has {len(rows)} rows; at most {MAX_EXAMPLES_PER_REQUEST} per upload",
            details={"field": "file"},
        )
    name = _one(fields, "name") or f"csv-{_one(fields, 'id') or uuid.uuid4()}"
    info = ds.create(
        ctx,
        who,
        name,
        description=_one(fields, "description"),
        data_type=_one(fields, "data_type") or "kv",
    )
    items = [ExampleIn(inputs=r.inputs, outputs=r.outputs) for r in rows]
    try:
        examples.add(ctx, who, info.row.id, items, message="uploaded from CSV")
    except Exception:
        ds.delete(ctx, who, info.row.id)  # all or nothing: no empty dataset left behind
        raise
    return ds.get(ctx, who, info.row.id)
