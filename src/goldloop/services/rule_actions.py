"""Executing rule actions from the outbox, each at most once per (rule, object, action).

An action is claimed with a lease before it runs (``store.rule_queue``), fairly between rules;
the worker renews the lease while it lives, so no action runs twice under a live worker, however
long it takes. A worker that dies leaves its actions to be retried once their lease ends;
handlers are idempotent on the action's key, so the retry cannot duplicate a dataset example, a
score or a notification. Every outcome is recorded on the action row: ``done`` (with details),
``failed`` (with the reason, after retries) or ``skipped`` (e.g. the judge budget was spent).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.errors import GoldloopError
from goldloop.domain.rules import action_key
from goldloop.services import deliveries, rule_evaluators
from goldloop.services.context import ServiceContext
from goldloop.store import rule_queue as queue
from goldloop.store import rules as store
from goldloop.store.rule_reads import run_summary

log = logging.getLogger("goldloop.rules")

Row = dict[str, Any]
RETRY_BASE_S = 5.0
RETRY_MAX_S = 600.0
# ``action_index`` of work a rule does for itself rather than one of its actions (the canary
# runs of ``services.canaries``): claimed, leased and recorded like any action.
RULE_WORK_INDEX = -1


class ActionSkipped(Exception):
    """The action was deliberately not performed (the message says why)."""


# handler(ctx, rule, action row, action config) -> details to record
Handler = Callable[[ServiceContext, Row, Row, Row], Row]
HANDLERS: dict[str, Handler] = {}
# batch handler(ctx, [(rule, action row, action config)]) -> at each position, the details to
# record or the exception that action raised (as its ``Handler`` would have)
BatchHandler = Callable[[ServiceContext, list[tuple[Row, Row, Row]]], list[Row | Exception]]
BATCH_HANDLERS: dict[str, tuple[Callable[[Row], bool], BatchHandler]] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def batch_handler(
    kind: str, *, when: Callable[[Row], bool]
) -> Callable[[BatchHandler], BatchHandler]:
    """Register a handler that performs many actions of ``kind`` at once (the actions whose
    config ``when`` accepts; the others go to the kind's ``handler`` one by one)."""

    def register(fn: BatchHandler) -> BatchHandler:
        BATCH_HANDLERS[kind] = (when, fn)
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


@dataclass(frozen=True)
class Claimed:
    """An action a worker holds the lease of, with its rule (None: the rule was deleted)."""

    action: Row
    rule: Row | None


def new_owner() -> str:
    """A lease owner id unique to one worker: host, process and a random part."""
    return f"{socket.gethostname()[:36]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"[:64]


def lease_us(ctx: ServiceContext) -> int:
    return int(ctx.settings.rule_action_lease_s * 1_000_000)


def claim(
    ctx: ServiceContext, owner: str, slots: int, *, turn: int = 0, batch: int = 1
) -> list[Claimed]:
    """Claim up to ``slots`` due actions for ``owner``, shared fairly between the rules that
    have some: each gets an equal share (the first ones, counted from ``turn``, one more when it
    does not divide), and what a rule with fewer due actions leaves goes to the others. So a
    rule with a few cheap actions is served on every claim, whatever another rule's backlog.

    A slot is one action, or, for a rule whose every action runs in batches (``batch_only``:
    deterministic online evaluations), up to ``batch`` actions, which a worker performs
    together on one thread. A backlog of such actions is claimed ``batch`` at a time per slot;
    a short queue gives what it has."""
    if slots <= 0:
        return []
    now = ctx.clock()
    lease = now + lease_us(ctx)

    def write(conn: Connection) -> list[Claimed]:
        ids = queue.rules_with_due_actions(conn, now)
        if not ids:
            return []
        by_id = queue.rules_by_ids(conn, ids)
        per_slot = {
            rule_id: batch if (rule := by_id.get(rule_id)) and batch_only(rule) else 1
            for rule_id in ids
        }
        start = turn % len(ids)
        ids = ids[start:] + ids[:start]
        share, extra = divmod(slots, len(ids))
        got: list[Row] = []
        used = 0  # slots taken so far
        hungry = []
        for i, rule_id in enumerate(ids):
            want = min(share + (1 if i < extra else 0), slots - used)
            if want <= 0:
                break
            rows = queue.claim_for_rule(conn, rule_id, now, want * per_slot[rule_id], owner, lease)
            got += rows
            used += -(-len(rows) // per_slot[rule_id])
            if len(rows) == want * per_slot[rule_id]:
                hungry.append(rule_id)
        for rule_id in hungry:  # the share others left unused
            if used >= slots:
                break
            more = (slots - used) * per_slot[rule_id]
            rows = queue.claim_for_rule(conn, rule_id, now, more, owner, lease)
            got += rows
            used += -(-len(rows) // per_slot[rule_id])
        return [Claimed(a, by_id.get(a["rule_id"])) for a in got]

    return ctx.db.write(write)


def batch_only(rule: Row) -> bool:
    """Whether every action of the rule goes to its kind's batch handler (``batchable``)."""
    configs = rule["actions"]
    return bool(configs) and all(
        isinstance(config, dict)
        and (entry := BATCH_HANDLERS.get(str(config.get("type")))) is not None
        and entry[0](config)
        for config in configs
    )


def run(ctx: ServiceContext, claimed: Claimed) -> Row:
    """Perform one claimed action; returns the values to record on its row."""
    if claimed.rule is None:  # a deleted rule's actions went with it
        return {"status": "skipped", "detail": {"reason": "the rule was deleted"}}
    return _run_one(ctx, claimed.rule, claimed.action, int(claimed.action["attempts"]))


def batchable(claimed: Claimed) -> bool:
    """Whether the action goes to its kind's batch handler (``run_many``)."""
    if claimed.rule is None:
        return False
    kind = claimed.action["action_type"]
    entry = BATCH_HANDLERS.get(kind)
    config = _config(claimed.rule, claimed.action)
    return (
        entry is not None and config is not None and config.get("type") == kind and entry[0](config)
    )


def run_many(ctx: ServiceContext, batch: list[Claimed]) -> list[Row]:
    """Perform claimed actions that ``batchable`` accepted, those of one kind together (the
    deterministic online evaluations of a claim: their scores stored in one transaction);
    returns the values to record on each action's row, in order. Should the batch handler
    itself fail, each action is performed on its own."""
    outcomes: list[Row | None] = [None] * len(batch)
    kinds: dict[str, list[int]] = {}
    for i, claimed in enumerate(batch):
        kinds.setdefault(claimed.action["action_type"], []).append(i)
    for kind, positions in kinds.items():
        items = []
        for i in positions:
            rule = batch[i].rule
            assert rule is not None  # batchable() said so
            items.append((rule, batch[i].action, _config(rule, batch[i].action) or {}))
        try:
            results = BATCH_HANDLERS[kind][1](ctx, items)
        except Exception as exc:
            log.warning("batch of %d %r rule action(s) failed: %r", len(items), kind, exc)
            for i in positions:
                outcomes[i] = run(ctx, batch[i])
            continue
        for i, result in zip(positions, results, strict=True):
            rule = batch[i].rule
            assert rule is not None
            action = batch[i].action
            outcomes[i] = _outcome(ctx, rule, action, int(action["attempts"]), result)
    return [o for o in outcomes if o is not None]


def finish(ctx: ServiceContext, owner: str, results: list[tuple[Row, Row]]) -> int:
    """Record the outcomes of actions (one transaction) and each rule's latest lag (unless a
    tail pass holds the rule's cursor just then); returns how many were recorded. An action
    whose lease was lost (another worker holds it now) keeps that worker's record."""
    if not results:
        return 0

    def write(conn: Connection) -> int:
        lags: dict[str, int] = {}
        outcomes = [(int(a["pk"]), int(a["attempts"]), o) for a, o in results]
        done = queue.finish_many(conn, owner, outcomes)
        for action, outcome in results:
            if int(action["pk"]) not in done:
                continue
            if outcome["status"] == "done" and action["ingested_at"] is not None:
                lag = max(0, (outcome["updated_at"] - action["ingested_at"]) // 1000)
                lags[action["rule_id"]] = max(lag, lags.get(action["rule_id"], 0))
        for rule_id, lag_ms in lags.items():  # never waits on a tail pass holding the cursor
            store.set_lag_unless_locked(conn, rule_id, lag_ms)
        return len(done)

    recorded = ctx.db.write(write)
    if recorded < len(results):
        log.warning(
            "worker %s lost the lease of %d rule action(s) before finishing them",
            owner,
            len(results) - recorded,
        )
    return recorded


def renew(ctx: ServiceContext, owner: str, pks: list[int]) -> set[int]:
    """Extend the owner's leases on these actions by a full lease; returns the pks it holds."""
    until = ctx.clock() + lease_us(ctx)
    return ctx.db.write(lambda c: queue.renew_leases(c, owner, pks, until))


def release(ctx: ServiceContext, owner: str, pks: list[int]) -> int:
    """Hand back actions claimed but never started (due at once for any worker)."""
    now = ctx.clock()
    return ctx.db.write(lambda c: queue.release(c, owner, pks, now))


def execute_due(ctx: ServiceContext, *, limit: int = 100) -> int:
    """Claim up to ``limit`` due actions and run them on the caller's thread (the batchable
    ones together, ``run_many``, then the others one after another);
    returns how many were attempted. Workers use ``workers.actions.ActionRunner`` instead (a
    pool of threads, leases renewed while it runs)."""
    owner = new_owner()
    claimed = claim(ctx, owner, limit)
    if not claimed:
        return 0
    transport = rule_evaluators.SharedTransport(ctx.settings, ctx.resolve)
    shared = dataclasses.replace(ctx, evaluator_transport=ctx.evaluator_transport or transport)
    together = [c for c in claimed if batchable(c)]
    alone = [c for c in claimed if not batchable(c)]
    try:
        results = list(zip([c.action for c in together], run_many(shared, together), strict=True))
        finish(ctx, owner, results + [(c.action, run(shared, c)) for c in alone])
    finally:
        transport.shutdown()
    return len(claimed)


def _config(rule: Row, action: Row) -> Row | None:
    """The config of the rule's action this row is of (None: the rule no longer has it)."""
    index = action["action_index"]
    if index == RULE_WORK_INDEX:  # work the rule does for itself (a canary run), no config
        return {"type": action["action_type"]}
    config = rule["actions"][index] if 0 <= index < len(rule["actions"]) else None
    return config if isinstance(config, dict) else None


def _run_one(ctx: ServiceContext, rule: Row, action: Row, attempt: int) -> Row:
    """Perform one action; returns the values to record on its row."""
    config = _config(rule, action)
    fn = HANDLERS.get(action["action_type"])
    result: Row | Exception
    try:
        if config is None or config.get("type") != action["action_type"]:
            raise ActionSkipped("the rule's actions changed since this one was queued")
        if fn is None:
            raise ActionSkipped(f"no handler for action type {action['action_type']!r}")
        result = fn(ctx, rule, action, config)
    except Exception as exc:
        result = exc
    return _outcome(ctx, rule, action, attempt, result)


def _outcome(
    ctx: ServiceContext, rule: Row, action: Row, attempt: int, result: Row | Exception
) -> Row:
    """The values to record for what a handler returned (``done``) or raised: ``skipped``,
    ``failed`` (a Goldloop error, or the last attempt) or ``pending`` (retried later)."""
    outcome: Row
    if not isinstance(result, Exception):
        outcome = {"status": "done", "detail": result}
    elif isinstance(result, ActionSkipped):
        outcome = {"status": "skipped", "detail": {"reason": str(result)}}
    else:
        exc = result
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
