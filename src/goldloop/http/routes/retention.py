"""Retention policies, deleting traces, erasing a person's data, and the audit log:
/projects/{project}/retention, /traces/delete, /erasure, /audit (see docs/self-hosting.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.errors import InvalidInput
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.services import audit
from goldloop.services import erasure as erasure_svc
from goldloop.services import retention as svc

router = APIRouter(tags=["retention"])


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep_days: int = Field(description="Delete runs that started more than this many days ago.")
    keep_with_feedback: bool = Field(
        default=False,
        description="Keep every trace that has feedback (on any of its runs or on the trace).",
    )
    keep_in_datasets: bool = Field(
        default=False,
        description="Keep every trace with a run that was copied into a dataset.",
    )


class RetentionOut(BaseModel):
    project_id: str
    keep_days: int
    keep_with_feedback: bool
    keep_in_datasets: bool
    last_pass_at: str | None = Field(description="When the worker last finished a pass.")
    runs_deleted: int = Field(description="Runs the policy deleted so far.")
    created_at: str | None
    updated_at: str | None


@router.get("/projects/{project}/retention", response_model=RetentionOut)
def get_retention(project: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    return svc.view(svc.get_policy(ctx, who, project))


@router.put("/projects/{project}/retention", response_model=RetentionOut)
def put_retention(project: str, body: RetentionIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    policy = svc.set_policy(
        ctx,
        who,
        project,
        keep_days=body.keep_days,
        keep_with_feedback=body.keep_with_feedback,
        keep_in_datasets=body.keep_in_datasets,
    )
    return svc.view(policy)


@router.delete("/projects/{project}/retention", status_code=204)
def delete_retention(project: str, ctx: Ctx, who: Admin) -> None:
    svc.delete_policy(ctx, who, project)


class RemovedOut(BaseModel):
    dry_run: bool = Field(description="True: nothing was deleted, these are the counts it would.")
    traces: int
    runs: int
    feedback: int
    examples: int = Field(description="Dataset examples removed from every version.")
    example_rows: int = Field(description="Stored example rows (one per version range).")


class TraceDeleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trace_ids: list[str] | None = Field(default=None, description="Delete these traces.")
    filter: str | None = Field(
        default=None,
        description="Delete every trace with a run matching this filter (docs/filters.md).",
    )
    project: str | None = Field(default=None, description="With filter: only this project.")
    dry_run: bool = Field(default=False, description="Only count what would be deleted.")


@router.post("/traces/delete", response_model=RemovedOut)
def delete_traces(body: TraceDeleteIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    outcome = erasure_svc.delete_traces(
        ctx,
        who,
        trace_ids=body.trace_ids,
        filter=body.filter,
        project=body.project,
        dry_run=body.dry_run,
    )
    return outcome.view()


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(default=None, description="Erase the runs with this user_id.")
    metadata: dict[str, str | int | float | bool] | None = Field(
        default=None,
        description='Erase the runs whose metadata has this key and value: {"key": value}.',
    )
    filter: str | None = Field(default=None, description="Erase the runs matching this filter.")
    dry_run: bool = Field(default=False, description="Only count what would be erased.")


@router.post("/erasure", response_model=RemovedOut)
def erase(body: ErasureIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    key: str | None = None
    value: Any = None
    if body.metadata is not None:
        if len(body.metadata) != 1:
            raise InvalidInput(
                "metadata must hold exactly one key and its value", details={"field": "metadata"}
            )
        ((key, value),) = body.metadata.items()
    outcome = erasure_svc.erase(
        ctx,
        who,
        user_id=body.user_id,
        metadata_key=key,
        metadata_value=value,
        filter=body.filter,
        dry_run=body.dry_run,
    )
    return outcome.view()


class AuditOut(BaseModel):
    id: int = Field(description="Pass as `before` to get older entries.")
    at: str | None
    actor: str = Field(description="The API key's name and prefix, or `command line`.")
    actor_key_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any] = Field(description="Counts and settings; never deleted content.")


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    ctx: Ctx,
    who: Admin,
    limit: int = Query(default=100, ge=1, le=audit.MAX_LIMIT),
    before: int | None = Query(default=None, description="Entries older than this id."),
    action: str | None = Query(default=None, description="Only this action, e.g. `erasure`."),
) -> list[dict[str, Any]]:
    entries = audit.list_entries(ctx, who, limit=limit, before=before, action=action)
    return [audit.view(e) for e in entries]
