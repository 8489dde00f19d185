"""LangSmith's multipart examples endpoints: create, update and upsert examples with attachments.

The examples themselves go through the same code as the JSON endpoints
(``services.langsmith.examples``), so a multipart example is the same versioned dataset example;
its attachments go to ``services.attachments``. Every attachment is checked (name, size) before
anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from goldloop.domain.errors import InvalidInput
from goldloop.domain.langsmith.example_parts import ExampleUpload
from goldloop.services import attachments, datasets, run_queries
from goldloop.services.attachments import Upload
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.langsmith import examples as ls_examples

BODY_FIELDS = ("metadata", "split", "source_run_id", "created_at")
UPDATE_FIELDS = ("metadata", "split")


def _uploads(upload: ExampleUpload) -> list[Upload]:
    return [Upload(p.name, p.content_type, p.data) for p in upload.attachments]


def _source_io(ctx: ServiceContext, who: Principal, upload: ExampleUpload) -> dict[str, Any]:
    """Inputs and outputs taken from the source run (``use_source_run_io``) when not sent."""
    run_id = upload.body.get("source_run_id")
    if not upload.body.get("use_source_run_io") or not run_id:
        return {}
    view = run_queries.get_run(ctx, who, str(run_id))
    return {"inputs": view.get("inputs") or {}, "outputs": view.get("outputs")}


def _copy_names(upload: ExampleUpload) -> tuple[bool, list[str] | None]:
    """Whether to copy the source run's attachments, and which (None: all of them)."""
    if not upload.body.get("source_run_id"):
        return False, None
    if upload.body.get("use_source_run_io"):
        return True, None
    names = upload.body.get("use_source_run_attachments")
    if isinstance(names, list) and names:
        return True, [str(n) for n in names]
    return False, None


def create(
    ctx: ServiceContext, who: Principal, dataset_id: str | None, uploads: Sequence[ExampleUpload]
) -> dict[str, Any]:
    """``POST .../datasets/{id}/examples`` (``dataset_id`` given) or ``.../examples/multipart``
    (each example names its ``dataset_id``): ``{"example_ids": [...], "count": N}``."""
    if not uploads:
        raise InvalidInput("the multipart body holds no example")
    for upload in uploads:
        attachments.check(ctx, upload.id, _uploads(upload))
    bodies = []
    for upload in uploads:
        target = dataset_id or upload.body.get("dataset_id")
        if not target:
            raise InvalidInput(f"example {upload.id}: 'dataset_id' is required")
        body = {k: upload.body[k] for k in BODY_FIELDS if k in upload.body}
        body.update(_source_io(ctx, who, upload))
        body.update({k: v for k, v in upload.fields.items() if k in ("inputs", "outputs")})
        bodies.append({**body, "id": upload.id, "dataset_id": str(target)})
    created = ls_examples.create_many(ctx, who, bodies)
    owners = [attachments.example_owner(str(e["dataset_id"]), str(e["id"])) for e in created]
    files = {owner: _uploads(u) for owner, u in zip(owners, uploads, strict=True)}
    attachments.attach(ctx, who, attachments.EXAMPLE, files)
    for owner, upload in zip(owners, uploads, strict=True):
        copy, names = _copy_names(upload)
        if copy:
            run_id = str(upload.body["source_run_id"])
            attachments.copy_from_run(ctx, who, run_id, owner, names)
    ids = [str(e["id"]) for e in created]
    return {"example_ids": ids, "count": len(ids)}


def update(
    ctx: ServiceContext, who: Principal, dataset_id: str, uploads: Sequence[ExampleUpload]
) -> dict[str, Any]:
    """``PATCH .../datasets/{id}/examples``: fields sent replace the stored ones; attachments are
    added (a name already held is replaced), and ``attachments_operations`` say which of the
    held ones stay (``retain``) or change name (``rename``)."""
    if not uploads:
        raise InvalidInput("the multipart body holds no example")
    for upload in uploads:
        attachments.check(ctx, upload.id, _uploads(upload))
    dataset = datasets.get(ctx, who, dataset_id).row.id
    for upload in uploads:
        body: dict[str, Any] = {k: upload.body[k] for k in UPDATE_FIELDS if k in upload.body}
        body.update({k: v for k, v in upload.fields.items() if k in ("inputs", "outputs")})
        ls_examples.update(ctx, who, upload.id, {**body, "dataset_id": dataset_id})
        operations = upload.fields.get("attachments_operations")
        if operations is not None or upload.attachments:
            owner = attachments.example_owner(dataset, upload.id)
            attachments.replace_on_update(ctx, who, owner, operations, _uploads(upload))
    ids = [u.id for u in uploads]
    return {"example_ids": ids, "count": len(ids)}
