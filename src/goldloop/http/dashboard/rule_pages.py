"""Automation rules: each rule with its status, lag and outcomes; one rule's action history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.domain.errors import Conflict, InvalidInput
from goldloop.domain.outbound import masked_url
from goldloop.http.dashboard import web
from goldloop.services import alignment, canaries, projects, rules
from goldloop.services.sessions import Session

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

HISTORY = 200
CANARY_RUNS = 30


def describe_actions(actions: list[dict[str, Any]]) -> str:
    parts = []
    for action in actions:
        kind = str(action.get("type", "?"))
        config = action.get("config") or action
        url = config.get("url")
        shown_url = masked_url(url) if isinstance(url, str) else None
        target = config.get("dataset") or config.get("evaluator") or shown_url
        parts.append(f"{kind} → {target}" if target else kind)
    return ", ".join(parts)


@router.get("/rules")
def rule_list(request: Request, session: web.SignedIn) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    names = {p.id: p.name for p in projects.list_projects(ctx, who, limit=1000).items}
    items = [rules.get_rule(ctx, who, r["id"]) for r in rules.list_rules(ctx, who)]
    for item in items:
        item["project_name"] = names.get(item["project_id"], item["project_id"])
        item["actions_text"] = describe_actions(item.get("actions") or [])
    items.sort(key=lambda r: (not r["enabled"], r["name"]))
    return web.render(request, "rules.html", rules=items)


@router.get("/rules/{rule_id}")
def rule_page(
    request: Request, rule_id: str, session: web.SignedIn, status: str | None = None
) -> Response:
    return _rule_page(request, rule_id, session, status)


def _rule_page(
    request: Request,
    rule_id: str,
    session: Session,
    status: str | None = None,
    canary_problem: str | None = None,
    problem_status: int = 400,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    rule = rules.get_rule(ctx, who, rule_id)
    project = projects.get(ctx, who, rule["project_id"])
    shown = status if status in ("pending", "done", "failed", "skipped") else None
    actions = rules.history(ctx, who, rule_id, status=shown, limit=HISTORY)
    for a in actions:
        a["lag_us"] = (
            None
            if a.get("ingested_at") is None or a["status"] == "pending"
            else max(0, a["updated_at"] - a["ingested_at"])
        )
    alignments = [
        alignment.judge_alignment(
            ctx, who, alignment.AlignmentQuery(judge_key=key, rule_id=rule["id"])
        )
        for key in judge_keys(rule, actions)
    ]
    canary_sets = canaries.list_sets(ctx, who, rule_id=rule_id)
    canary_set = canary_sets[0] if canary_sets else None
    return web.render(
        request,
        "rule.html",
        status_code=problem_status if canary_problem else 200,
        has_judge=canaries.judge_spec(rule.get("actions") or []) is not None,
        canary_set=canary_set,
        canary_runs=canaries.list_runs(ctx, who, canary_set["id"], limit=CANARY_RUNS)
        if canary_set
        else [],
        canary_problem=canary_problem,
        default_interval_s=ctx.settings.canary_interval_s,
        is_admin=who.is_admin,
        rule={**rule, "actions_text": describe_actions(rule.get("actions") or [])},
        project=project,
        actions=actions,
        status=shown,
        limit=HISTORY,
        alignments=alignments,
    )


def judge_keys(rule: dict[str, Any], actions: list[dict[str, Any]]) -> list[str]:
    """The feedback keys the rule's judge has written, read off its recent actions' results
    (a judge's key comes from its configuration and its evaluator's defaults)."""
    judges = set()
    for a in rule.get("actions") or []:
        judge = (a.get("config") or a).get("judge")
        if a.get("type") == "evaluate" and isinstance(judge, dict):
            judges.add(judge.get("name"))
    keys: list[str] = []
    for action in actions:
        detail = action.get("detail")
        scores = detail.get("scores") if isinstance(detail, dict) else None
        for score in scores if isinstance(scores, list) else []:
            if (
                isinstance(score, dict)
                and score.get("evaluator") in judges
                and isinstance(score.get("key"), str)
                and score["key"] not in keys
            ):
                keys.append(score["key"])
    return keys


def _int(form: dict[str, str], name: str, default: int) -> int:
    try:
        return int(form.get(name) or default)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number", details={"field": name}) from None


@router.post("/rules/{rule_id}/canaries")
def freeze_canaries(
    request: Request, rule_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    """The rule page's "Freeze canary set" button (admin keys)."""
    try:
        canaries.create_set(
            web.ctx_of(request),
            session.principal,
            rule_id,
            size=_int(form, "size", 100),
            selection=form.get("selection") or "balanced",
        )
    except (InvalidInput, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        return _rule_page(request, rule_id, session, None, exc.message, status)
    return web.redirect(f"/rules/{web.seg(rule_id)}#canaries")


@router.post("/canary-sets/{set_id}/run")
def run_canaries(request: Request, set_id: str, session: web.SignedIn, form: web.Form) -> Response:
    ctx = web.ctx_of(request)
    rule_id = canaries.get_set(ctx, session.principal, set_id)["rule_id"]
    try:
        canaries.run_now(ctx, session.principal, set_id)
    except Conflict as exc:
        return _rule_page(request, rule_id, session, None, exc.message, 409)
    return web.redirect(f"/rules/{web.seg(rule_id)}#canaries")


@router.post("/canary-sets/{set_id}/accept")
def accept_canaries(
    request: Request, set_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    rule_id = canaries.get_set(ctx, session.principal, set_id)["rule_id"]
    try:
        canaries.accept(ctx, session.principal, set_id)
    except InvalidInput as exc:
        return _rule_page(request, rule_id, session, canary_problem=exc.message)
    return web.redirect(f"/rules/{web.seg(rule_id)}#canaries")
