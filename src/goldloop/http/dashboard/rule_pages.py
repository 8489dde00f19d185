"""Automation rules: each rule with its status, lag and outcomes; one rule's action history."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.domain import filters
from goldloop.domain.errors import Conflict, Forbidden, InvalidInput
from goldloop.domain.outbound import masked_url
from goldloop.domain.rules import TRIGGERS, masked_actions
from goldloop.http.dashboard import web
from goldloop.services import alignment, canaries, projects, rules, run_queries, run_table
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.sessions import Session

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

HISTORY = 50
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
    return _list_page(request, session)


@router.get("/rules/preview")
def preview_fragment(
    request: Request,
    session: web.SignedIn,
    project_id: str = "",
    filter: str = "",
    root_only: bool = False,
) -> Response:
    """The rule form's filter preview alone (an HTML fragment, escaped like the page): what the
    form's script fetches as the filter is typed; the same as the "Preview the filter" button."""
    require_admin(session.principal)
    shown = preview(web.ctx_of(request), session.principal, project_id, filter, root_only)
    return web.render(request, "_rule_preview.html", preview=shown)


@router.get("/rules/{rule_id}")
def rule_page(
    request: Request,
    rule_id: str,
    session: web.SignedIn,
    status: str | None = None,
    before: int | None = None,
    saved: int = 0,
) -> Response:
    return _rule_page(request, rule_id, session, status, before=before, saved=bool(saved))


def _rule_page(
    request: Request,
    rule_id: str,
    session: Session,
    status: str | None = None,
    canary_problem: str | None = None,
    problem_status: int = 400,
    *,
    before: int | None = None,
    saved: bool = False,
    problem: str | None = None,
    form_values_: dict[str, Any] | None = None,
    preview_result: dict[str, Any] | None = None,
    signing_secret: str | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    rule = rules.get_rule(ctx, who, rule_id)
    project = projects.get(ctx, who, rule["project_id"])
    shown = status if status in ("pending", "done", "failed", "skipped") else None
    actions = rules.history(ctx, who, rule_id, status=shown, limit=HISTORY + 1, before=before)
    older = actions[HISTORY - 1]["pk"] if len(actions) > HISTORY else None
    actions = actions[:HISTORY]
    for a in actions:
        a["scores"] = action_scores(a.get("detail"))
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
        status_code=problem_status if canary_problem or problem else 200,
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
        before=before,
        older=older,
        alignments=alignments,
        form=form_values_ or rule_values(rule),
        problem=problem,
        saved=saved,
        preview=preview_result,
        signing_secret=signing_secret,
        examples=EXAMPLES_TEXT,
    )


def action_scores(detail: Any) -> list[dict[str, Any]]:
    """The scores an action wrote (an ``evaluate`` action's detail), each key with its number
    (or its value when the evaluator gave a label rather than a score)."""
    scores = detail.get("scores") if isinstance(detail, dict) else None
    return [
        {"key": str(s.get("key")), "score": s.get("score"), "value": s.get("value")}
        for s in (scores if isinstance(scores, list) else [])
        if isinstance(s, dict) and s.get("key") is not None
    ]


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


# ---- creating and editing rules from the browser (admin keys) ----

PREVIEW_RUNS = 10
PREVIEW_WINDOW_US = 24 * 3600 * 1_000_000

ACTION_EXAMPLES = {
    "add_to_dataset": {"type": "add_to_dataset", "dataset": "support-golden", "split": "prod"},
    "evaluate": {
        "type": "evaluate",
        "evaluators": [{"name": "regex", "config": {"key": "refund_ok", "pattern": "refund"}}],
    },
    "webhook": {"type": "webhook", "url": "https://hooks.example.com/goldloop"},
    "add_to_queue": {"type": "add_to_queue", "queue": "triage"},
}


def require_admin(who: Principal) -> None:
    if not who.is_admin:
        raise Forbidden("this needs an admin API key (goldloop keys create --role admin)")


def actions_json(actions: list[dict[str, Any]]) -> str:
    """A rule's actions as the form's text: secrets as ***, webhook URLs cut (the service
    restores both when they come back unchanged)."""
    return json.dumps(masked_actions(actions), indent=2, ensure_ascii=False)


def _float(form: dict[str, str], name: str, default: float) -> float:
    text = (form.get(name) or "").strip()
    try:
        return float(text) if text else default
    except ValueError:
        raise InvalidInput(f"{name} must be a number", details={"field": name}) from None


def rule_fields(form: dict[str, str]) -> dict[str, Any]:
    """The rule form's fields, checked as the API's request model checks them."""
    name = (form.get("name") or "").strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("name must be 1 to 200 characters", details={"field": "name"})
    trigger = form.get("trigger") or "run"
    if trigger not in TRIGGERS:
        raise InvalidInput(
            f"trigger must be one of {', '.join(TRIGGERS)}", details={"field": "trigger"}
        )
    try:
        actions = json.loads(form.get("actions") or "")
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"actions is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            details={"field": "actions"},
        ) from None
    if isinstance(actions, dict):
        actions = [actions]
    budget_text = (form.get("daily_judge_budget") or "").strip()
    return {
        "name": name,
        "trigger": trigger,
        "filter": (form.get("filter") or "").strip(),
        "sample_rate": _float(form, "sample_rate", 1.0),
        "root_only": form.get("root_only") == "on",
        "actions": actions,
        "enabled": form.get("enabled") == "on",
        "daily_judge_budget": _int(form, "daily_judge_budget", 0) if budget_text else None,
    }


def form_values(form: dict[str, str]) -> dict[str, Any]:
    """What the person typed, to show the form again as it was."""
    keys = ("name", "project_id", "trigger", "filter", "sample_rate", "actions")
    values: dict[str, Any] = {k: form.get(k) or "" for k in keys}
    values["daily_judge_budget"] = form.get("daily_judge_budget") or ""
    values["root_only"] = form.get("root_only") == "on"
    values["enabled"] = form.get("enabled") == "on"
    return values


def rule_values(rule: dict[str, Any]) -> dict[str, Any]:
    budget = rule.get("daily_judge_budget")
    return {
        "name": rule["name"],
        "project_id": rule["project_id"],
        "trigger": rule["trigger"],
        "filter": rule.get("filter") or "",
        "sample_rate": f"{rule['sample_rate']:g}",
        "actions": actions_json(rule.get("actions") or []),
        "daily_judge_budget": "" if budget is None else str(budget),
        "root_only": bool(rule.get("root_only")),
        "enabled": bool(rule.get("enabled")),
    }


NEW_RULE = {
    "name": "",
    "project_id": "",
    "trigger": "run",
    "filter": "",
    "sample_rate": "1",
    "actions": json.dumps([ACTION_EXAMPLES["add_to_dataset"]], indent=2),
    "daily_judge_budget": "",
    "root_only": True,
    "enabled": True,
}


def preview(
    ctx: ServiceContext, who: Principal, project_id: str, text: str, root_only: bool
) -> dict[str, Any]:
    """How many of the project's runs the filter matched in the last 24 hours, and the newest
    ones, by the same filter compiler the rule runs with; a bad filter gives its error."""
    if not project_id:
        return {"error": "choose a project to preview the filter on"}
    where = text.strip()
    if root_only:
        where = f"root and ({where})" if where else "root"
    start = ctx.clock() - PREVIEW_WINDOW_US
    try:
        filters.parse(text)  # the person's own text, so a position points into it
        count = run_table.count_runs(ctx, who, project_id, filter=where, start=start)
        page = run_queries.list_runs(
            ctx, who, project=project_id, filter=where, start=start, limit=PREVIEW_RUNS, light=True
        )
    except InvalidInput as exc:
        return {"error": exc.message}
    return {
        "count": count,
        "capped": count > run_table.COUNT_CAP,
        "cap": run_table.COUNT_CAP,
        "runs": page["items"],
        "where": where,
    }


def _list_page(
    request: Request,
    session: Session,
    *,
    values: dict[str, Any] | None = None,
    problem: str | None = None,
    status_code: int = 200,
    preview_result: dict[str, Any] | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project_list = projects.list_projects(ctx, who, limit=1000).items
    names = {p.id: p.name for p in project_list}
    items = [rules.get_rule(ctx, who, r["id"]) for r in rules.list_rules(ctx, who)]
    for item in items:
        item["project_name"] = names.get(item["project_id"], item["project_id"])
        item["actions_text"] = describe_actions(item.get("actions") or [])
    items.sort(key=lambda r: (not r["enabled"], r["name"]))
    return web.render(
        request,
        "rules.html",
        status_code=status_code,
        rules=items,
        is_admin=who.is_admin,
        projects=project_list,
        form=values or NEW_RULE,
        problem=problem,
        preview=preview_result,
        examples=EXAMPLES_TEXT,
    )


EXAMPLES_TEXT = {k: json.dumps(v, indent=2) for k, v in ACTION_EXAMPLES.items()}


@router.post("/rules")
def create_rule(request: Request, session: web.SignedIn, form: web.Form) -> Response:
    """The "New rule" form; its "Preview" button shows what the filter matches instead."""
    who = session.principal
    require_admin(who)
    ctx = web.ctx_of(request)
    values = form_values(form)
    if form.get("do") == "preview":
        shown = preview(ctx, who, values["project_id"], values["filter"], values["root_only"])
        return _list_page(request, session, values=values, preview_result=shown)
    try:
        if not values["project_id"]:
            raise InvalidInput("choose a project", details={"field": "project_id"})
        made = rules.create_rule(ctx, who, values["project_id"], rule_fields(form))
    except InvalidInput as exc:  # an unknown project stays a 404, as in the API
        return _list_page(request, session, values=values, problem=exc.message, status_code=400)
    return _rule_page(request, made["id"], session, signing_secret=made["signing_secret"])


@router.post("/rules/{rule_id}")
def edit_rule(request: Request, rule_id: str, session: web.SignedIn, form: web.Form) -> Response:
    """The rule page's "Edit" form (and its "Preview" button)."""
    who = session.principal
    require_admin(who)
    ctx = web.ctx_of(request)
    rules.get_rule(ctx, who, rule_id)  # 404 before anything else
    values = form_values(form)
    if form.get("do") == "preview":
        current = rules.get_rule(ctx, who, rule_id)
        shown = preview(ctx, who, current["project_id"], values["filter"], values["root_only"])
        return _rule_page(request, rule_id, session, form_values_=values, preview_result=shown)
    try:
        fields = rule_fields(form)
        if fields["daily_judge_budget"] is None:
            fields.pop("daily_judge_budget")
        rules.update_rule(ctx, who, rule_id, fields)
    except InvalidInput as exc:
        return _rule_page(
            request, rule_id, session, form_values_=values, problem=exc.message, problem_status=400
        )
    return web.redirect(f"/rules/{web.seg(rule_id)}?saved=1")


@router.post("/rules/{rule_id}/enabled")
def set_enabled(request: Request, rule_id: str, session: web.SignedIn, form: web.Form) -> Response:
    """The rule page's Enable / Disable button."""
    who = session.principal
    require_admin(who)
    try:
        rules.update_rule(
            web.ctx_of(request), who, rule_id, {"enabled": form.get("enabled") == "true"}
        )
    except InvalidInput as exc:
        return _rule_page(request, rule_id, session, problem=exc.message, problem_status=400)
    return web.redirect(f"/rules/{web.seg(rule_id)}")


@router.post("/rules/{rule_id}/delete")
def delete_rule(request: Request, rule_id: str, session: web.SignedIn, form: web.Form) -> Response:
    """Delete: the first press shows a confirmation form; its button deletes."""
    who = session.principal
    require_admin(who)
    ctx = web.ctx_of(request)
    rule = rules.get_rule(ctx, who, rule_id)
    if form.get("confirm") != "yes":
        return web.render(request, "rule_delete.html", rule=rule)
    rules.delete_rule(ctx, who, rule_id)
    return web.redirect("/rules")
