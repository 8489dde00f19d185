"""Alerts: rules with their state and lag, one rule's history and score chart, acknowledge."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from goldloop.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from goldloop.domain.notifications import CHANNEL_KINDS
from goldloop.domain.outbound import masked_url
from goldloop.http.dashboard import charts, formatting, web
from goldloop.http.routes.alerts import AlertRuleIn, AlertRulePatch
from goldloop.services import alerts, feedback, projects, run_queries
from goldloop.services.sessions import Session

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

CHART_DAYS = 7
CHART_BUCKET = "6h"
Pick = Callable[[dict[str, Any]], float | None]
RUN_SERIES: dict[str, tuple[Pick, Callable[[float], str]]] = {  # metric -> (value, formatter)
    "error_rate": (lambda b: b["error_rate"], formatting.percent),
    "latency_p95": (lambda b: b["latency_ms"]["p95"], formatting.duration_ms),
    "cost": (lambda b: b["cost"], formatting.cost),
    "volume": (lambda b: float(b["count"]), formatting.number),
}


def describe_metric(metric: dict[str, Any]) -> str:
    kind = str(metric.get("kind"))
    parts = [kind.replace("_", " ")]
    if metric.get("key"):
        parts.append(f"of {metric['key']}")
    if metric.get("category"):
        parts.append(f"= {metric['category']}")
    if metric.get("filter"):
        parts.append(f"where {metric['filter']}")
    if kind == "judge_drift":
        rule = metric.get("rule_id")
        parts.append(
            f"on the canaries of rule {rule}" if rule else "on every judge rule's canaries"
        )
    return " ".join(parts)


def describe_condition(cond: dict[str, Any]) -> str:
    hold = cond.get("resolve_after_s", 900)
    if cond.get("type") == "drift":
        return (
            "the latest canary run shows the judge's agreement with people significantly down "
            "from its baseline (resolves at a clean run or when the run is accepted)"
        )
    if cond.get("type") == "change":
        effect = cond.get("min_effect") or "default"
        return (
            f"sustained change of at least {effect} vs the {cond.get('baseline_windows')} "
            f"windows before (at most one false page per {cond.get('false_page_days', 30):g} "
            f"days on steady traffic, at least {cond.get('min_samples')} baseline samples; "
            f"resolves after {hold} s back near the baseline)"
        )
    return f"{cond.get('op')} {cond.get('value')} (resolves after {hold} s back)"


def _rule_view(rule: dict[str, Any], names: dict[str, str], now: int) -> dict[str, Any]:
    evaluated = rule.get("last_evaluated_at")
    return {
        **rule,
        "project_name": names.get(rule["project_id"], rule["project_id"]),
        "metric_text": describe_metric(rule["metric"]),
        "condition_text": describe_condition(rule["condition"]),
        "lag_us": None if evaluated is None else max(0, now - evaluated),
        "last": rule.get("last_evaluation") or {},
    }


@router.get("/alerts")
def alert_list(request: Request, session: web.SignedIn) -> Response:
    return _alert_list(request, session)


def _alert_list(
    request: Request,
    session: Session,
    *,
    channel_form: dict[str, str] | None = None,
    channel_problem: str | None = None,
    status_code: int = 200,
    signing_secret: str | None = None,
    rule_form: dict[str, Any] | None = None,
    rule_problem: str | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project_list = projects.list_projects(ctx, who, limit=1000).items
    names = {p.id: p.name for p in project_list}
    now = ctx.clock()
    rules = [_rule_view(r, names, now) for r in alerts.list_rules(ctx, who)]
    rules.sort(key=lambda r: (r["state"] != "firing", not r["enabled"], r["name"]))
    channels = [
        {
            "id": c["id"],
            "name": c["name"],
            "kind": c["kind"],
            "url": masked_url(c["url"]),
            "has_secret": bool(c.get("secret")),
        }
        for c in alerts.list_channels(ctx, who)
    ]
    return web.render(
        request,
        "alerts.html",
        status_code=status_code,
        rules=rules,
        channels=channels,
        channel_kinds=CHANNEL_KINDS,
        channel_form=channel_form or {"name": "", "kind": "webhook", "url": ""},
        channel_problem=channel_problem,
        signing_secret=signing_secret,
        is_admin=who.is_admin,
        projects=project_list,
        rule_form=rule_form or NEW_ALERT,
        rule_problem=rule_problem,
    )


NEW_ALERT: dict[str, Any] = {
    "name": "",
    "project_id": "",
    "metric": '{"kind": "error_rate"}',
    "condition": '{"type": "threshold", "op": ">", "value": 0.1, "min_samples": 20}',
    "window_s": "3600",
    "every_s": "60",
    "cooldown_s": "900",
    "channel_ids": [],
    "enabled": True,
}


def _alert_values(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": rule["name"],
        "project_id": rule["project_id"],
        "metric": json.dumps({k: v for k, v in rule["metric"].items() if v is not None}),
        "condition": json.dumps({k: v for k, v in rule["condition"].items() if v is not None}),
        "window_s": str(rule["window_s"]),
        "every_s": str(rule["every_s"]),
        "cooldown_s": str(rule["cooldown_s"]),
        "channel_ids": list(rule.get("channel_ids") or []),
        "enabled": bool(rule["enabled"]),
    }


def _typed(form: dict[str, list[str]]) -> dict[str, Any]:
    """The alert form as typed, to show it again."""
    one = {k: (v[0] if v else "") for k, v in form.items()}
    return {
        **{k: one.get(k, "") for k in NEW_ALERT if k not in ("channel_ids", "enabled")},
        "channel_ids": form.get("channel_ids", []),
        "enabled": one.get("enabled") == "on",
    }


def _alert_body(form: dict[str, list[str]]) -> dict[str, Any]:
    one = {k: (v[0] if v else "") for k, v in form.items()}
    return {
        "name": one.get("name", "").strip(),
        "metric": _json_field(form, "metric"),
        "condition": _json_field(form, "condition"),
        "window_s": one.get("window_s") or 3600,
        "every_s": one.get("every_s") or 60,
        "cooldown_s": one.get("cooldown_s") or 900,
        "channel_ids": form.get("channel_ids", []),
        "enabled": one.get("enabled") == "on",
    }


def _validated(model: type[AlertRuleIn] | type[AlertRulePatch], body: dict[str, Any]) -> Any:
    """The body checked by the API's own request model (so the same messages)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise InvalidInput(problems) from None


def _json_field(form: dict[str, list[str]], name: str) -> Any:
    text = (form.get(name) or [""])[0]
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            details={"field": name},
        ) from None


@router.post("/alerts")
def alert_create(request: Request, session: web.SignedIn, form: web.FormLists) -> Response:
    """The "New alert rule" form (admin keys), checked by the API's own request model."""
    _require_admin(session)
    shown = _typed(form)
    try:
        project_id = (form.get("project_id") or [""])[0]
        body = {"project_id": project_id, **_alert_body(form)}
        data = _validated(AlertRuleIn, body).model_dump()
        made = alerts.create_rule(web.ctx_of(request), session.principal, **data)
    except InvalidInput as exc:  # an unknown project stays a 404, as in the API
        return _alert_list(
            request, session, rule_form=shown, rule_problem=exc.message, status_code=400
        )
    return web.redirect(f"/alerts/{web.seg(made['id'])}")


@router.post("/alerts/channels")
def channel_create(request: Request, session: web.SignedIn, form: web.Form) -> Response:
    """The "New channel" form (admin keys); the secret is never shown back."""
    _require_admin(session)
    shown = {k: (form.get(k) or "").strip() for k in ("name", "kind", "url")}
    try:
        if not 1 <= len(shown["name"]) <= 200:
            raise InvalidInput("channel name must be 1 to 200 characters")
        if len(shown["url"]) > 2000:
            raise InvalidInput("channel url must be at most 2000 characters")
        made = alerts.create_channel(
            web.ctx_of(request),
            session.principal,
            name=shown["name"],
            kind=shown["kind"],
            url=shown["url"],
            secret=(form.get("secret") or "").strip() or None,
        )
    except (InvalidInput, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        return _alert_list(
            request, session, channel_form=shown, channel_problem=exc.message, status_code=status
        )
    return _alert_list(request, session, signing_secret=made.get("signing_secret") or "")


@router.post("/alerts/channels/{channel_id}/delete")
def channel_delete(
    request: Request, channel_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    """Delete a channel: the first press asks to confirm."""
    _require_admin(session)
    ctx = web.ctx_of(request)
    found = [c for c in alerts.list_channels(ctx, session.principal) if c["id"] == channel_id]
    if not found:
        raise NotFound(f"no channel with id {channel_id!r}")
    if form.get("confirm") != "yes":
        return web.render(request, "channel_delete.html", channel=found[0])
    alerts.delete_channel(ctx, session.principal, channel_id)
    return web.redirect("/alerts#channels")


def _score_chart(
    request: Request, session: Session, rule: dict[str, Any], history: list[dict[str, Any]]
) -> charts.Chart | None:
    """The rule's metric over the last week, with a marker per fired/resolved event."""
    ctx = web.ctx_of(request)
    who = session.principal
    end = ctx.clock()
    bucket_us = run_queries.parse_bucket(CHART_BUCKET)
    start = end - CHART_DAYS * 86_400_000_000
    metric = rule["metric"]
    kind = metric.get("kind")
    if kind in RUN_SERIES:
        pick, fmt = RUN_SERIES[kind]
        stats = run_queries.project_stats(
            ctx,
            who,
            rule["project_id"],
            bucket=CHART_BUCKET,
            start=str(start),
            end=str(end),
            filter=metric.get("filter"),
        )
        buckets = stats["buckets"]
        starts = [b["start"] for b in buckets]
        chart = charts.line_chart(
            describe_metric(metric), starts, [(kind, "s-a", [pick(b) for b in buckets])], fmt
        )
    elif metric.get("key"):
        rows = feedback.project_stats(
            ctx,
            who,
            rule["project_id"],
            bucket=CHART_BUCKET,
            since=start - bucket_us,
            until=end,
            key=metric["key"],
        )
        first = start // bucket_us * bucket_us
        starts = list(range(first, end, bucket_us))
        by_start = {r.bucket_start: r.mean_score for r in rows}
        values = [by_start.get(s) for s in starts]
        chart = charts.line_chart(
            f"mean score of {metric['key']}",
            starts,
            [(str(metric["key"]), "s-a", [None if v is None else float(v) for v in values])],
            formatting.number,
        )
    else:
        return None
    span = (starts[-1] - starts[0]) if len(starts) > 1 else 0
    for event in history:
        if event["kind"] in ("fired", "resolved") and starts and event["at"] >= starts[0]:
            charts.add_marker(
                chart,
                starts,
                event["at"],
                "m-fired" if event["kind"] == "fired" else "m-resolved",
                f"{event['kind']} {formatting.timestamp(event['at'])}: {event['reason']}",
                span,
            )
    return chart


# after /alerts/channels: a path segment there is not a rule id
@router.post("/alerts/{rule_id}")
def alert_edit(
    request: Request, rule_id: str, session: web.SignedIn, form: web.FormLists
) -> Response:
    """The alert page's "Edit" form (admin keys)."""
    _require_admin(session)
    ctx = web.ctx_of(request)
    alerts.get_rule(ctx, session.principal, rule_id)  # 404 before anything else
    try:
        patch = _validated(AlertRulePatch, _alert_body(form))
        alerts.update_rule(ctx, session.principal, rule_id, patch.model_dump())
    except InvalidInput as exc:
        return _alert_page(
            request, session, rule_id, rule_form=_typed(form), rule_problem=exc.message
        )
    return web.redirect(f"/alerts/{web.seg(rule_id)}")


@router.get("/alerts/{rule_id}")
def alert_page(request: Request, rule_id: str, session: web.SignedIn) -> Response:
    return _alert_page(request, session, rule_id)


def _alert_page(
    request: Request,
    session: Session,
    rule_id: str,
    problem: str | None = None,
    *,
    rule_form: dict[str, Any] | None = None,
    rule_problem: str | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    rule = alerts.get_rule(ctx, who, rule_id)
    channels = [{"id": c["id"], "name": c["name"]} for c in alerts.list_channels(ctx, who)]
    project = projects.get(ctx, who, rule["project_id"])
    history = alerts.events(ctx, who, rule_id, limit=200)
    return web.render(
        request,
        "alert.html",
        status_code=409 if problem else 400 if rule_problem else 200,
        rule=_rule_view(rule, {project.id: project.name}, ctx.clock()),
        channels=channels,
        rule_form=rule_form or _alert_values(rule),
        rule_problem=rule_problem,
        project=project,
        history=history,
        chart=_score_chart(request, session, rule, history),
        problem=problem,
        is_admin=who.is_admin,
    )


def _require_admin(session: Session) -> None:
    if not session.principal.is_admin:
        raise Forbidden("this needs an admin API key (goldloop keys create --role admin)")


@router.post("/alerts/{rule_id}/enabled")
def alert_enabled(
    request: Request, rule_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    """The alert page's Enable / Disable button (admin keys)."""
    _require_admin(session)
    enabled = form.get("enabled") == "true"
    try:
        alerts.update_rule(web.ctx_of(request), session.principal, rule_id, {"enabled": enabled})
    except InvalidInput as exc:
        return _alert_page(request, session, rule_id, exc.message)
    return web.redirect(f"/alerts/{web.seg(rule_id)}")


@router.post("/alerts/{rule_id}/delete")
def alert_delete(request: Request, rule_id: str, session: web.SignedIn, form: web.Form) -> Response:
    """Delete: the first press shows a confirmation form; its button deletes."""
    _require_admin(session)
    ctx = web.ctx_of(request)
    rule = alerts.get_rule(ctx, session.principal, rule_id)
    if form.get("confirm") != "yes":
        return web.render(request, "alert_delete.html", rule=rule)
    alerts.delete_rule(ctx, session.principal, rule_id)
    return web.redirect("/alerts")


@router.post("/alerts/{rule_id}/acknowledge")
def alert_acknowledge(
    request: Request, rule_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    try:
        alerts.acknowledge(
            web.ctx_of(request), session.principal, rule_id, f"dashboard ({session.key_name})"
        )
    except Conflict as exc:
        return _alert_page(request, session, rule_id, exc.message)
    return web.redirect(f"/alerts/{web.seg(rule_id)}")
