"""Judge drift canaries: freeze a rule's human-labelled runs, re-score them with the rule's
judge on a schedule and whenever the judge changes, and compare each run with the baseline.

- **Freezing** (:func:`create_set`): the runs of the rule's project that people labelled on the
  judge's key (newest label per run, sources ``human`` and ``app``; ``api`` when asked) become
  the canaries, each with its label as it is now; later edits of the label do not move it.
- **Scheduling** (:func:`schedule_due`, on the rule tailer's loop): a set is re-scored when it
  has never been, when ``interval_s`` (else ``canary_interval_s``) has passed since the last
  run, or when the judge the rule would use now (evaluator, model and prompt hash, computed from
  the rule and the settings without calling it) differs from the last run's. One run is queued
  at a time per set (a compare-and-set), as a rule action of type ``canary``: the worker pool
  claims it under a lease like every other action.
- **Running** (``services.canary_runs``, the ``canary`` action handler): the cycle's judge
  calls are taken from the rule's daily judge budget at once, or the run is recorded as
  skipped; the judge scores every canary afresh (no cache: a provider that changed the model
  behind the same name must show); the figures (``domain.agreement``) and the drift verdict
  against the baseline (``domain.canaries.compare``) are stored with the run. The first
  completed run is the baseline until someone accepts another (:func:`accept`).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import canaries as domain
from goldloop.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from goldloop.evaluation import Evaluator
from goldloop.services import audit, rule_evaluators
from goldloop.services.alignment import HUMAN_SOURCES, OPTIONAL_HUMAN_SOURCES
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.rule_actions import RULE_WORK_INDEX
from goldloop.services.rules import get_rule
from goldloop.store import alignment as alignment_store
from goldloop.store import canaries as store
from goldloop.store import rules as rule_store

log = logging.getLogger("goldloop.rules")
Row = dict[str, Any]
ACTION_TYPE = "canary"
ACTION_INDEX = RULE_WORK_INDEX  # not one of the rule's own actions
MAX_SIZE = 500
MAX_LABELS = 50_000
BUDGET_TAKEN = "judge budget taken"


@dataclass(frozen=True, slots=True)
class Identity:
    """Which judge scores: the evaluator, its model and its prompt hash, and the key it writes."""

    evaluator: str | None
    model: str | None
    prompt_hash: str | None
    key: str | None

    def same(self, run: Row) -> bool:
        return (self.evaluator, self.model, self.prompt_hash) == (
            run.get("evaluator"),
            run.get("judge_model"),
            run.get("prompt_hash"),
        )


def _need_admin(who: Principal) -> None:
    """Freezing, running, accepting and deleting spend judge budget or change what alerts
    compare with: admin keys only (the API checks it before reading the body too)."""
    if not who.is_admin:
        raise Forbidden("this needs an admin API key (goldloop keys create --role admin)")


def judge_spec(actions: list[Row]) -> Row | None:
    """The judge of the rule's first ``evaluate`` action that has one."""
    for action in actions:
        judge = action.get("judge")
        if action.get("type") == "evaluate" and isinstance(judge, dict):
            return judge
    return None


def build_judge(ctx: ServiceContext, spec: Row, workspace_id: str) -> Evaluator:
    """The rule's judge as the server builds it, with no cache: canaries are judged afresh."""
    config = {**(spec.get("config") or {}), "cache": False}
    return rule_evaluators.build(ctx, {**spec, "config": config}, workspace_id)


def close_judge(evaluator: Evaluator) -> None:
    close = getattr(evaluator, "close", None)
    if callable(close):
        close()


def identity_of(evaluator: Evaluator) -> Identity:
    info = evaluator.info()
    key = getattr(evaluator, "key", None)
    return Identity(
        info.name, info.judge_model, info.prompt_hash, key if isinstance(key, str) else None
    )


_identities: dict[tuple[str, str], Identity] = {}  # (workspace, judge config) -> identity
_identities_lock = threading.Lock()


def judge_identity(ctx: ServiceContext, rule: Row) -> Identity | None:
    """The judge the rule would use now (None: it has none), remembered per judge
    configuration and the settings that also shape it (``judge_model``, ``judge_base_url``)."""
    spec = judge_spec(rule["actions"])
    if spec is None:
        return None
    settings = ctx.settings
    memo = (
        str(rule["workspace_id"]),
        json.dumps([spec, settings.judge_model, settings.judge_base_url], default=str),
    )
    with _identities_lock:
        known = _identities.get(memo)
    if known is not None:
        return known
    evaluator = build_judge(ctx, spec, rule["workspace_id"])
    try:
        found = identity_of(evaluator)
    finally:
        close_judge(evaluator)
    with _identities_lock:
        if len(_identities) > 10_000:
            _identities.clear()
        _identities[memo] = found
    return found


# --- freezing ---------------------------------------------------------------------------------


def create_set(
    ctx: ServiceContext,
    who: Principal,
    rule_id: str,
    *,
    size: int = 100,
    selection: str = "balanced",
    judge_key: str | None = None,
    human_key: str | None = None,
    include_api: bool = False,
    interval_s: int | None = None,
    alpha: float | None = None,
    min_drop: float | None = None,
    threshold: float = 0.5,
    replace: bool = False,
    seed: int = 0,
) -> Row:
    _need_admin(who)
    rule = get_rule(ctx, who, rule_id)
    if not 1 <= size <= MAX_SIZE:
        raise InvalidInput(f"size must be between 1 and {MAX_SIZE}", details={"field": "size"})
    if selection not in domain.SELECTIONS:
        raise InvalidInput(
            f"selection must be one of {', '.join(domain.SELECTIONS)}",
            details={"field": "selection"},
        )
    if interval_s is not None and not 60 <= interval_s <= 30 * 86_400:
        raise InvalidInput(
            "interval_s must be between 60 and 2592000 seconds", details={"field": "interval_s"}
        )
    alpha = ctx.settings.canary_alpha if alpha is None else alpha
    min_drop = ctx.settings.canary_min_drop if min_drop is None else min_drop
    if not (0 < alpha < 0.5 and 0 <= min_drop < 1):
        raise InvalidInput(
            "alpha must be in (0, 0.5) and min_drop in [0, 1)", details={"field": "alpha"}
        )
    spec = judge_spec(rule["actions"])
    if spec is None:
        raise InvalidInput(
            "this rule has no judge: canaries re-score the judge of an evaluate action",
            details={"field": "rule_id"},
        )
    identity = judge_identity(ctx, rule)
    key = judge_key or (identity.key if identity else None)
    if not key:
        raise InvalidInput("judge_key is required for this judge", details={"field": "judge_key"})
    labels_key = human_key or key
    sources = HUMAN_SOURCES + (OPTIONAL_HUMAN_SOURCES if include_api else ())

    def read(conn: Connection) -> list[alignment_store.Score]:
        return alignment_store.scores(
            conn,
            who.workspace_id,
            labels_key,
            sources,
            project_id=rule["project_id"],
            limit=MAX_LABELS,
        )

    newest: dict[str, alignment_store.Score] = {}
    for score in ctx.db.read(read):  # newest first
        newest.setdefault(score.run_id, score)
    if not newest:
        raise InvalidInput(
            f"no run of this rule's project carries a person's label on {labels_key!r}: label "
            "some runs first (feedback with source human)",
            details={"field": "human_key"},
        )
    candidates = [
        domain.Labelled(s.run_id, s.trace_id, s.score, s.updated_at) for s in newest.values()
    ]
    chosen = domain.choose(candidates, size, selection, seed=seed)
    kind = domain.kind_of([c.human_score for c in chosen])
    now = ctx.clock()
    set_id = str(uuid.uuid4())
    row: Row = {
        "id": set_id,
        "workspace_id": who.workspace_id,
        "rule_id": rule_id,
        "judge_key": key,
        "human_key": labels_key,
        "kind": kind,
        "threshold": threshold,
        "interval_s": interval_s,
        "alpha": alpha,
        "min_drop": min_drop,
        "size": len(chosen),
        "baseline_run_id": None,
        "pending_run_id": None,
        "next_due_at": now,
        "created_by": who.key_id,
        "created_at": now,
    }
    items = [
        {
            "set_id": set_id,
            "run_id": c.run_id,
            "trace_id": c.trace_id,
            "human_score": c.human_score,
            "position": i,
        }
        for i, c in enumerate(chosen)
    ]

    def write(conn: Connection) -> None:
        existing = store.set_of_rule(conn, who.workspace_id, rule_id)
        if existing is not None:
            if not replace:
                raise Conflict(
                    "this rule has a canary set already: pass replace=true to freeze a new one"
                )
            store.delete_set(conn, who.workspace_id, existing["id"])
        store.insert_set(conn, row, items)

    ctx.db.write(write)
    audit.record(
        ctx,
        who,
        "canaries.created",
        target_type="rule",
        target_id=rule_id,
        details={"set_id": set_id, "size": len(chosen), "judge_key": key},
    )
    return get_set(ctx, who, set_id)


def _view(conn: Connection, row: Row) -> Row:
    latest = store.latest_finished(conn, row["id"])
    if latest is not None:
        latest.pop("verdicts", None)
    return {**row, "latest_run": latest}


def get_set(ctx: ServiceContext, who: Principal, set_id: str) -> Row:
    def read(conn: Connection) -> Row | None:
        row = store.get_set(conn, who.workspace_id, set_id)
        return None if row is None else _view(conn, row)

    found = ctx.db.read(read)
    if found is None:
        raise NotFound(f"no canary set with id {set_id!r}")
    return found


def list_sets(
    ctx: ServiceContext,
    who: Principal,
    *,
    rule_id: str | None = None,
    project_id: str | None = None,
) -> list[Row]:
    def read(conn: Connection) -> list[Row]:
        rows = store.list_sets(conn, who.workspace_id, rule_id=rule_id, project_id=project_id)
        return [_view(conn, r) for r in rows]

    return ctx.db.read(read)


def set_items(ctx: ServiceContext, who: Principal, set_id: str) -> list[Row]:
    get_set(ctx, who, set_id)
    return ctx.db.read(lambda c: store.items(c, set_id))


def list_runs(ctx: ServiceContext, who: Principal, set_id: str, *, limit: int = 50) -> list[Row]:
    get_set(ctx, who, set_id)
    return ctx.db.read(lambda c: store.list_runs(c, set_id, limit=limit))


def delete_set(ctx: ServiceContext, who: Principal, set_id: str) -> None:
    _need_admin(who)
    if not ctx.db.write(lambda c: store.delete_set(c, who.workspace_id, set_id)):
        raise NotFound(f"no canary set with id {set_id!r}")
    audit.record(ctx, who, "canaries.deleted", target_type="canary_set", target_id=set_id)


def accept(ctx: ServiceContext, who: Principal, set_id: str, run_id: str | None = None) -> Row:
    """Make a completed run (default: the latest) the baseline later runs are compared with:
    the judge's new behaviour is known and wanted."""
    _need_admin(who)
    cset = get_set(ctx, who, set_id)

    def write(conn: Connection) -> str:
        run = store.get_run(conn, run_id) if run_id else store.latest_done(conn, set_id)
        if run is None or run["set_id"] != set_id or run["status"] != "done":
            raise InvalidInput(
                "only a completed run of this set can be the baseline", details={"field": "run_id"}
            )
        store.update_set(conn, set_id, {"baseline_run_id": run["id"]})
        return str(run["id"])

    chosen = ctx.db.write(write)
    audit.record(
        ctx,
        who,
        "canaries.baseline_accepted",
        target_type="canary_set",
        target_id=set_id,
        details={"run_id": chosen, "previous": cset["baseline_run_id"]},
    )
    return get_set(ctx, who, set_id)


# --- scheduling -------------------------------------------------------------------------------


def _queue(ctx: ServiceContext, cset: Row, trigger: str, identity: Identity | None) -> str | None:
    now = ctx.clock()
    run_id = str(uuid.uuid4())
    interval = cset["interval_s"] or ctx.settings.canary_interval_s

    def write(conn: Connection) -> bool:
        if not store.claim_schedule(conn, cset["id"], run_id, None):
            return False
        store.insert_run(
            conn,
            {
                "id": run_id,
                "set_id": cset["id"],
                "workspace_id": cset["workspace_id"],
                "rule_id": cset["rule_id"],
                "trigger": trigger,
                "status": "queued",
                "evaluator": identity.evaluator if identity else None,
                "judge_model": identity.model if identity else None,
                "prompt_hash": identity.prompt_hash if identity else None,
                "n": 0,
                "errors": 0,
                "created_at": now,
            },
        )
        rule_store.add_actions(
            conn,
            [
                {
                    "rule_id": cset["rule_id"],
                    "object_id": run_id,
                    "trace_id": None,
                    "action_index": ACTION_INDEX,
                    "action_type": ACTION_TYPE,
                    "status": "pending",
                    "detail": None,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "ingested_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        store.update_set(conn, cset["id"], {"next_due_at": now + int(interval * 1_000_000)})
        return True

    return run_id if ctx.db.write(write) else None


def _unstick(ctx: ServiceContext, cset: Row) -> None:
    """A queued run whose action ended without finishing it (failed after its retries, or
    skipped): record it as failed and let the set be scheduled again."""
    pending = cset["pending_run_id"]

    def state(conn: Connection) -> tuple[Row | None, Row | None]:
        action = store.action_of(conn, cset["rule_id"], pending, ACTION_INDEX)
        return store.get_run(conn, pending), action

    run, action = ctx.db.read(state)
    if run is not None and run["status"] == "queued" and (action or {}).get("status") == "pending":
        return  # still to run, or running

    def write(conn: Connection) -> None:
        run, action = state(conn)  # again, in the writing transaction
        if run is not None and run["status"] == "queued":
            if (action or {}).get("status") == "pending":
                return
            reason = (action or {}).get("detail") or {}
            store.update_run(
                conn,
                pending,
                {
                    "status": "failed",
                    "detail": str(reason.get("reason") or "the canary run did not finish")[:500],
                    "finished_at": ctx.clock(),
                },
            )
        store.claim_schedule(conn, cset["id"], None, pending)

    ctx.db.write(write)


def schedule_due(ctx: ServiceContext) -> int:
    """Queue a canary run for every set that is due (see the module docstring); returns how
    many were queued."""
    now = ctx.clock()
    queued = 0
    for cset in ctx.db.read(store.schedulable):
        if cset["pending_run_id"] is not None:
            _unstick(ctx, cset)
            continue
        rule = {**cset, "id": cset["rule_id"]}
        try:
            identity = judge_identity(ctx, rule)
        except Exception as exc:  # the judge cannot be built: its own actions report why
            log.debug("canaries of rule %s: judge not built: %s", cset["rule_id"], exc)
            continue
        last = ctx.db.read(partial(store.latest_finished, set_id=cset["id"]))
        if last is None:
            trigger = "first"
        elif identity is not None and not identity.same(last):
            trigger = "judge_changed"
        elif now >= cset["next_due_at"]:
            trigger = "schedule"
        else:
            continue
        if _queue(ctx, cset, trigger, identity):
            queued += 1
    return queued


def run_now(ctx: ServiceContext, who: Principal, set_id: str) -> Row:
    _need_admin(who)
    cset = get_set(ctx, who, set_id)
    rule = get_rule(ctx, who, cset["rule_id"])
    identity = judge_identity(ctx, rule)
    run_id = _queue(ctx, cset, "manual", identity)
    if run_id is None:
        raise Conflict("a canary run of this set is queued already")
    return ctx.db.read(lambda c: store.get_run(c, run_id)) or {}
