"""Executing rule actions from the outbox, each at most once per (rule, object, action).

An action is claimed with a lease before it runs, so a worker that dies mid-action leaves it to
be retried once the lease expires; handlers are idempotent on the action's key, so the retry
cannot duplicate a dataset example, a score or a notification. Every outcome is recorded on the
action row: ``done`` (with details), ``failed`` (with the reason, after retries) or ``skipped``
(e.g. the judge budget was spent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.errors import GoldloopError
from goldloop.domain.rules import action_key
from goldloop.services import deliveries
from goldloop.services.context import ServiceContext
from goldloop.store import rules as store
from goldloop.store.rule_reads import rule_by_id, run_summary

log = logging.getLogger("goldloop.rules")

Row = dict[str, Any]
# How long a claimed action is reserved for its worker. Handlers are idempotent, so a lease that
# runs out under a slow action costs a repeat, never a duplicate; a short one lets the actions of
# a killed worker be picked up again soon.
LEASE_S = 30
RETRY_BASE_S = 5.0
RETRY_MAX_S = 600.0


class ActionSkipped(Exception):
    """The action was deliberately not performed (the message says why)."""


# handler(ctx, rule, action row, action config) -> details to record
Handler = Callable[[ServiceContext, Row, Row, Row], Row]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


@handler("webhook")
def _webhook(ctx: ServiceContext, rule: Row, action: Row, config: Row) -> Row:
    run = ctx.db.read(lambda c: run_summary(c, rule["workspace_id"], action["object_id"]))
    if run is None:
        raise ActionSkipped("the run no longer exists")
    base = ctx.settings.base_url
    body = {
        "type": "goldloop.rule",
        "rule": {"id": rule["id"], "name": rule["name"], "project_id": rule["project_id"]},
        "run": run,
        "trace_url": f"{base}/traces/{run['trace_id']}",
        "run_url": f"{base}/runs/{run['id']}",
    }
    key = action_key(rule["id"], action["object_id"], action["action_index"])

    def write(conn: Connection) -> bool:
        return deliveries.enqueue(
            ctx,
            conn,
            workspace_id=rule["workspace_id"],
            idempotency_key=key,
            url=config["url"],
            body=body,
            rule_id=rule["id"],
        )

    queued = ctx.db.write(write)
    return {"delivery": "queued" if queued else "already queued", "idempotency_key": key}


def _retry_delay_s(attempt: int) -> float:
    return min(RETRY_BASE_S * 2.0 ** (attempt - 1), RETRY_MAX_S)


def execute_due(ctx: ServiceContext, *, limit: int = 100) -> int:
    """Run every action that is due; returns how many were attempted. Claims and outcomes are
    written in one transaction per batch, so the per-action cost is the action itself."""
    now = ctx.clock()
    due = ctx.db.read(lambda c: store.due_actions(c, now, limit))
    if not due:
        return 0
    lease = now + LEASE_S * 1_000_000

    def claim_all(conn: Connection) -> list[Row]:
        return [a for a in due if store.claim_action(conn, a["pk"], a["attempts"], lease)]

    claimed = ctx.db.write(claim_all)  # others' claims since our read are skipped
    rules: dict[str, Row | None] = {}
    outcomes = []
    for action in claimed:
        rule_id = action["rule_id"]
        if rule_id not in rules:
            rules[rule_id] = ctx.db.read(partial(rule_by_id, rule_id=rule_id))
        rule = rules[rule_id]
        if rule is not None:  # a deleted rule's actions went with it
            outcomes.append((action, _run_one(ctx, rule, action, action["attempts"] + 1)))

    def finish_all(conn: Connection) -> None:
        lags: dict[str, int] = {}
        for action, outcome in outcomes:
            store.finish_action(conn, action["pk"], outcome)
            if outcome["status"] == "done" and action["ingested_at"] is not None:
                lags[action["rule_id"]] = max(
                    0, (outcome["updated_at"] - action["ingested_at"]) // 1000
                )
        for rule_id, lag_ms in lags.items():
            store.update_cursor(conn, rule_id, {"last_lag_ms": lag_ms})

    ctx.db.write(finish_all)
    return len(claimed)


def _run_one(ctx: ServiceContext, rule: Row, action: Row, attempt: int) -> Row:
    """Perform one action; returns the values to record on its row."""
    index = action["action_index"]
    config = rule["actions"][index] if index < len(rule["actions"]) else None
    fn = HANDLERS.get(action["action_type"])
    outcome: Row
    try:
        if config is None or config.get("type") != action["action_type"]:
            raise ActionSkipped("the rule's actions changed since this one was queued")
        if fn is None:
            raise ActionSkipped(f"no handler for action type {action['action_type']!r}")
        outcome = {"status": "done", "detail": fn(ctx, rule, action, config)}
    except ActionSkipped as exc:
        outcome = {"status": "skipped", "detail": {"reason": str(exc)}}
    except Exception as exc:
        final = isinstance(exc, GoldloopError) or attempt >= ctx.settings.delivery_max_attempts
        reason = exc.message if isinstance(exc, GoldloopError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, GoldloopError):
            log.warning(
                "rule %s action %s failed: %s", rule["id"], action["pk"], reason, exc_info=exc
            )
        if final:
            outcome = {"status": "failed", "detail": {"reason": reason, "attempts": attempt}}
        else:
            retry_at = ctx.clock() + int(_retry_delay_s(attempt) * 1_000_000)
            outcome = {
                "status": "pending",
                "detail": {"last_error": reason},
                "next_attempt_at": retry_at,
            }
    outcome["updated_at"] = ctx.clock()
    return outcome
