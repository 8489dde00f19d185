"""/api/v1/datasets: datasets, versions, tags and diffs. ``{dataset}`` is an id or a name."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import NotFound
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.services import datasets as svc

router = APIRouter(prefix="/datasets", tags=["datasets"])

DATA_TYPE_HELP = (
    "The LangSmith dataset type: kv, llm or chat (stored and returned; Goldloop evaluates all "
    "types alike)."
)
AS_OF_HELP = "A version number, a tag, or an ISO-8601 time; default: the newest version."


class DatasetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    inputs_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema every example's inputs must satisfy."
    )
    outputs_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema every example's reference outputs must satisfy."
    )
    data_type: Literal["kv", "llm", "chat"] = Field(default="kv", description=DATA_TYPE_HELP)
    metadata: dict[str, Any] | None = Field(
        default=None, description="Free-form attributes of the dataset (a JSON object)."
    )


class DatasetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    inputs_schema: dict[str, Any] | None = None
    outputs_schema: dict[str, Any] | None = None
    data_type: Literal["kv", "llm", "chat"] | None = Field(default=None, description=DATA_TYPE_HELP)
    metadata: dict[str, Any] | None = None


class DatasetOut(BaseModel):
    id: str
    name: str
    description: str | None
    inputs_schema: dict[str, Any] | None
    outputs_schema: dict[str, Any] | None
    data_type: str = Field(description=DATA_TYPE_HELP)
    metadata: dict[str, Any] | None
    version: int = Field(description="The newest version (0 = as created, empty).")
    example_count: int
    tags: dict[str, int]
    created_at: int
    created_at_iso: str | None
    updated_at: int
    updated_at_iso: str | None

    @classmethod
    def of(cls, info: svc.DatasetInfo) -> DatasetOut:
        r = info.row
        return cls(
            id=r.id,
            name=r.name,
            description=r.description,
            inputs_schema=r.inputs_schema,
            outputs_schema=r.outputs_schema,
            data_type=r.data_type,
            metadata=r.metadata,
            version=r.head_version,
            example_count=info.example_count,
            tags=info.tags,
            created_at=r.created_at,
            created_at_iso=to_iso(r.created_at),
            updated_at=r.updated_at,
            updated_at_iso=to_iso(r.updated_at),
        )


class DatasetList(BaseModel):
    items: list[DatasetOut]
    next_cursor: str | None


class DatasetDeleted(BaseModel):
    id: str
    deleted: bool


class VersionOut(BaseModel):
    version: int
    created_at: int
    created_at_iso: str | None
    message: str | None
    added: int
    updated: int
    removed: int
    tags: list[str]


class VersionList(BaseModel):
    items: list[VersionOut]
    next_cursor: str | None


class DiffOut(BaseModel):
    from_version: int
    to_version: int
    added: list[str]
    removed: list[str]
    changed: list[str]


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: str | int | None = Field(default=None, description="The version to tag: " + AS_OF_HELP)


class TagOut(BaseModel):
    tag: str
    version: int
    previous_version: int | None


class TagList(BaseModel):
    tags: dict[str, int]


@router.post("", status_code=201, response_model=DatasetOut)
def create_dataset(body: DatasetIn, ctx: Ctx, who: Who) -> DatasetOut:
    info = svc.create(
        ctx,
        who,
        body.name,
        description=body.description,
        inputs_schema=body.inputs_schema,
        outputs_schema=body.outputs_schema,
        data_type=body.data_type,
        metadata=body.metadata,
    )
    return DatasetOut.of(info)


@router.get("", response_model=DatasetList)
def list_datasets(
    ctx: Ctx,
    who: Who,
    name: str | None = Query(default=None, description="Return only the dataset with this name."),
    limit: int = Query(default=100, ge=1, le=svc.MAX_LIMIT),
    cursor: str | None = None,
) -> DatasetList:
    if name is not None:
        try:
            info = svc.get(ctx, who, name)
        except NotFound:
            return DatasetList(items=[], next_cursor=None)
        return DatasetList(
            items=[DatasetOut.of(info)] if info.row.name == name else [], next_cursor=None
        )
    page = svc.list_datasets(ctx, who, limit=limit, cursor=cursor)
    return DatasetList(items=[DatasetOut.of(i) for i in page.items], next_cursor=page.next_cursor)


@router.get("/{dataset}", response_model=DatasetOut)
def get_dataset(dataset: str, ctx: Ctx, who: Who) -> DatasetOut:
    return DatasetOut.of(svc.get(ctx, who, dataset))


@router.patch("/{dataset}", response_model=DatasetOut)
def update_dataset(dataset: str, body: DatasetPatch, ctx: Ctx, who: Who) -> DatasetOut:
    """Rename, describe, retype, or set the metadata or the schemas (`null` removes one). A new
    schema must hold for every current example. Versions track examples, so this makes no new
    version."""
    sent = body.model_fields_set
    optional = ("description", "inputs_schema", "outputs_schema", "metadata")
    kwargs: dict[str, Any] = {f: getattr(body, f) for f in optional if f in sent}
    return DatasetOut.of(
        svc.update(ctx, who, dataset, name=body.name, data_type=body.data_type, **kwargs)
    )


@router.delete("/{dataset}", response_model=DatasetDeleted)
def delete_dataset(dataset: str, ctx: Ctx, who: Admin) -> DatasetDeleted:
    """Delete the dataset with all its versions, examples and tags."""
    return DatasetDeleted(id=svc.delete(ctx, who, dataset), deleted=True)


@router.get("/{dataset}/versions", response_model=VersionList)
def list_versions(
    dataset: str,
    ctx: Ctx,
    who: Who,
    limit: int = Query(default=100, ge=1, le=svc.MAX_LIMIT),
    cursor: str | None = None,
) -> VersionList:
    """Newest first, with how many examples each version added, updated and removed."""
    items, next_cursor = svc.list_versions(ctx, who, dataset, limit=limit, cursor=cursor)
    return VersionList(
        items=[
            VersionOut(
                version=v.row.version,
                created_at=v.row.created_at,
                created_at_iso=to_iso(v.row.created_at),
                message=v.row.message,
                added=v.row.added,
                updated=v.row.updated,
                removed=v.row.removed,
                tags=v.tags,
            )
            for v in items
        ],
        next_cursor=next_cursor,
    )


@router.get("/{dataset}/diff", response_model=DiffOut)
def diff_versions(
    dataset: str,
    ctx: Ctx,
    who: Who,
    from_: str = Query(alias="from", description="The older side: " + AS_OF_HELP),
    to: str | None = Query(default=None, description="The newer side: " + AS_OF_HELP),
) -> DiffOut:
    """Ids of the examples added, removed and changed from one version to another."""
    d = svc.diff(ctx, who, dataset, from_, to)
    return DiffOut(
        from_version=d.from_version,
        to_version=d.to_version,
        added=d.added,
        removed=d.removed,
        changed=d.changed,
    )


@router.get("/{dataset}/tags", response_model=TagList)
def list_tags(dataset: str, ctx: Ctx, who: Who) -> TagList:
    return TagList(tags=svc.tags(ctx, who, dataset))


@router.put("/{dataset}/tags/{tag}", response_model=TagOut)
def set_tag(dataset: str, tag: str, body: TagIn, ctx: Ctx, who: Who) -> TagOut:
    """Create or move a tag (e.g. `prod`, `baseline`) to a version; default the newest."""
    as_of = None if body.as_of is None else str(body.as_of)
    version, previous = svc.set_tag(ctx, who, dataset, tag, as_of)
    return TagOut(tag=tag, version=version, previous_version=previous)


@router.delete("/{dataset}/tags/{tag}", response_model=TagList)
def delete_tag(dataset: str, tag: str, ctx: Ctx, who: Who) -> TagList:
    svc.delete_tag(ctx, who, dataset, tag)
    return TagList(tags=svc.tags(ctx, who, dataset))
