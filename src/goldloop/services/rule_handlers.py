"""The built-in rule actions that write into Goldloop: add to a dataset, add to an annotation
queue, evaluate online.

They register through the same ``rule_actions.handler`` decorator a new action type would use.
Both are idempotent on the action: adding the same run to a dataset twice is reported as
``already_added`` by the datasets service (a later correction on a run already there updates its
example once, and a replay finds that correction already taken), and online scores are stored
as feedback with an id derived from (rule, run, evaluator, key), so a replay rewrites nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.errors import GoldloopError, InvalidInput, NotFound
from goldloop.evaluation import EvaluationResult, RunData
from goldloop.services import (
    annotation_queues,
    dataset_runs,
    feedback,
    feedback_batch,
    rule_evaluators,
)
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.rule_actions import ActionSkipped, batch_handler, handler
from goldloop.services.rules import today
from goldloop.store import rules as rule_store
from goldloop.store.rule_reads import feedback_target, trace_runs, traces_runs

log = logging.getLogger("goldloop.rules")

Row = dict[str, Any]
_FEEDBACK_NS = uuid.UUID("8f1d7c52-4b1e-4f55-9a63-3c0b6f6e2a10")


def rule_principal(rule: Row) -> Principal:
    """Rules act inside their own workspace only, as a member (never an admin)."""
    return Principal(workspace_id=rule["workspace_id"], key_id=f"rule:{rule['id']}", role="member")


def _target_run(ctx: ServiceContext, rule: Row, action: Row) -> tuple[str, str]:
    """(run id, trace id) the action is about: the run itself, or the feedback's run."""
    if rule["trigger"] == "run":
        return action["object_id"], action["trace_id"]
    found = ctx.db.read(lambda c: feedback_target(c, rule["workspace_id"], action["object_id"]))
    if found is None:
        raise ActionSkipped("the feedback's run has not arrived (or was deleted)")
    return found


@handler("add_to_dataset")
def add_to_dataset(ctx: ServiceContext, rule: Row, action: Row, config: Row) -> Row:
    run_id, _ = _target_run(ctx, rule, action)
    split = config.get("split")
    try:
        result = dataset_runs.add_runs(
            ctx,
            rule_principal(rule),
            config["dataset"],
            [run_id],
            prefer_correction=bool(config.get("prefer_correction", True)),
            splits=[split] if split else None,
            metadata={"added_by_rule": rule["id"]},
            message=f"rule {rule['name']!r}",
        )
    except NotFound as exc:
        raise ActionSkipped(exc.message) from None
    if result.added:
        added = result.added[0]
        return {
            "dataset": config["dataset"],
            "example_id": added.example_id,
            "outputs_from": added.outputs_from,
            "version": result.write.version,
        }
    if result.updated:
        updated = result.updated[0]
        return {
            "dataset": config["dataset"],
            "example_id": updated.example_id,
            "outputs_from": "correction",
            "updated": True,
            "correction_feedback_id": updated.correction_feedback_id,
            "previous_correction_feedback_id": updated.previous_correction_feedback_id,
            "version": result.write.version,
        }
    skipped = result.skipped[0]
    return {
        "dataset": config["dataset"],
        "skipped": skipped.reason,
        "example_id": skipped.example_id,
    }


@handler("add_to_queue")
def add_to_queue(ctx: ServiceContext, rule: Row, action: Row, config: Row) -> Row:
    """Queue the run for review; a run already in the queue stays there once (a replay of the
    action, or another rule's)."""
    run_id, _ = _target_run(ctx, rule, action)
    try:
        result = annotation_queues.add_runs(
            ctx, rule_principal(rule), config["queue"], [run_id], added_by=f"rule:{rule['id']}"
        )
    except (NotFound, InvalidInput) as exc:  # the queue is gone, or is a pairwise queue
        raise ActionSkipped(exc.message) from None
    if result.added:
        return {"queue_id": result.added[0].queue_id, "item_id": result.added[0].id}
    return {"queue": config["queue"], "already_queued": True}


def _needs_tiebreak(results: list[EvaluationResult], mode: str) -> bool:
    """Call the judge when asked always, or when the deterministic checks did not settle it:
    none produced a score, or their verdicts disagree (some pass, some fail)."""
    if mode == "always":
        return True
    scores = [r.score for r in results if r.ok and r.score is not None]
    if not scores:
        return True
    verdicts = {s >= 0.5 for s in scores}
    return len(verdicts) > 1


def _take_judge_budget(ctx: ServiceContext, rule: Row) -> bool:
    """Count one judged evaluation against the rule's daily budget; False if none is left."""
    day = today(ctx.clock())
    budget = rule["daily_judge_budget"]
    return ctx.db.write(lambda c: rule_store.take_judge_budget(c, rule["id"], day, budget))


def _online_feedback(
    rule: Row, run_id: str, trace_id: str, name: str, res: EvaluationResult
) -> feedback.NewFeedback:
    """The feedback one online score becomes: its id derived from (rule, run, evaluator, key),
    so a replayed action rewrites nothing."""
    fid = uuid.uuid5(_FEEDBACK_NS, f"{rule['id']}:{run_id}:{name}:{res.key}")
    fields = res.to_feedback()
    return feedback.NewFeedback(
        key=res.key,
        run_id=run_id,
        trace_id=trace_id,
        score=res.score,
        value=res.value,
        comment=res.comment,
        source="online-evaluator",
        source_info={**fields["source_info"], "rule_id": rule["id"]},
        feedback_id=str(fid),
    )


@handler("evaluate")
def evaluate_online(ctx: ServiceContext, rule: Row, action: Row, config: Row) -> Row:
    run_id, trace_id = _target_run(ctx, rule, action)
    rows = ctx.db.read(lambda c: trace_runs(c, rule["workspace_id"], trace_id))
    scored = _evaluate(ctx, rule, config, (run_id, trace_id), rows, rule_evaluators.evaluate)
    # one write transaction for every score of the run (a transaction each cost ~75% of a
    # deterministic action's CPU)
    return scored.details(feedback.create_many(ctx, rule_principal(rule), scored.items))


@batch_handler("evaluate", when=lambda config: not config.get("judge"))
def evaluate_online_batch(
    ctx: ServiceContext, batch: list[tuple[Row, Row, Row]]
) -> list[Row | Exception]:
    """Deterministic online evaluations (no judge) of a claim together: the runs read in one
    transaction, each evaluator built once per batch, every score stored in one write
    transaction (``feedback_batch.create_batch``, each score accepted or refused on its own).
    Should that transaction fail (a score the database refuses), each action stores its own
    scores in a transaction of its own, so only the poison one fails."""
    out: list[Row | Exception | None] = [None] * len(batch)
    targets: dict[int, tuple[str, str]] = {}
    for i, (rule, action, _) in enumerate(batch):
        try:
            targets[i] = _target_run(ctx, rule, action)
        except Exception as exc:
            out[i] = exc

    def read(conn: Connection) -> dict[tuple[str, str], list[Row]]:
        wanted: dict[str, set[str]] = {}
        for i, (_, trace) in targets.items():
            wanted.setdefault(batch[i][0]["workspace_id"], set()).add(trace)
        return {
            (ws, trace): rows
            for ws, traces in sorted(wanted.items())
            for trace, rows in traces_runs(conn, ws, traces).items()
        }

    traces = ctx.db.read(read) if targets else {}
    evaluators = rule_evaluators.BatchEvaluators(ctx)
    scored: dict[int, _Scored] = {}
    try:
        for i, (run_id, trace_id) in targets.items():
            rule, _, config = batch[i]
            rows = traces.get((rule["workspace_id"], trace_id), [])
            try:
                target = (run_id, trace_id)
                scored[i] = _evaluate(ctx, rule, config, target, rows, evaluators.evaluate)
            except Exception as exc:
                out[i] = exc
    finally:
        evaluators.close()
    order = sorted(scored)
    groups = [(rule_principal(batch[i][0]), scored[i].items) for i in order]
    try:
        stored = feedback_batch.create_batch(ctx, groups)
    except Exception as exc:  # one poison score fails the transaction: each on its own now
        log.warning("storing the scores of %d rule action(s) together failed: %r", len(order), exc)
        for i, (who, items) in zip(order, groups, strict=True):
            try:
                out[i] = scored[i].details(feedback.create_many(ctx, who, items))
            except Exception as one:
                out[i] = one
    else:
        for i, results in zip(order, stored, strict=True):
            try:
                out[i] = scored[i].details(results)
            except Exception as exc:
                out[i] = exc
    return [o if o is not None else RuntimeError("not performed") for o in out]


Evaluate = Callable[[ServiceContext, Mapping[str, Any], RunData, str], list[EvaluationResult]]


@dataclass(frozen=True)
class _Scored:
    """What an online evaluation of one run found, and the feedback its scores become."""

    results: list[EvaluationResult]
    judged: str
    names: list[str]
    items: list[feedback.NewFeedback]

    def details(self, outcomes: Sequence[feedback.Created | GoldloopError]) -> Row:
        """The details to record once the scores were stored (``outcomes``, one per item); a
        refused score is reported, any other error of the store raised."""
        scored = [r for r in self.results if r.ok]
        stored = []
        refused: list[dict[str, Any]] = []
        for name, res, outcome in zip(self.names, scored, outcomes, strict=True):
            if isinstance(outcome, InvalidInput):  # e.g. a score outside the key's declared range
                refused.append({"key": res.key, "error": outcome.message})
            elif isinstance(outcome, GoldloopError):
                raise outcome
            else:
                stored.append(
                    {"key": res.key, "score": res.score, "value": res.value, "evaluator": name}
                )
        errors = [{"key": r.key, "error": r.error or r.skipped} for r in self.results if not r.ok]
        return {"scores": stored, "errors": errors + refused, "judge": self.judged}


def _evaluate(
    ctx: ServiceContext,
    rule: Row,
    config: Row,
    target: tuple[str, str],
    rows: list[Row],
    evaluate: Evaluate,
) -> _Scored:
    """Run the action's evaluators (and its judge, when needed and the budget allows) on the
    target run (run id, trace id); ``rows`` are the runs of its trace."""
    run_id, trace_id = target
    if not any(r["id"] == run_id for r in rows):
        raise ActionSkipped("the run no longer exists")
    run = RunData.from_trace(rows, root_id=run_id)
    results: list[EvaluationResult] = []
    for spec in config["evaluators"]:
        results += evaluate(ctx, spec, run, rule["workspace_id"])
    judged = "not needed"
    judge = config.get("judge")
    if judge and _needs_tiebreak(results, str(config.get("judge_mode", "tiebreak"))):
        if _take_judge_budget(ctx, rule):
            results += rule_evaluators.evaluate(ctx, judge, run, rule["workspace_id"])
            judged = "judged"
        else:
            judged = "skipped: the rule's daily judge budget is spent"
    scored = [r for r in results if r.ok]
    names = [r.evaluator.name if r.evaluator else "evaluator" for r in scored]
    items = [
        _online_feedback(rule, run_id, trace_id, name, res)
        for name, res in zip(names, scored, strict=True)
    ]
    return _Scored(results, judged, names, items)
