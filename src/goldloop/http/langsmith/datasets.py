"""Datasets, versions, tags and splits: ``/datasets``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from goldloop.domain import multipart
from goldloop.domain.clock import to_iso
from goldloop.domain.errors import InvalidInput
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.http.langsmith import params
from goldloop.http.langsmith.body import json_object, raw_body
from goldloop.services.datasets import DatasetInfo
from goldloop.services.langsmith import csv_upload, examples
from goldloop.services.langsmith import datasets as svc

router = APIRouter()


def dataset_json(info: DatasetInfo) -> dict[str, Any]:
    row = info.row
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "data_type": row.data_type,
        "created_at": to_iso(row.created_at),
        "modified_at": to_iso(row.updated_at),
        "example_count": info.example_count,
        "inputs_schema_definition": row.inputs_schema,
        "outputs_schema_definition": row.outputs_schema,
        "transformations": None,
        "metadata": row.metadata,
    }


@router.post("/datasets")
async def create_dataset(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes)
    return dataset_json(await run_in_threadpool(svc.create, ctx, who, body))


@router.post("/datasets/upload")
async def upload_csv(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    """``client.upload_csv``: multipart form fields and a ``file`` part holding the CSV."""
    body = await raw_body(request, ctx.settings.max_request_bytes)
    try:
        parts = multipart.parse(body, request.headers.get("content-type", ""))
    except multipart.MultipartError as exc:
        raise InvalidInput(f"invalid multipart body: {exc}") from None
    fields: dict[str, list[str]] = {}
    file: bytes | None = None
    for part in parts:
        if part.name == "file":
            file = part.data
            continue
        try:
            fields.setdefault(part.name, []).append(part.data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(
                f"form field {part.name!r} is not UTF-8 text", details={"field": part.name}
            ) from None
    info = await run_in_threadpool(csv_upload.upload, ctx, who, fields, file)
    return dataset_json(info)


@router.post("/v1/platform/datasets/examples/delete")
@router.post("/platform/datasets/examples/delete")  # the SDK's path when its URL ends in /v1
async def delete_examples(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    """``client.delete_examples(ids, hard_delete=...)``: hard erases them from every version."""
    body = await json_object(request, ctx.settings.max_request_bytes)
    count = await run_in_threadpool(examples.delete_request, ctx, who, body)
    return {"count": count}


@router.get("/datasets")
def list_datasets(request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    offset, limit = params.page(request)
    found = svc.list_datasets(
        ctx,
        who,
        ids=params.many(request, "id"),
        name=params.one(request, "name"),
        name_contains=params.one(request, "name_contains"),
        offset=offset,
        limit=limit,
        data_type=params.one(request, "data_type"),
        metadata=params.one(request, "metadata"),
    )
    return [dataset_json(d) for d in found]


@router.get("/datasets/{dataset_id}")
def read_dataset(dataset_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    return dataset_json(svc.get(ctx, who, dataset_id))


@router.patch("/datasets/{dataset_id}")
async def update_dataset(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes)
    return dataset_json(await run_in_threadpool(svc.update, ctx, who, dataset_id, body))


@router.delete("/datasets/{dataset_id}")
def delete_dataset(dataset_id: str, ctx: Ctx, who: Admin) -> dict[str, Any]:
    svc.delete(ctx, who, dataset_id)
    return {}


@router.get("/datasets/{dataset_id}/versions")
def list_versions(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> list[dict[str, Any]]:
    offset, limit = params.page(request)
    search = params.one(request, "search")
    return svc.list_versions(ctx, who, dataset_id, search=search, offset=offset, limit=limit)


@router.get("/datasets/{dataset_id}/version")
def read_version(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    as_of, tag = params.one(request, "as_of"), params.one(request, "tag")
    return svc.read_version(ctx, who, dataset_id, as_of=as_of, tag=tag)


@router.get("/datasets/{dataset_id}/versions/diff")
def diff_versions(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    old, new = params.one(request, "from_version"), params.one(request, "to_version")
    if old is None or new is None:
        raise InvalidInput("from_version and to_version are required")
    return svc.diff(ctx, who, dataset_id, old, new)


@router.put("/datasets/{dataset_id}/tags")
async def update_tag(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes)
    await run_in_threadpool(svc.set_tag, ctx, who, dataset_id, body)
    return {}


@router.get("/datasets/{dataset_id}/splits")
def list_splits(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> list[str]:
    return svc.list_splits(ctx, who, dataset_id, params.one(request, "as_of"))


@router.put("/datasets/{dataset_id}/splits")
async def update_splits(dataset_id: str, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    body = await json_object(request, ctx.settings.max_request_bytes)
    await run_in_threadpool(svc.update_splits, ctx, who, dataset_id, body)
    return {}
