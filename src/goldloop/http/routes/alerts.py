"""/api/v1/channels, /api/v1/alert-rules, /api/v1/deliveries"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.clock import to_iso
from goldloop.domain.outbound import masked_url
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.services import alerts as svc
from goldloop.services import deliveries

router = APIRouter(tags=["alerts"])


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["webhook", "slack", "pagerduty"]
    url: str = Field(min_length=1, max_length=2000)
    secret: str | None = Field(default=None, description="PagerDuty routing key; never returned.")


class ChannelOut(BaseModel):
    id: str
    name: str
    kind: str
    url: str = Field(description="Shown as scheme://host/… : webhook URLs often embed secrets.")
    has_secret: bool
    has_signing_secret: bool = Field(
        description="kind webhook: requests carry a Goldloop-Signature header."
    )
    created_at: str | None


class ChannelCreated(ChannelOut):
    signing_secret: str | None = Field(
        description="kind webhook: the key of its Goldloop-Signature header (docs/alerts.md). "
        "Returned only in this response: store it now."
    )


def _channel(row: dict[str, Any]) -> ChannelOut:
    return ChannelOut(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        url=masked_url(row["url"]),
        has_secret=bool(row["secret"]),
        has_signing_secret=bool(row.get("signing_secret")),
        created_at=to_iso(row["created_at"]),
    )


@router.post("/channels", status_code=201, response_model=ChannelCreated)
def create_channel(body: ChannelIn, ctx: Ctx, who: Admin) -> ChannelCreated:
    row = svc.create_channel(
        ctx, who, name=body.name, kind=body.kind, url=body.url, secret=body.secret
    )
    return ChannelCreated(**_channel(row).model_dump(), signing_secret=row["signing_secret"])


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(ctx: Ctx, who: Who) -> list[ChannelOut]:
    return [_channel(r) for r in svc.list_channels(ctx, who)]


@router.delete("/channels/{channel_id}", status_code=204)
def delete_channel(channel_id: str, ctx: Ctx, who: Admin) -> None:
    svc.delete_channel(ctx, who, channel_id)


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal[
        "feedback_mean",
        "feedback_pass_rate",
        "category_share",
        "error_rate",
        "latency_p95",
        "cost",
        "volume",
        "judge_drift",
        "workers_alive",
        "rule_backlog",
        "rule_backlog_age",
    ] = Field(
        description="What to watch. workers_alive, rule_backlog and rule_backlog_age read "
        "Goldloop's own state (live worker processes; pending online-evaluation actions and the "
        "oldest one's age in seconds) and take threshold conditions only."
    )
    key: str | None = Field(default=None, description="Feedback key (feedback metrics).")
    category: str | None = Field(default=None, description="Value counted by category_share.")
    pass_threshold: float = Field(default=1.0, description="feedback_pass_rate: score >= passes.")
    filter: str | None = Field(default=None, description="Narrow the runs (filter language).")
    rule_id: str | None = Field(
        default=None,
        description="judge_drift: the judge rule whose canaries it watches (default: every "
        "rule of the project). rule_backlog, rule_backlog_age: the rule whose actions count "
        "(default: every rule of the workspace).",
    )


class ConditionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["threshold", "change", "drift"] = Field(
        description="drift: the judge_drift metric's own condition (a canary run's verdict)."
    )
    op: Literal["<", "<=", ">", ">="] = "<"
    value: float = 0.0
    alpha: float = Field(
        default=0.01,
        description="Not used since the change detector (kept so older rules load); "
        "false_page_days sets how often a change alert may page falsely.",
    )
    min_samples: int = Field(
        default=30,
        description="Fewer samples in a window (change: in the baseline) decide nothing.",
    )
    min_effect: float = Field(
        default=0.0,
        description="change: the smallest drop (rise where up is bad) worth a page, in the "
        "metric's units; 0: 0.1 for rates, half the baseline's standard deviation for means.",
    )
    baseline_windows: int = Field(
        default=6, description="change: baseline length in windows, before the latest window."
    )
    false_page_days: float = Field(
        default=30.0,
        ge=1,
        description="change: expected days between false pages on steady traffic.",
    )
    resolve_after_s: int = Field(
        default=900,
        ge=0,
        description="How long the metric must be back (change: near the baseline frozen when "
        "the alert fired; threshold: no longer breached) before the alert resolves.",
    )
    settle_s: int = Field(
        default=900,
        ge=0,
        le=86_400,
        description="change: how long after a run starts its feedback may arrive and still "
        "count (online evaluation lags).",
    )


class AlertRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project_id: str
    name: str = Field(min_length=1, max_length=200)
    metric: Metric
    condition: ConditionModel
    window_s: int = 3600
    every_s: int = 60
    cooldown_s: int = 900
    channel_ids: list[str] = Field(default_factory=list)
    enabled: bool = True


class AlertRulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    metric: Metric | None = None
    condition: ConditionModel | None = None
    window_s: int | None = None
    every_s: int | None = None
    cooldown_s: int | None = None
    channel_ids: list[str] | None = None
    enabled: bool | None = None


class AlertRuleOut(BaseModel):
    id: str
    project_id: str
    name: str
    metric: dict[str, Any]
    condition: dict[str, Any]
    window_s: int
    every_s: int
    cooldown_s: int
    channel_ids: list[str]
    enabled: bool
    state: str
    acknowledged_by: str | None
    last_evaluation: dict[str, Any] | None
    last_evaluated_at: str | None
    last_fired_at: str | None
    last_resolved_at: str | None


_TIMES = ("last_evaluated_at", "last_fired_at", "last_resolved_at")


def _rule(row: dict[str, Any]) -> AlertRuleOut:
    plain = {k: row[k] for k in AlertRuleOut.model_fields if k not in _TIMES}
    return AlertRuleOut(
        **plain,
        last_evaluated_at=to_iso(row["last_evaluated_at"]),
        last_fired_at=to_iso(row["last_fired_at"]),
        last_resolved_at=to_iso(row["last_resolved_at"]),
    )


@router.post("/alert-rules", status_code=201, response_model=AlertRuleOut)
def create_alert_rule(body: AlertRuleIn, ctx: Ctx, who: Admin) -> AlertRuleOut:
    data = body.model_dump()
    return _rule(svc.create_rule(ctx, who, **data))


@router.get("/alert-rules", response_model=list[AlertRuleOut])
def list_alert_rules(
    ctx: Ctx, who: Who, project_id: str | None = Query(default=None)
) -> list[AlertRuleOut]:
    return [_rule(r) for r in svc.list_rules(ctx, who, project_id)]


@router.get("/alert-rules/{rule_id}", response_model=AlertRuleOut)
def get_alert_rule(rule_id: str, ctx: Ctx, who: Who) -> AlertRuleOut:
    return _rule(svc.get_rule(ctx, who, rule_id))


@router.patch("/alert-rules/{rule_id}", response_model=AlertRuleOut)
def update_alert_rule(rule_id: str, body: AlertRulePatch, ctx: Ctx, who: Admin) -> AlertRuleOut:
    return _rule(svc.update_rule(ctx, who, rule_id, body.model_dump(exclude_none=True)))


@router.delete("/alert-rules/{rule_id}", status_code=204)
def delete_alert_rule(rule_id: str, ctx: Ctx, who: Admin) -> None:
    svc.delete_rule(ctx, who, rule_id)


class AckIn(BaseModel):
    by: str = Field(min_length=1, max_length=200, description="Who takes the alert.")


@router.post("/alert-rules/{rule_id}/ack", response_model=AlertRuleOut)
def acknowledge(rule_id: str, body: AckIn, ctx: Ctx, who: Who) -> AlertRuleOut:
    return _rule(svc.acknowledge(ctx, who, rule_id, body.by))


class AlertEventOut(BaseModel):
    id: str
    kind: str
    at: str | None
    reason: str
    numbers: dict[str, Any] | None
    worst_run_ids: list[str] | None


@router.get("/alert-rules/{rule_id}/events", response_model=list[AlertEventOut])
def alert_events(
    rule_id: str, ctx: Ctx, who: Who, limit: int = Query(default=100, ge=1, le=1000)
) -> list[AlertEventOut]:
    return [
        AlertEventOut(**{**e, "at": to_iso(e["at"])}) for e in svc.events(ctx, who, rule_id, limit)
    ]


class AttemptOut(BaseModel):
    attempt: int
    at: str | None
    status_code: int | None
    error: str | None
    duration_ms: int | None


class DeliveryOut(BaseModel):
    id: str
    idempotency_key: str
    channel_id: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: str | None
    attempt_log: list[AttemptOut]


@router.get("/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    ctx: Ctx,
    who: Who,
    status: Literal["pending", "sent", "failed"] | None = Query(default=None),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[DeliveryOut]:
    rows = deliveries.list_deliveries(ctx, who, status=status, limit=limit)
    return [
        DeliveryOut(
            id=r["id"],
            idempotency_key=r["idempotency_key"],
            channel_id=r["channel_id"],
            status=r["status"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            created_at=to_iso(r["created_at"]),
            attempt_log=[AttemptOut(**{**a, "at": to_iso(a["at"])}) for a in r["attempt_log"]],
        )
        for r in rows
    ]
