"""/api/v1/rules/{id}/canaries and /api/v1/canary-sets: judge drift canaries.

Freezing a set, running it now, accepting a baseline and deleting a set spend judge budget or
change what alerts compare with: admin keys only. Reading is open to any key of the workspace.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.clock import to_iso
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.services import canaries as svc
from goldloop.services import rules as rule_svc

router = APIRouter(tags=["rules"])


class CanariesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(default=100, ge=1, le=svc.MAX_SIZE, description="How many canaries.")
    selection: Literal["balanced", "newest", "random"] = Field(
        default="balanced",
        description="balanced: as many failing as passing labels where there are enough of "
        "each; newest: the most recently labelled runs; random: a seeded sample.",
    )
    judge_key: str | None = Field(
        default=None, max_length=200, description="The key the judge writes (default: its own)."
    )
    human_key: str | None = Field(
        default=None, max_length=200, description="The key people label (default: judge_key)."
    )
    include_api: bool = Field(
        default=False, description="Count feedback with source `api` as people's labels too."
    )
    interval_s: int | None = Field(
        default=None,
        description="Seconds between scheduled re-scorings (default: canary_interval_s).",
    )
    alpha: float | None = Field(
        default=None, description="Drift test level (default: canary_alpha)."
    )
    min_drop: float | None = Field(
        default=None, description="Smallest drop of agreement called drift (canary_min_drop)."
    )
    threshold: float = Field(default=0.5, description="A judge score at or above this passes.")
    replace: bool = Field(default=False, description="Replace the rule's existing set.")
    seed: int = Field(default=0, description="Seed of the random and balanced selections.")


class CanaryRunOut(BaseModel):
    id: str
    set_id: str
    rule_id: str
    trigger: str = Field(description="first | schedule | judge_changed | manual")
    status: str = Field(description="queued | done | skipped (judge budget) | failed")
    evaluator: str | None
    judge_model: str | None
    prompt_hash: str | None
    n: int = Field(description="Canaries the judge scored.")
    errors: int = Field(description="Canaries it could not score (error, or run deleted).")
    figures: dict[str, Any] | None = Field(
        description="Agreement with the frozen labels: TPR, TNR, accuracy, kappa with "
        "intervals and n (pass/fail), or Pearson, Spearman, mean difference (continuous)."
    )
    drift: dict[str, Any] | None = Field(
        description="Against the baseline at the time: worse, better, p_value, drop, drifted."
    )
    is_baseline: bool
    detail: str | None
    created_at: str | None
    finished_at: str | None


class CanarySetOut(BaseModel):
    id: str
    rule_id: str
    rule_name: str | None = None
    judge_key: str
    human_key: str
    kind: str
    size: int
    threshold: float
    interval_s: int | None
    alpha: float
    min_drop: float
    baseline_run_id: str | None
    pending_run_id: str | None
    next_due_at: str | None
    created_at: str | None
    latest_run: CanaryRunOut | None


class CanaryItemOut(BaseModel):
    run_id: str
    trace_id: str | None
    human_score: float = Field(description="The label as it was when the set was frozen.")


def _run(row: dict[str, Any], baseline: str | None) -> CanaryRunOut:
    return CanaryRunOut(
        id=row["id"],
        set_id=row["set_id"],
        rule_id=row["rule_id"],
        trigger=row["trigger"],
        status=row["status"],
        evaluator=row["evaluator"],
        judge_model=row["judge_model"],
        prompt_hash=row["prompt_hash"],
        n=row["n"],
        errors=row["errors"],
        figures=row["figures"],
        drift=row["drift"],
        is_baseline=row["id"] == baseline,
        detail=row["detail"] if row["status"] != "queued" else None,
        created_at=to_iso(row["created_at"]),
        finished_at=to_iso(row["finished_at"]),
    )


def _set(row: dict[str, Any]) -> CanarySetOut:
    latest = row.get("latest_run")
    return CanarySetOut(
        id=row["id"],
        rule_id=row["rule_id"],
        rule_name=row.get("rule_name"),
        judge_key=row["judge_key"],
        human_key=row["human_key"],
        kind=row["kind"],
        size=row["size"],
        threshold=row["threshold"],
        interval_s=row["interval_s"],
        alpha=row["alpha"],
        min_drop=row["min_drop"],
        baseline_run_id=row["baseline_run_id"],
        pending_run_id=row["pending_run_id"],
        next_due_at=to_iso(row["next_due_at"]),
        created_at=to_iso(row["created_at"]),
        latest_run=None if latest is None else _run(latest, row["baseline_run_id"]),
    )


@router.post("/rules/{rule_id}/canaries", status_code=201, response_model=CanarySetOut)
def create_canaries(rule_id: str, body: CanariesIn, ctx: Ctx, who: Admin) -> CanarySetOut:
    """Freeze the runs people labelled on the rule's judge key as its canary set (each with
    its label as it is now). The worker scores it with the rule's judge at once, then on a
    schedule and whenever the judge's model or prompt changes."""
    return _set(svc.create_set(ctx, who, rule_id, **body.model_dump()))


@router.get("/rules/{rule_id}/canaries", response_model=list[CanarySetOut])
def rule_canaries(rule_id: str, ctx: Ctx, who: Who) -> list[CanarySetOut]:
    rule_svc.get_rule(ctx, who, rule_id)
    return [_set(r) for r in svc.list_sets(ctx, who, rule_id=rule_id)]


@router.get("/canary-sets", response_model=list[CanarySetOut])
def list_canary_sets(
    ctx: Ctx,
    who: Who,
    rule_id: str | None = Query(default=None),
    project_id: str | None = Query(default=None),
) -> list[CanarySetOut]:
    return [_set(r) for r in svc.list_sets(ctx, who, rule_id=rule_id, project_id=project_id)]


@router.get("/canary-sets/{set_id}", response_model=CanarySetOut)
def get_canary_set(set_id: str, ctx: Ctx, who: Who) -> CanarySetOut:
    return _set(svc.get_set(ctx, who, set_id))


@router.get("/canary-sets/{set_id}/items", response_model=list[CanaryItemOut])
def canary_items(set_id: str, ctx: Ctx, who: Who) -> list[CanaryItemOut]:
    return [CanaryItemOut(**i) for i in svc.set_items(ctx, who, set_id)]


@router.get("/canary-sets/{set_id}/runs", response_model=list[CanaryRunOut])
def canary_runs(
    set_id: str, ctx: Ctx, who: Who, limit: int = Query(default=50, ge=1, le=500)
) -> list[CanaryRunOut]:
    """The set's runs, newest first, each with its figures and its drift verdict."""
    baseline = svc.get_set(ctx, who, set_id)["baseline_run_id"]
    return [_run(r, baseline) for r in svc.list_runs(ctx, who, set_id, limit=limit)]


@router.post("/canary-sets/{set_id}/run", status_code=202, response_model=CanaryRunOut)
def run_canaries(set_id: str, ctx: Ctx, who: Admin) -> CanaryRunOut:
    """Queue a re-scoring now (409 while one is queued)."""
    return _run(svc.run_now(ctx, who, set_id), None)


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str | None = Field(default=None, description="Default: the latest completed run.")


@router.post("/canary-sets/{set_id}/accept", response_model=CanarySetOut)
def accept_baseline(set_id: str, body: AcceptIn, ctx: Ctx, who: Admin) -> CanarySetOut:
    """Make a completed run the baseline drift is measured against: the judge's new
    behaviour is known and wanted."""
    return _set(svc.accept(ctx, who, set_id, body.run_id))


@router.delete("/canary-sets/{set_id}", status_code=204)
def delete_canary_set(set_id: str, ctx: Ctx, who: Admin) -> None:
    svc.delete_set(ctx, who, set_id)
