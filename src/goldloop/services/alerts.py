"""Alert rules and channels: CRUD, evaluation on a schedule, state changes and notifications.

Evaluating a rule, recording its state change and event, and enqueueing one delivery per channel
happen in one transaction, so a crash can neither notify without recording nor record without
notifying; the delivery outbox then retries until the receiver accepts.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.domain import alert_detector as detector
from goldloop.domain import alerts as domain
from goldloop.domain.alerts import Condition, Evaluation, MetricSpec, WindowStats
from goldloop.domain.clock import to_iso
from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.notifications import CHANNEL_KINDS, AlertNotice, body_for
from goldloop.domain.outbound import MASKED_PATH
from goldloop.domain.significance import Moments
from goldloop.domain.webhook_signing import new_secret
from goldloop.services import audit, canary_alerts, deliveries, outbound, self_watch
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.rules import compile_match
from goldloop.store import alert_metrics
from goldloop.store import alerts as store
from goldloop.store import projects as project_store

Row = dict[str, Any]
RUN_METRICS = {"error_rate", "latency_p95", "cost", "volume"}


# --- channels -------------------------------------------------------------------------------


def create_channel(
    ctx: ServiceContext, who: Principal, *, name: str, kind: str, url: str, secret: str | None
) -> Row:
    if kind not in CHANNEL_KINDS:
        raise InvalidInput(
            f"channel kind must be one of {', '.join(CHANNEL_KINDS)}", details={"field": "kind"}
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("channel url must be an http(s) URL", details={"field": "url"})
    outbound.check_url(ctx.settings.outbound_allowed_hosts, ctx.resolve, url, field_name="url")
    if kind == "pagerduty" and not secret:
        raise InvalidInput(
            "a pagerduty channel needs its routing key in 'secret'", details={"field": "secret"}
        )
    row: Row = {
        "id": str(uuid.uuid4()),
        "workspace_id": who.workspace_id,
        "name": name.strip(),
        "kind": kind,
        "url": url,
        "secret": secret,
        "signing_secret": new_secret() if kind == "webhook" else None,
        "created_at": ctx.clock(),
    }
    if not row["name"]:
        raise InvalidInput("channel name must not be empty", details={"field": "name"})

    def write(conn: Connection) -> None:
        if store.channel_by_name(conn, who.workspace_id, row["name"]):
            raise Conflict(f"a channel named {row['name']!r} already exists")
        store.insert_channel(conn, row)

    ctx.db.write(write)
    audit.record(
        ctx,
        who,
        "channel.created",
        target_type="channel",
        target_id=row["id"],
        details={"name": row["name"], "kind": kind},
    )
    return row


def list_channels(ctx: ServiceContext, who: Principal) -> list[Row]:
    return ctx.db.read(lambda c: store.list_channels(c, who.workspace_id))


def delete_channel(ctx: ServiceContext, who: Principal, channel_id: str) -> None:
    if not ctx.db.write(lambda c: store.delete_channel(c, who.workspace_id, channel_id)):
        raise NotFound(f"no channel with id {channel_id!r}")
    audit.record(ctx, who, "channel.deleted", target_type="channel", target_id=channel_id)


# --- rules ----------------------------------------------------------------------------------


def parse_metric(raw: dict[str, Any]) -> MetricSpec:
    try:
        return MetricSpec(**raw)
    except TypeError as exc:
        raise InvalidInput(f"metric: {exc}", details={"field": "metric"}) from None


def parse_condition(raw: dict[str, Any]) -> Condition:
    try:
        return Condition(**raw)
    except TypeError as exc:
        raise InvalidInput(f"condition: {exc}", details={"field": "condition"}) from None


def _check_channels(conn: Connection, who: Principal, channel_ids: list[str]) -> None:
    for cid in channel_ids:
        if store.get_channel(conn, who.workspace_id, cid) is None:
            raise InvalidInput(f"no channel with id {cid!r}", details={"field": "channel_ids"})


DAY_S = 86_400


def _check_timing(window_s: int, every_s: int, cooldown_s: int) -> None:
    for name, value, low, high in (
        ("window_s", window_s, 10, 30 * DAY_S),
        ("every_s", every_s, 1, DAY_S),
        ("cooldown_s", cooldown_s, 0, 30 * DAY_S),
    ):
        if not low <= value <= high:
            raise InvalidInput(
                f"{name} must be between {low} and {high} seconds", details={"field": name}
            )


def create_rule(
    ctx: ServiceContext,
    who: Principal,
    *,
    project_id: str,
    name: str,
    metric: dict[str, Any],
    condition: dict[str, Any],
    window_s: int = 3600,
    every_s: int = 60,
    cooldown_s: int = 900,
    channel_ids: list[str] | None = None,
    enabled: bool = True,
) -> Row:
    spec, cond = parse_metric(metric), parse_condition(condition)
    domain.validate(spec, cond)
    compile_match(ctx, who.workspace_id, spec.filter)  # a bad filter is a 400 now
    _check_timing(window_s, every_s, cooldown_s)
    now = ctx.clock()
    row: Row = {
        "id": str(uuid.uuid4()),
        "workspace_id": who.workspace_id,
        "project_id": project_id,
        "name": name.strip() or "alert",
        "metric": asdict(spec),
        "condition": asdict(cond),
        "window_s": window_s,
        "every_s": every_s,
        "cooldown_s": cooldown_s,
        "channel_ids": list(channel_ids or []),
        "enabled": enabled,
        "state": "ok",
        "created_at": now,
        "updated_at": now,
    }

    def write(conn: Connection) -> None:
        if project_store.get(conn, who.workspace_id, project_id) is None:
            raise NotFound(f"no project with id {project_id!r}")
        canary_alerts.check_metric(conn, who.workspace_id, project_id, spec)
        self_watch.check_metric(conn, who.workspace_id, spec)
        _check_channels(conn, who, row["channel_ids"])
        store.insert_rule(conn, row)

    ctx.db.write(write)
    audit.record(
        ctx,
        who,
        "alert_rule.created",
        target_type="alert_rule",
        target_id=row["id"],
        details={"name": row["name"], "project_id": project_id},
    )
    return get_rule(ctx, who, row["id"])


def get_rule(ctx: ServiceContext, who: Principal, rule_id: str) -> Row:
    row = ctx.db.read(lambda c: store.get_rule(c, who.workspace_id, rule_id))
    if row is None:
        raise NotFound(f"no alert rule with id {rule_id!r}")
    return row


def list_rules(ctx: ServiceContext, who: Principal, project_id: str | None = None) -> list[Row]:
    return ctx.db.read(lambda c: store.list_rules(c, who.workspace_id, project_id))


def update_rule(ctx: ServiceContext, who: Principal, rule_id: str, changes: Row) -> Row:
    current = get_rule(ctx, who, rule_id)
    merged = {**current, **{k: v for k, v in changes.items() if v is not None}}
    spec, cond = parse_metric(merged["metric"]), parse_condition(merged["condition"])
    domain.validate(spec, cond)
    compile_match(ctx, who.workspace_id, spec.filter)
    _check_timing(merged["window_s"], merged["every_s"], merged["cooldown_s"])
    allowed = ("name", "window_s", "every_s", "cooldown_s", "channel_ids", "enabled")
    values = {k: merged[k] for k in allowed}
    values.update(metric=asdict(spec), condition=asdict(cond), updated_at=ctx.clock())
    measured = (current["metric"], current["condition"], current["window_s"])
    if measured != (values["metric"], values["condition"], values["window_s"]):
        # A different question: the detector starts afresh (a firing alert freezes the
        # baseline it sees at its next evaluation and still resolves with one notification).
        values["detector_state"] = None

    def write(conn: Connection) -> None:
        canary_alerts.check_metric(conn, who.workspace_id, current["project_id"], spec)
        self_watch.check_metric(conn, who.workspace_id, spec)
        _check_channels(conn, who, values["channel_ids"])
        store.update_rule(conn, who.workspace_id, rule_id, values)

    ctx.db.write(write)
    audit.record(
        ctx,
        who,
        "alert_rule.updated",
        target_type="alert_rule",
        target_id=rule_id,
        details={"name": values["name"], "changed": sorted(changes)},
    )
    return get_rule(ctx, who, rule_id)


def delete_rule(ctx: ServiceContext, who: Principal, rule_id: str) -> None:
    if not ctx.db.write(lambda c: store.delete_rule(c, who.workspace_id, rule_id)):
        raise NotFound(f"no alert rule with id {rule_id!r}")
    audit.record(ctx, who, "alert_rule.deleted", target_type="alert_rule", target_id=rule_id)


def acknowledge(ctx: ServiceContext, who: Principal, rule_id: str, by: str) -> Row:
    rule = get_rule(ctx, who, rule_id)
    if rule["state"] != "firing":
        raise Conflict("only a firing alert can be acknowledged")
    now = ctx.clock()

    def write(conn: Connection) -> None:
        store.update_rule(
            conn, who.workspace_id, rule_id, {"acknowledged_at": now, "acknowledged_by": by}
        )
        store.insert_event(
            conn,
            {
                "id": str(uuid.uuid4()),
                "alert_rule_id": rule_id,
                "kind": "acknowledged",
                "at": now,
                "reason": f"acknowledged by {by}",
                "numbers": None,
                "worst_run_ids": None,
            },
        )

    ctx.db.write(write)
    return get_rule(ctx, who, rule_id)


def events(ctx: ServiceContext, who: Principal, rule_id: str, limit: int = 100) -> list[Row]:
    get_rule(ctx, who, rule_id)
    return ctx.db.read(lambda c: store.list_events(c, rule_id, limit))


# --- evaluation -----------------------------------------------------------------------------


def _window(
    conn: Connection,
    rule: Row,
    spec: MetricSpec,
    match: ColumnElement[bool] | None,
    start: int,
    end: int,
) -> WindowStats:
    if spec.kind in RUN_METRICS:
        agg = alert_metrics.run_metric(
            conn, spec.kind, rule["project_id"], start, end, extra_where=match
        )
    else:
        assert spec.key is not None  # validated on create
        agg = alert_metrics.feedback_metric(
            conn,
            spec.kind,
            rule["workspace_id"],
            rule["project_id"],
            spec.key,
            start,
            end,
            pass_threshold=spec.pass_threshold,
            category=spec.category,
            extra_where=match,
        )
    worst = tuple(agg.get("worst", ()))
    n = agg["n"]
    if "successes" in agg:  # a rate: error_rate, feedback_pass_rate, category_share
        value = agg["successes"] / n if n else None
        return WindowStats(n, value, successes=agg["successes"], worst_run_ids=worst)
    if "sum" in agg:  # a mean: cost, feedback_mean
        moments = Moments.from_sums(n, agg["sum"], agg["sum_sq"])
        return WindowStats(n, moments.mean if n else None, moments=moments, worst_run_ids=worst)
    if spec.kind == "latency_p95":
        return WindowStats(n, agg["value"], worst_run_ids=worst)
    return WindowStats(n, float(n))


def _buckets(
    conn: Connection,
    rule: Row,
    spec: MetricSpec,
    match: ColumnElement[bool] | None,
    the_plan: detector.Plan,
) -> list[detector.Bucket]:
    if the_plan.buckets_from_us >= the_plan.buckets_until_us:
        return []
    rows = alert_metrics.buckets(
        conn,
        spec.kind,
        rule["workspace_id"],
        rule["project_id"],
        the_plan.buckets_from_us,
        the_plan.buckets_until_us,
        detector.BUCKET_S * 1_000_000,
        key=spec.key,
        pass_threshold=spec.pass_threshold,
        category=spec.category,
        extra_where=match,
    )
    return [
        detector.Bucket(r["start_us"], r["n"], r.get("successes", 0), r.get("sum", 0.0))
        for r in rows
    ]


def step(ctx: ServiceContext, rule: Row, now: int) -> domain.Step:
    """Measure what the rule's condition needs at ``now`` and take one step of its state."""
    spec, cond = parse_metric(rule["metric"]), parse_condition(rule["condition"])
    if spec.kind == "judge_drift":
        return canary_alerts.step_drift(ctx, rule, spec, now)
    timing = {
        "now_us": now,
        "last_resolved_us": rule["last_resolved_at"],
        "cooldown_s": rule["cooldown_s"],
    }
    if spec.kind in self_watch.GAUGES:
        current = self_watch.measure(ctx, rule["workspace_id"], spec, now)
        state = detector.DetectorState.from_json(rule.get("detector_state"))
        return domain.step_threshold(spec, cond, rule["state"], current, state, **timing)
    window = rule["window_s"] * 1_000_000
    match = compile_match(ctx, rule["workspace_id"], spec.filter)
    state = detector.DetectorState.from_json(rule.get("detector_state"))
    if cond.type != "change":
        current = ctx.db.read(lambda c: _window(c, rule, spec, match, now - window, now))
        return domain.step_threshold(spec, cond, rule["state"], current, state, **timing)
    the_plan = detector.plan(
        state,
        now_us=now,
        window_s=rule["window_s"],
        baseline_windows=cond.baseline_windows,
        settle_s=cond.settle_s,
    )

    def read(conn: Connection) -> tuple[WindowStats, WindowStats, list[detector.Bucket]]:
        recent = _window(conn, rule, spec, match, now - window, now)
        base = _window(
            conn, rule, spec, match, the_plan.baseline_from_us, the_plan.baseline_until_us
        )
        return recent, base, _buckets(conn, rule, spec, match, the_plan)

    recent, base, buckets = ctx.db.read(read)
    return domain.step_change(
        spec,
        cond,
        rule["state"],
        state,
        the_plan,
        buckets,
        base,
        recent,
        window_s=rule["window_s"],
        **timing,
    )


def evaluate_rule(ctx: ServiceContext, rule: Row, now: int) -> str | None:
    """Evaluate one rule at ``now``; record and notify a state change. Returns the event kind."""
    outcome = step(ctx, rule, now)
    spec, cond = parse_metric(rule["metric"]), parse_condition(rule["condition"])
    outcome = canary_alerts.annotate(ctx, rule, spec, cond, outcome, now)
    evaluation, transition = outcome.evaluation, outcome.transition
    summary = {**evaluation.numbers(), "reason": evaluation.reason, "decided": evaluation.decided}

    def write(conn: Connection) -> None:
        values: Row = {
            "last_evaluation": summary,
            "state": transition.new_state,
            "detector_state": outcome.detector.to_json(),
        }
        if transition.event is None:
            store.update_rule(conn, rule["workspace_id"], rule["id"], values)
            return
        event_id = str(uuid.uuid4())
        if transition.event == "fired":
            values.update(last_fired_at=now, acknowledged_at=None, acknowledged_by=None)
        else:
            values.update(last_resolved_at=now)
        store.update_rule(conn, rule["workspace_id"], rule["id"], values)
        store.insert_event(
            conn,
            {
                "id": event_id,
                "alert_rule_id": rule["id"],
                "kind": transition.event,
                "at": now,
                "reason": evaluation.reason,
                "numbers": evaluation.numbers(),
                "worst_run_ids": list(evaluation.worst_run_ids),
            },
        )
        _notify(ctx, conn, rule, transition.event, event_id, evaluation, now)

    ctx.db.write(write)
    return transition.event


def _notify(
    ctx: ServiceContext,
    conn: Connection,
    rule: Row,
    event: str,
    event_id: str,
    evaluation: Evaluation,
    now: int,
) -> None:
    project = project_store.get(conn, rule["workspace_id"], rule["project_id"])
    base = ctx.settings.base_url
    notice = AlertNotice(
        alert_rule_id=rule["id"],
        alert_name=rule["name"],
        project_name=project.name if project else rule["project_id"],
        event=event,
        at_iso=to_iso(now) or "",
        reason=evaluation.reason,
        numbers=evaluation.numbers(),
        worst_runs=[{"id": r, "url": f"{base}/runs/{r}"} for r in evaluation.worst_run_ids],
        alert_url=f"{base}/alerts/{rule['id']}",
    )
    for channel_id in rule["channel_ids"]:
        channel = store.get_channel(conn, rule["workspace_id"], channel_id)
        if channel is None:  # deleted since the rule was saved
            continue
        if channel["url"].endswith(MASKED_PATH):
            # imported without its URL and keys (docs/export.md): off until re-created
            continue
        deliveries.enqueue(
            ctx,
            conn,
            workspace_id=rule["workspace_id"],
            idempotency_key=f"alert:{event_id}:{channel_id}",
            url=channel["url"],
            body=body_for(channel["kind"], notice, channel["secret"]),
            channel_id=channel_id,
        )


def evaluate_due(
    ctx: ServiceContext, kinds: frozenset[str] | None = None
) -> list[tuple[str, str | None]]:
    """Evaluate every enabled rule whose time has come (of the metric ``kinds``, or all);
    returns (rule id, event) pairs."""
    now = ctx.clock()
    done: list[tuple[str, str | None]] = []
    for rule in ctx.db.read(lambda c: store.due_rules(c, now)):
        if kinds is not None and rule["metric"].get("kind") not in kinds:
            continue
        seen = rule["last_evaluated_at"]
        claim = partial(store.claim_rule, rule_id=rule["id"], seen_evaluated_at=seen, now_us=now)
        if not ctx.db.write(claim):
            continue  # another worker evaluated it for this tick
        done.append((rule["id"], evaluate_rule(ctx, rule, now)))
    return done
