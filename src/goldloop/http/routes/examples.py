"""/api/v1/datasets/{dataset}/examples: add, list, get, update and delete examples."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import InvalidInput
from goldloop.http.deps import Ctx, Who
from goldloop.http.routes.datasets import AS_OF_HELP
from goldloop.services import dataset_runs as runs_svc
from goldloop.services import examples as svc
from goldloop.store.examples import ExampleRow

router = APIRouter(prefix="/datasets/{dataset}", tags=["datasets"])


class ExampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, description="Optional id (1-64 chars); default a UUIDv7.")
    inputs: Any = Field(description="The example's inputs (any JSON, usually an object).")
    outputs: Any = Field(default=None, description="Reference outputs.")
    metadata: dict[str, Any] | None = None
    splits: list[str] | None = Field(default=None, description='e.g. ["test"]')
    lineage: dict[str, Any] | None = Field(
        default=None, description="Where it came from (kept as given; set by add-from-runs)."
    )


class ExamplesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    examples: list[ExampleIn]
    message: str | None = Field(default=None, description="Note stored on the new version.")
    upsert: bool = Field(
        default=False,
        description="Examples whose id exists are updated (when different) instead of a 409.",
    )


class ExamplePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: Any = None
    outputs: Any = None
    metadata: dict[str, Any] | None = None
    splits: list[str] | None = None
    message: str | None = None


class DeleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str]
    message: str | None = None


class ExampleOut(BaseModel):
    id: str
    inputs: Any
    outputs: Any
    metadata: dict[str, Any] | None
    splits: list[str] | None
    lineage: dict[str, Any] | None
    version: int = Field(description="The version that wrote this state of the example.")
    created_at: int
    created_at_iso: str | None
    updated_at: int
    updated_at_iso: str | None

    @classmethod
    def of(cls, r: ExampleRow) -> ExampleOut:
        return cls(
            id=r.id,
            inputs=r.inputs,
            outputs=r.outputs,
            metadata=r.metadata,
            splits=r.splits,
            lineage=r.lineage,
            version=r.version,
            created_at=r.created_at,
            created_at_iso=to_iso(r.created_at),
            updated_at=r.updated_at,
            updated_at_iso=to_iso(r.updated_at),
        )


class ExampleList(BaseModel):
    version: int = Field(description="The version these examples are read at.")
    items: list[ExampleOut]
    next_cursor: str | None


class WriteOut(BaseModel):
    dataset_id: str
    version: int = Field(description="The new version, or the newest when nothing changed.")
    changed: bool
    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: list[str]

    @classmethod
    def of(cls, r: svc.WriteResult) -> WriteOut:
        return cls(
            dataset_id=r.dataset_id,
            version=r.version,
            changed=r.changed,
            added=r.added,
            updated=r.updated,
            removed=r.removed,
            unchanged=r.unchanged,
        )


class ExampleWritten(BaseModel):
    version: int
    changed: bool
    example: ExampleOut


@router.post("/examples", status_code=201, response_model=WriteOut)
def add_examples(dataset: str, body: ExamplesIn, ctx: Ctx, who: Who) -> WriteOut:
    """Add one or many examples as one new version. Schema violations are a 400 naming the
    example (its index in `examples`) and the JSON path."""
    items = [svc.ExampleIn(**e.model_dump()) for e in body.examples]
    result = svc.add(ctx, who, dataset, items, upsert=body.upsert, message=body.message)
    return WriteOut.of(result)


def _metadata_filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidInput(
            'metadata must be a JSON object, e.g. {"topic": "refunds"}',
            details={"field": "metadata"},
        )
    return value


@router.get("/examples", response_model=ExampleList)
def list_examples(
    dataset: str,
    ctx: Ctx,
    who: Who,
    as_of: str | None = Query(default=None, description=AS_OF_HELP),
    split: str | None = Query(default=None, description="Only examples in this split."),
    metadata: str | None = Query(
        default=None, description="JSON object; examples whose metadata has these key/values."
    ),
    limit: int = Query(default=100, ge=1, le=1000),
    cursor: str | None = None,
) -> ExampleList:
    page = svc.list_examples(
        ctx,
        who,
        dataset,
        as_of=as_of,
        split=split,
        metadata=_metadata_filter(metadata),
        limit=limit,
        cursor=cursor,
    )
    return ExampleList(
        version=page.version,
        items=[ExampleOut.of(r) for r in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/examples/{example_id}", response_model=ExampleOut)
def get_example(
    dataset: str,
    example_id: str,
    ctx: Ctx,
    who: Who,
    as_of: str | None = Query(default=None, description=AS_OF_HELP),
) -> ExampleOut:
    _, row = svc.get(ctx, who, dataset, example_id, as_of)
    return ExampleOut.of(row)


@router.patch("/examples/{example_id}", response_model=ExampleWritten)
def update_example(
    dataset: str, example_id: str, body: ExamplePatch, ctx: Ctx, who: Who
) -> ExampleWritten:
    """Change the fields sent, as one new version (none if nothing changed)."""
    changes = {f: getattr(body, f) for f in body.model_fields_set if f != "message"}
    result, row = svc.update(ctx, who, dataset, example_id, changes, message=body.message)
    return ExampleWritten(
        version=result.version, changed=result.changed, example=ExampleOut.of(row)
    )


@router.delete("/examples/{example_id}", response_model=WriteOut)
def delete_example(dataset: str, example_id: str, ctx: Ctx, who: Who) -> WriteOut:
    return WriteOut.of(svc.delete(ctx, who, dataset, [example_id]))


@router.post("/examples/delete", response_model=WriteOut)
def delete_examples(dataset: str, body: DeleteIn, ctx: Ctx, who: Who) -> WriteOut:
    """Delete many examples as one new version."""
    return WriteOut.of(svc.delete(ctx, who, dataset, body.ids, message=body.message))


class RunsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_ids: list[str] = Field(description="Runs to turn into examples (in this order).")
    prefer_correction: bool = Field(
        default=False,
        description="Reference outputs from the latest feedback correction, when there is one; "
        "a run already in the dataset takes a correction its example has not taken yet.",
    )
    allow_duplicates: bool = Field(
        default=False, description="Add runs whose inputs equal an existing example's too."
    )
    splits: list[str] | None = None
    metadata: dict[str, Any] | None = None
    message: str | None = None


class RunAddedOut(BaseModel):
    run_id: str
    example_id: str
    outputs_from: str


class RunUpdatedOut(BaseModel):
    run_id: str
    example_id: str = Field(description="The example of the run, now at the new version.")
    correction_feedback_id: str = Field(description="The correction its outputs come from now.")
    previous_correction_feedback_id: str | None = Field(
        description="The correction they came from before (null: from the run)."
    )


class RunSkippedOut(BaseModel):
    run_id: str
    reason: str = Field(
        description="already_added (in the dataset, and no correction it has not taken) "
        "or duplicate_inputs"
    )
    example_id: str = Field(description="The example already there.")


class RunsOut(BaseModel):
    dataset_id: str
    version: int
    changed: bool
    added: list[RunAddedOut]
    updated: list[RunUpdatedOut] = Field(
        description="Runs already in the dataset whose example took a later correction."
    )
    skipped: list[RunSkippedOut]


@router.post("/runs", status_code=201, response_model=RunsOut)
def add_runs(dataset: str, body: RunsIn, ctx: Ctx, who: Who) -> RunsOut:
    """Add runs as examples (one new version): inputs from the run, reference outputs from the
    latest correction (`prefer_correction`) or the run's outputs; lineage to run, trace and
    feedback. A run already in the dataset is skipped and reported, unless `prefer_correction`
    and it has a correction its example has not taken yet (and that differs from the reference):
    then that example's outputs become the correction, in the same new version. A run whose
    inputs equal an existing example's is skipped unless `allow_duplicates`."""
    r = runs_svc.add_runs(
        ctx,
        who,
        dataset,
        body.run_ids,
        prefer_correction=body.prefer_correction,
        allow_duplicates=body.allow_duplicates,
        splits=body.splits,
        metadata=body.metadata,
        message=body.message,
    )
    return RunsOut(
        dataset_id=r.write.dataset_id,
        version=r.write.version,
        changed=r.write.changed,
        added=[
            RunAddedOut(run_id=a.run_id, example_id=a.example_id, outputs_from=a.outputs_from)
            for a in r.added
        ],
        updated=[
            RunUpdatedOut(
                run_id=u.run_id,
                example_id=u.example_id,
                correction_feedback_id=u.correction_feedback_id,
                previous_correction_feedback_id=u.previous_correction_feedback_id,
            )
            for u in r.updated
        ],
        skipped=[
            RunSkippedOut(run_id=s.run_id, reason=s.reason, example_id=s.example_id)
            for s in r.skipped
        ],
    )
