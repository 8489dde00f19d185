"""Automation rules: CRUD, the tailer that turns new runs into pending actions, backfill.

The tailer reads each rule's project from the rule's durable watermark up to the log horizon
(``store.log_horizon``), samples deterministically on the trace id, and writes one pending action
per (rule, run, action) together with the new watermark, in one transaction. Executing actions is
``services.rule_actions``' job. A crash anywhere replays from the last committed watermark, and
the (rule, object, action) key makes the replay a no-op for work already recorded.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.domain import filters
from goldloop.domain import rules as domain
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.domain.sampling import is_sampled
from goldloop.domain.webhook_signing import new_secret
from goldloop.services import audit, outbound, rule_evaluators
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import log_horizon
from goldloop.store import projects as project_store
from goldloop.store import rules as store
from goldloop.store.run_filters import compile_filter
from goldloop.store.schema import feedback, runs

Row = dict[str, Any]
TAIL_BATCH = 500


def compile_match(
    ctx: ServiceContext, workspace_id: str, text: str | None
) -> ColumnElement[bool] | None:
    """The rule's filter as a SQL condition (None: every run). Raises InvalidInput if bad."""
    if not text or not text.strip():
        return None
    node = filters.parse(text)
    return compile_filter(node, dialect=ctx.db.dialect, workspace_id=workspace_id, now=ctx.clock())


def _clean(ctx: ServiceContext, who: Principal, data: Row) -> Row:
    actions = domain.parse_actions(data["actions"])
    domain.check_rule(data["trigger"], float(data["sample_rate"]), actions)
    compile_match(ctx, who.workspace_id, data.get("filter"))  # validates the filter text
    _check_evaluators(ctx, actions, who.workspace_id)
    feedback_match = domain.parse_feedback_match(data.get("feedback_match"))
    if feedback_match is not None and data["trigger"] != "feedback":
        raise InvalidInput(
            "feedback_match applies to rules with trigger 'feedback'",
            details={"field": "feedback_match"},
        )
    budget = data.get("daily_judge_budget")
    if budget is not None and budget < 0:
        raise InvalidInput("daily_judge_budget must not be negative", details={"field": "budget"})
    return {
        "name": (data.get("name") or "").strip() or "rule",
        "trigger": data["trigger"],
        "filter": data.get("filter") or None,
        "sample_rate": float(data["sample_rate"]),
        "root_only": bool(data.get("root_only", True)),
        "actions": [{"type": a.type, **a.config} for a in actions],
        "enabled": bool(data.get("enabled", True)),
        "daily_judge_budget": budget,
        "feedback_match": feedback_match,
    }


def _check_evaluators(ctx: ServiceContext, actions: list[domain.Action], workspace_id: str) -> None:
    """Build every evaluator once so a bad name or config is a 400 now, not a failure later;
    every URL the rule would send to must be allowed by ``outbound_allowed_hosts``."""
    allowed = ctx.settings.outbound_allowed_hosts
    for i, action in enumerate(actions):
        if action.type == "webhook":
            outbound.check_url(
                allowed, ctx.resolve, action.config["url"], field_name=f"actions[{i}].url"
            )
        if action.type != "evaluate":
            continue
        specs = list(action.config["evaluators"])
        if action.config.get("judge"):
            specs.append(action.config["judge"])
        for spec in specs:
            base_url = (spec.get("config") or {}).get("base_url")
            if isinstance(base_url, str):
                field_name = f"actions[{i}].base_url"
                outbound.check_url(allowed, ctx.resolve, base_url, field_name=field_name)
            try:
                rule_evaluators.check(ctx, spec, workspace_id)
            except InvalidInput as exc:
                raise InvalidInput(
                    f"actions[{i}]: {exc.message}", details={"field": "actions"}
                ) from None


def create_rule(ctx: ServiceContext, who: Principal, project_id: str, data: Row) -> Row:
    values = _clean(ctx, who, data)
    now = ctx.clock()
    row = {
        "id": str(uuid.uuid4()),
        "workspace_id": who.workspace_id,
        "project_id": project_id,
        "created_at": now,
        "updated_at": now,
        "signing_secret": new_secret(),
        **values,
    }

    # A rule watches what arrives from now on (history is for backfill, on request): its
    # cursor starts at the head of its log, not at the project's first run.
    start = log_heads(ctx)[row["trigger"]]

    def write(conn: Connection) -> None:
        if project_store.get(conn, who.workspace_id, project_id) is None:
            raise NotFound(f"no project with id {project_id!r}")
        store.insert_rule(conn, row, now, start)

    ctx.db.write(write)
    audit.record(
        ctx,
        who,
        "rule.created",
        target_type="rule",
        target_id=row["id"],
        details={"name": row.get("name"), "project_id": project_id},
    )
    # the only time the secret leaves the server: the caller shows it once
    return {**get_rule(ctx, who, row["id"]), "signing_secret": row["signing_secret"]}


def get_rule(ctx: ServiceContext, who: Principal, rule_id: str) -> Row:
    def read(conn: Connection) -> Row | None:
        rule = store.get_rule(conn, who.workspace_id, rule_id)
        if rule is None:
            return None
        cursor = store.get_cursor(conn, rule_id) or {}
        return {**rule, **cursor, "outcomes": store.action_counts(conn, rule_id)}

    row = ctx.db.read(read)
    if row is None:
        raise NotFound(f"no rule with id {rule_id!r}")
    return row


def list_rules(ctx: ServiceContext, who: Principal, project_id: str | None = None) -> list[Row]:
    return ctx.db.read(lambda c: store.list_rules(c, who.workspace_id, project_id))


def update_rule(ctx: ServiceContext, who: Principal, rule_id: str, changes: Row) -> Row:
    current = get_rule(ctx, who, rule_id)
    if changes.get("actions") is not None:
        changes = {
            **changes,
            "actions": domain.unmask_actions(changes["actions"], current["actions"]),
        }
    merged = {**current, **{k: v for k, v in changes.items() if v is not None}}
    if "daily_judge_budget" in changes and changes["daily_judge_budget"] is None:
        merged["daily_judge_budget"] = current["daily_judge_budget"]
    if merged.get("enabled") and (cut := domain.masked_places(merged.get("actions"))):
        raise InvalidInput(
            f"{cut[0]} holds a masked secret or a cut URL (the rule came from a workspace "
            "import): give the actions in full before enabling the rule",
            details={"field": cut[0]},
        )
    values = {**_clean(ctx, who, merged), "updated_at": ctx.clock()}
    ctx.db.write(lambda c: store.update_rule(c, who.workspace_id, rule_id, values))
    audit.record(
        ctx,
        who,
        "rule.updated",
        target_type="rule",
        target_id=rule_id,
        details={"name": values.get("name"), "changed": sorted(changes)},
    )
    return get_rule(ctx, who, rule_id)


def delete_rule(ctx: ServiceContext, who: Principal, rule_id: str) -> None:
    if not ctx.db.write(lambda c: store.delete_rule(c, who.workspace_id, rule_id)):
        raise NotFound(f"no rule with id {rule_id!r}")
    audit.record(ctx, who, "rule.deleted", target_type="rule", target_id=rule_id)


def history(
    ctx: ServiceContext,
    who: Principal,
    rule_id: str,
    *,
    status: str | None = None,
    limit: int = 100,
    before: int | None = None,
) -> list[Row]:
    get_rule(ctx, who, rule_id)
    return ctx.db.read(
        lambda c: store.list_actions(c, rule_id, status=status, limit=limit, before_pk=before)
    )


def today(now_us: int) -> str:
    return datetime.fromtimestamp(now_us / 1_000_000, tz=UTC).strftime("%Y-%m-%d")


def _pending_rows(rule: Row, found: list[Row], now: int, skip_eval: bool) -> list[Row]:
    """One pending action row per action for each sampled object (a run or a feedback)."""
    rows = []
    for obj in found:
        trace_id = obj["trace_id"] or obj.get("run_id") or obj["id"]
        if not is_sampled(rule["id"], trace_id, rule["sample_rate"]):
            continue
        for index, action in enumerate(rule["actions"]):
            if skip_eval and action["type"] == "evaluate":
                continue
            rows.append(
                {
                    "rule_id": rule["id"],
                    "object_id": obj["id"],
                    "trace_id": obj["trace_id"],
                    "action_index": index,
                    "action_type": action["type"],
                    "status": "pending",
                    "detail": None,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "ingested_at": obj.get("updated_at", obj["created_at"]),
                    "created_at": now,
                    "updated_at": now,
                }
            )
    return rows


def _queue_new(conn: Connection, rule_id: str, pending: list[Row]) -> int:
    """Record the actions of objects the rule has not acted on yet; returns how many objects."""
    objects = list({r["object_id"] for r in pending})
    seen = store.objects_with_actions(conn, rule_id, objects)
    store.add_actions(conn, [r for r in pending if r["object_id"] not in seen])
    return len(objects) - len(seen)


def budget_spent(rule: Row, cursor: Row, now: int) -> bool:
    budget = rule["daily_judge_budget"]
    has_eval = any(a["type"] == "evaluate" for a in rule["actions"])
    used = cursor["budget_used"] if cursor["budget_day"] == today(now) else 0
    return has_eval and budget is not None and used >= budget


def _tail_rule(
    ctx: ServiceContext, rule_id: str, horizons: dict[str, int], conn: Connection
) -> int:
    locked = store.lock_rule(conn, rule_id)
    if locked is None:  # disabled, deleted, or another worker has it right now
        return 0
    rule, cursor = locked
    upto = horizons[rule["trigger"]]
    match: ColumnElement[bool] | None
    try:
        match = compile_match(ctx, rule["workspace_id"], rule["filter"])
    except InvalidInput as exc:
        store.update_cursor(conn, rule_id, {"status": f"filter error: {exc.message}"[:200]})
        return 0
    if rule["trigger"] == "run":
        found, top = store.tail_runs(
            conn,
            rule["project_id"],
            after=cursor["watermark"],
            upto=upto,
            root_only=rule["root_only"],
            match=match,
            limit=TAIL_BATCH,
        )
    else:
        candidates, top = store.tail_feedback(
            conn,
            rule["workspace_id"],
            rule["project_id"],
            after=cursor["watermark"],
            upto=upto,
            match=match,
            limit=TAIL_BATCH,
        )
        found = [f for f in candidates if domain.feedback_matches(rule["feedback_match"], f)]
    if top == cursor["watermark"]:
        return 0
    now = ctx.clock()
    spent = budget_spent(rule, cursor, now)
    pending = _pending_rows(rule, found, now, skip_eval=spent)
    queued = _queue_new(conn, rule_id, pending)
    status = (
        f"judge budget of {rule['daily_judge_budget']} for {today(now)} spent: "
        "online evaluation paused until tomorrow"
        if spent
        else "ok"
    )
    store.update_cursor(
        conn,
        rule_id,
        {
            "watermark": top,
            "processed": cursor["processed"] + len(found),
            "matched": cursor["matched"] + queued,
            "status": status,
            "updated_at": now,
        },
    )
    return max(1, len(found))


def tail_once(ctx: ServiceContext) -> int:
    """One pass over every enabled rule; returns how much work it found."""
    ids = ctx.db.read(lambda c: store.enabled_rule_ids(c, None))
    if not ids:
        return 0
    horizons = log_heads(ctx)
    return sum(ctx.db.write(partial(_tail_rule, ctx, rule_id, horizons)) for rule_id in ids)


def log_heads(ctx: ServiceContext) -> dict[str, int]:
    """Per trigger, the position up to which its log (runs by ``seq``, feedback by ``pk``) is
    complete (``store.log_horizon``): where a tail pass stops, and where a new rule starts."""
    return {
        "run": ctx.db.read(lambda c: log_horizon.horizon(c, runs.c.seq, "runs_seq")),
        "feedback": ctx.db.read(lambda c: log_horizon.horizon(c, feedback.c.pk, "feedback_pk_seq")),
    }


def backfill(
    ctx: ServiceContext, who: Principal, rule_id: str, *, start_us: int, end_us: int
) -> Row:
    """Apply a rule to runs started in ``[start, end)``: the same sampling and idempotency as
    live tailing, so runs already handled are not handled again."""
    if end_us <= start_us:
        raise InvalidInput("end must be after start", details={"field": "end"})
    rule = get_rule(ctx, who, rule_id)
    if rule["trigger"] != "run":
        raise InvalidInput("backfill applies to rules with trigger 'run'")
    match = compile_match(ctx, who.workspace_id, rule["filter"])
    scanned = queued = 0
    after = (start_us, 0)
    while True:
        page = ctx.db.read(
            partial(
                store.runs_in_range,
                project_id=rule["project_id"],
                start_us=start_us,
                end_us=end_us,
                root_only=rule["root_only"],
                match=match,
                after=after,
                limit=TAIL_BATCH,
            )
        )
        if not page:
            break
        after = (page[-1]["start_time"], page[-1]["pk"])
        scanned += len(page)
        pending = _pending_rows(rule, page, ctx.clock(), skip_eval=False)
        queued += ctx.db.write(partial(_queue_new, rule_id=rule_id, pending=pending))
    return {"rule_id": rule_id, "runs_scanned": scanned, "runs_queued": queued}
