"""/api/v1/rules: automation rules, their status, history and backfill."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.clock import from_iso, to_iso
from goldloop.domain.errors import InvalidInput
from goldloop.domain.rules import masked_actions
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.services import rules as svc

router = APIRouter(prefix="/rules", tags=["rules"])


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project_id: str
    name: str = Field(min_length=1, max_length=200)
    trigger: Literal["run", "feedback"] = "run"
    filter: str | None = Field(default=None, description="Filter language (docs/filters.md).")
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    root_only: bool = True
    actions: list[dict[str, Any]] = Field(
        description=(
            "Each {type: add_to_dataset|evaluate|webhook|add_to_queue, ...} (docs/rules.md)."
        )
    )
    enabled: bool = True
    daily_judge_budget: int | None = Field(
        default=None, description="Most judged evaluations per day; then sampling pauses."
    )
    feedback_match: dict[str, Any] | None = Field(
        default=None,
        description="trigger 'feedback' only: key, has_correction, min_score, max_score, "
        "source, value.",
    )


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    filter: str | None = None
    sample_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    root_only: bool | None = None
    actions: list[dict[str, Any]] | None = None
    enabled: bool | None = None
    daily_judge_budget: int | None = None
    feedback_match: dict[str, Any] | None = None


class RuleOut(BaseModel):
    id: str
    project_id: str
    name: str
    trigger: str
    filter: str | None
    sample_rate: float
    root_only: bool
    actions: list[dict[str, Any]] = Field(
        description="Evaluator credentials shown as ***, webhook URLs as scheme://host/… "
        "(send them back unchanged in a PATCH to keep the stored values)."
    )
    enabled: bool
    daily_judge_budget: int | None
    feedback_match: dict[str, Any] | None
    created_at: str | None
    status: str | None = Field(description="The tailer's last word: ok, or what stops it.")
    watermark: int = Field(description="Highest run log position this rule has read.")
    processed: int
    matched: int
    lag_ms: int | None = Field(description="Ingest to action done, for the last action.")
    outcomes: dict[str, int] = Field(default_factory=dict)


class RuleCreated(RuleOut):
    signing_secret: str = Field(
        description="The key of the Goldloop-Signature header of this rule's webhook actions "
        "(docs/rules.md). Returned only in this response: store it now."
    )


def _out(row: dict[str, Any]) -> RuleOut:
    return RuleOut(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        trigger=row["trigger"],
        filter=row["filter"],
        sample_rate=row["sample_rate"],
        root_only=row["root_only"],
        actions=masked_actions(row["actions"]),
        enabled=row["enabled"],
        daily_judge_budget=row["daily_judge_budget"],
        feedback_match=row["feedback_match"],
        created_at=to_iso(row["created_at"]),
        status=row.get("status"),
        watermark=row.get("watermark", 0),
        processed=row.get("processed", 0),
        matched=row.get("matched", 0),
        lag_ms=row.get("last_lag_ms"),
        outcomes=row.get("outcomes", {}),
    )


@router.post("", status_code=201, response_model=RuleCreated)
def create_rule(body: RuleIn, ctx: Ctx, who: Admin) -> RuleCreated:
    data = body.model_dump()
    project_id = data.pop("project_id")
    row = svc.create_rule(ctx, who, project_id, data)
    return RuleCreated(**_out(row).model_dump(), signing_secret=row["signing_secret"])


@router.get("", response_model=list[RuleOut])
def list_rules(ctx: Ctx, who: Who, project_id: str | None = Query(default=None)) -> list[RuleOut]:
    return [_out(r) for r in svc.list_rules(ctx, who, project_id)]


@router.get("/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: str, ctx: Ctx, who: Who) -> RuleOut:
    return _out(svc.get_rule(ctx, who, rule_id))


@router.patch("/{rule_id}", response_model=RuleOut)
def update_rule(rule_id: str, body: RulePatch, ctx: Ctx, who: Admin) -> RuleOut:
    return _out(svc.update_rule(ctx, who, rule_id, body.model_dump(exclude_unset=True)))


@router.delete("/{rule_id}", status_code=204)
def delete_rule(rule_id: str, ctx: Ctx, who: Admin) -> None:
    svc.delete_rule(ctx, who, rule_id)


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(description="ISO-8601 start of the range of run start times.")
    end: str = Field(description="ISO-8601 end (exclusive).")


class BackfillOut(BaseModel):
    rule_id: str
    runs_scanned: int = Field(description="Completed runs in the range that pass the filter.")
    runs_queued: int = Field(description="Runs newly sampled in (ones already handled are not).")


@router.post("/{rule_id}/backfill", response_model=BackfillOut)
def backfill(rule_id: str, body: BackfillIn, ctx: Ctx, who: Admin) -> BackfillOut:
    try:
        start, end = from_iso(body.start), from_iso(body.end)
    except ValueError as exc:
        raise InvalidInput(f"start/end must be ISO-8601 times: {exc}") from None
    return BackfillOut(**svc.backfill(ctx, who, rule_id, start_us=start, end_us=end))


class ActionOut(BaseModel):
    id: int
    object_id: str
    trace_id: str | None
    action_index: int
    action_type: str
    status: str
    detail: dict[str, Any] | None
    attempts: int
    created_at: str | None
    updated_at: str | None
    lag_ms: float | None = Field(description="From the run's ingest to this outcome.")


@router.get("/{rule_id}/history", response_model=list[ActionOut])
def history(
    rule_id: str,
    ctx: Ctx,
    who: Who,
    status: Literal["pending", "done", "failed", "skipped"] | None = Query(default=None),
    limit: int = Query(default=100, ge=1, le=1000),
    before: int | None = Query(default=None, description="Page: the last id of the previous page."),
) -> list[ActionOut]:
    rows = svc.history(ctx, who, rule_id, status=status, limit=limit, before=before)
    return [
        ActionOut(
            id=r["pk"],
            object_id=r["object_id"],
            trace_id=r["trace_id"],
            action_index=r["action_index"],
            action_type=r["action_type"],
            status=r["status"],
            detail=r["detail"],
            attempts=r["attempts"],
            created_at=to_iso(r["created_at"]),
            updated_at=to_iso(r["updated_at"]),
            lag_ms=None
            if r["ingested_at"] is None or r["status"] == "pending"
            else (r["updated_at"] - r["ingested_at"]) / 1000.0,
        )
        for r in rows
    ]
