"""A canary run: the ``canary`` rule action that re-scores a set with the rule's judge.

The cycle's judge calls are taken from the rule's daily judge budget at once, all or none (a run
without budget is recorded as ``skipped`` and the set waits for its next turn); each canary is
judged afresh, with no cache; the figures and the drift verdict against the set's baseline are
stored with the run, which becomes the baseline when the set has none. A replay of a finished
run (a worker died after recording it) changes nothing; a retried run does not take the budget
twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import canaries as domain
from goldloop.evaluation import Evaluator, RunData, evaluate_run
from goldloop.services.canaries import (
    ACTION_TYPE,
    BUDGET_TAKEN,
    build_judge,
    close_judge,
    identity_of,
    judge_spec,
)
from goldloop.services.context import ServiceContext
from goldloop.services.rule_actions import ActionSkipped, handler
from goldloop.services.rules import today
from goldloop.store import canaries as store
from goldloop.store.rule_reads import trace_runs

Row = dict[str, Any]


def _finish(ctx: ServiceContext, cset: Row, run_id: str, values: Row) -> None:
    def write(conn: Connection) -> None:
        store.update_run(conn, run_id, {**values, "finished_at": ctx.clock()})
        changes: Row = {}
        current = store.get_set(conn, cset["workspace_id"], cset["id"])
        if current is not None and current["pending_run_id"] == run_id:
            changes["pending_run_id"] = None
        if values.get("status") == "done" and current and current["baseline_run_id"] is None:
            changes["baseline_run_id"] = run_id
        if changes:
            store.update_set(conn, cset["id"], changes)

    ctx.db.write(write)


def _score_all(
    ctx: ServiceContext, evaluator: Evaluator, cset: Row, items: list[Row], key: str
) -> tuple[dict[str, float], int]:
    def read(conn: Connection) -> dict[str, list[Row]]:
        traces = {i["trace_id"] or i["run_id"] for i in items}
        return {t: trace_runs(conn, cset["workspace_id"], t) for t in traces}

    by_trace = ctx.db.read(read)
    verdicts: dict[str, float] = {}
    errors = 0
    for item in items:
        rows = by_trace.get(item["trace_id"] or item["run_id"]) or []
        if not any(r["id"] == item["run_id"] for r in rows):
            errors += 1  # the run was deleted (retention) since it was frozen
            continue
        results = evaluate_run(evaluator, RunData.from_trace(rows, root_id=item["run_id"]))
        scored = [r for r in results if r.ok and r.key == key and r.score is not None]
        if scored:
            verdicts[item["run_id"]] = float(scored[0].score)  # type: ignore[arg-type]
        else:
            errors += 1
    return verdicts, errors


@handler(ACTION_TYPE)
def run_canaries(ctx: ServiceContext, rule: Row, action: Row, config: Row) -> Row:
    run_id = action["object_id"]
    run = ctx.db.read(lambda c: store.get_run(c, run_id))
    if run is None:
        raise ActionSkipped("the canary set was deleted")
    if run["status"] != "queued":  # a replay of a finished run
        return {"canary_run": run_id, "status": run["status"]}
    cset = ctx.db.read(lambda c: store.get_set(c, rule["workspace_id"], run["set_id"]))
    if cset is None:
        raise ActionSkipped("the canary set was deleted")
    items = ctx.db.read(lambda c: store.items(c, cset["id"]))
    spec = judge_spec(rule["actions"])
    if spec is None or not items:
        reason = "the rule has no judge any more" if spec is None else "the set has no canaries"
        _finish(ctx, cset, run_id, {"status": "failed", "detail": reason})
        return {"canary_run": run_id, "status": "failed", "reason": reason}
    if run.get("detail") != BUDGET_TAKEN:
        budget = rule["daily_judge_budget"]
        day = today(ctx.clock())

        def take(conn: Connection) -> bool:
            if not store.take_judge_budget(conn, rule["id"], day, budget, len(items)):
                return False
            store.update_run(conn, run_id, {"detail": BUDGET_TAKEN})
            return True

        if not ctx.db.write(take):
            reason = (
                f"the rule's daily judge budget of {budget} has fewer than the {len(items)} "
                "calls a canary run needs left today"
            )
            _finish(ctx, cset, run_id, {"status": "skipped", "detail": reason})
            return {"canary_run": run_id, "status": "skipped", "reason": reason}
    evaluator = build_judge(ctx, spec, rule["workspace_id"])
    try:
        identity = identity_of(evaluator)
        verdicts, errors = _score_all(ctx, evaluator, cset, items, cset["judge_key"])
    finally:
        close_judge(evaluator)
    labels = {i["run_id"]: float(i["human_score"]) for i in items}
    values: Row = {
        "evaluator": identity.evaluator,
        "judge_model": identity.model,
        "prompt_hash": identity.prompt_hash,
        "n": len(verdicts),
        "errors": errors,
        "verdicts": verdicts,
    }
    if not verdicts:
        values.update(status="failed", detail=f"the judge scored none of the {len(items)} canaries")
        _finish(ctx, cset, run_id, values)
        return {"canary_run": run_id, "status": "failed", "errors": errors}
    kind: domain.Kind = "binary" if cset["kind"] == "binary" else "continuous"
    values["figures"] = domain.figures(kind, verdicts, labels, cset["threshold"])
    base_id = cset["baseline_run_id"]
    base = ctx.db.read(lambda c: store.get_run(c, base_id)) if base_id else None
    drift = None
    if base is not None and base.get("verdicts"):
        drift = domain.compare(
            kind,
            base["verdicts"],
            verdicts,
            labels,
            threshold=cset["threshold"],
            alpha=cset["alpha"],
            min_drop=cset["min_drop"],
        )
        values["drift"] = {**drift.as_dict(), "baseline_run_id": base_id}
    values.update(status="done", detail=None)
    _finish(ctx, cset, run_id, values)
    return {
        "canary_run": run_id,
        "status": "done",
        "n": len(verdicts),
        "errors": errors,
        "drifted": None if drift is None else drift.drifted,
    }
