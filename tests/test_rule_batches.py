"""Deterministic online evaluations run in batches: a claim's scores stored in one transaction.

Each score is still accepted or refused on its own; a score the database refuses fails only its
own action (the batch falls back to one transaction per action); a worker that dies after
storing a batch's scores and before recording its outcomes leaves them to be done once more,
with every score stored once. Real runs through the batch API, the real tailer, the real
``ActionRunner`` on each backend.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import wait
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from tests.test_rule_workers import action_rows, make_rule, queue_actions, regex_rule
from tests.test_rules_flow import post_runs, project_id, run_items

from fake_clock import FakeClock
from goldloop.evaluation import EvaluationResult, Evaluator, RunData, register_evaluator
from goldloop.services import rule_actions
from goldloop.services.context import ServiceContext
from goldloop.services.rule_handlers import _FEEDBACK_NS
from goldloop.store import rules as rules_store
from goldloop.store.schema import feedback as feedback_table
from goldloop.workers.actions import BATCH_MAX, ActionRunner, _batches

API = "/api/v1"


@register_evaluator("test_big_number", replace=True)
class BigNumber(Evaluator):
    """A user's evaluator that answers a number no JSON column can hold for the output
    ``poison`` (the database refuses it when the score is stored), and ``fine`` otherwise."""

    name = "test_big_number"
    version = "1"

    def evaluate(self, run: RunData, example: Any) -> list[EvaluationResult]:
        poison = (run.outputs or {}).get("answer") == "poison"
        return [self.result("size", value=2**70 if poison else "fine")]


def evaluate_rule(pid: str, name: str, evaluators: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "project_id": pid,
        "name": name,
        "actions": [{"type": "evaluate", "evaluators": evaluators}],
    }


@pytest.fixture
def feedback_inserts(app: FastAPI) -> Iterator[list[str]]:
    """The INSERT statements into ``feedback`` run on the app's database."""
    seen: list[str] = []
    engine = app.state.ctx.db.engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO FEEDBACK "):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", count)


def stored(ctx: ServiceContext) -> Counter[tuple[str, str]]:
    q = sa.select(feedback_table.c.key, feedback_table.c.run_id)
    return Counter(ctx.db.read(lambda c: [(r.key, r.run_id) for r in c.execute(q)]))


def by_run(ctx: ServiceContext) -> dict[str, dict[str, Any]]:
    return {r["object_id"]: r for r in action_rows(ctx)}


async def test_refused_scores_and_a_conflict_fail_only_their_own_actions(
    client: httpx.AsyncClient, app: FastAPI, feedback_inserts: list[str]
) -> None:
    # "ok" only takes scores from 0.5 to 1: the runs the regex does not match are refused
    put = await client.put(
        f"{API}/feedback-keys/ok", json={"kind": "continuous", "min": 0.5, "max": 1}
    )
    assert put.status_code in (200, 201), put.text
    pid = await project_id(client)
    checks = [
        {"name": "regex", "config": {"key": "ok", "pattern": "^a[0-2]$"}},
        {"name": "contains", "config": {"key": "free", "substrings": "a"}},
    ]
    rule_id = await make_rule(client, evaluate_rule(pid, "batched", checks))
    items = run_items(8)
    await post_runs(client, items)
    # the score this rule would store for the last run is already there with another body
    clash = items[7]["id"]
    fid = str(uuid.uuid5(_FEEDBACK_NS, f"{rule_id}:{clash}:contains:free"))
    body = {"feedback_id": fid, "run_id": clash, "key": "free", "score": 0.25}
    assert (await client.post(f"{API}/feedback", json=body)).status_code == 201
    queue_actions(app)
    ctx = app.state.ctx

    feedback_inserts.clear()
    runner = ActionRunner(ctx)
    runner.flush()
    runner.close()

    # the scores of the claim's two halves in one statement each, not one per score
    assert len(feedback_inserts) == 2
    actions = by_run(ctx)
    assert {a["attempts"] for a in actions.values()} == {1}
    for i, item in enumerate(items[:7]):
        action = actions[item["id"]]
        assert action["status"] == "done", action
        keys = [s["key"] for s in action["detail"]["scores"]]
        if i <= 2:
            assert (keys, action["detail"]["errors"]) == (["ok", "free"], [])
        else:
            assert keys == ["free"]
            (error,) = action["detail"]["errors"]
            assert error["key"] == "ok"
            assert "score 0 is outside its range [0.5, 1]" in error["error"]
    failed = actions[clash]
    assert failed["status"] == "failed"
    assert "already exists with a different body" in failed["detail"]["reason"]
    expected = Counter({("ok", i["id"]): 1 for i in items[:3]})
    expected.update({("free", i["id"]): 1 for i in items})
    assert stored(ctx) == expected
    kept = (await client.get(f"{API}/feedback/{fid}")).json()
    assert kept["score"] == 0.25  # the earlier body, untouched


async def test_a_score_the_database_refuses_fails_only_its_own_action(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pid = await project_id(client)
    checks = [
        {"name": "test_big_number", "config": {}},
        {"name": "regex", "config": {"key": "has_a", "pattern": "a"}},
    ]
    await make_rule(client, evaluate_rule(pid, "poisoned", checks))
    items = run_items(8)
    items[5]["outputs"] = {"answer": "poison"}
    await post_runs(client, items)
    queue_actions(app)
    ctx = app.state.ctx

    runner = ActionRunner(ctx)
    runner.flush()
    runner.close()

    actions = by_run(ctx)
    poison = actions[items[5]["id"]]  # to be retried, as when it ran alone
    assert (poison["status"], poison["attempts"]) == ("pending", 1)
    assert "64-bit" in poison["detail"]["last_error"]
    others = [actions[i["id"]] for i in items if i is not items[5]]
    assert [(a["status"], a["attempts"]) for a in others] == [("done", 1)] * 7
    expected = Counter({(k, i["id"]): 1 for k in ("size", "has_a") for i in items})
    del expected[("size", items[5]["id"])], expected[("has_a", items[5]["id"])]
    assert stored(ctx) == expected


async def test_a_worker_dead_between_storing_and_recording_leaves_each_score_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pid = await project_id(client)
    checks = [{"name": "regex", "config": {"key": "has_a", "pattern": "a"}}]
    await make_rule(client, evaluate_rule(pid, "replayed", checks))
    items = run_items(6)
    await post_runs(client, items)
    queue_actions(app)
    clock = FakeClock(app.state.ctx.clock())
    ctx = dataclasses.replace(app.state.ctx, clock=clock)

    dead = rule_actions.claim(ctx, "dead-worker", 4)
    assert all(rule_actions.batchable(c) for c in dead)
    outcomes = rule_actions.run_many(ctx, dead)  # its scores stored, then the process is killed
    assert [o["status"] for o in outcomes] == ["done"] * 4
    assert sum(stored(ctx).values()) == 4

    clock.now += int(ctx.settings.rule_action_lease_s * 1_000_000) + 1
    runner = ActionRunner(ctx)
    runner.flush()
    runner.close()

    actions = by_run(ctx)
    dead_runs = {c.action["object_id"] for c in dead}
    assert {(run, a["status"], a["attempts"]) for run, a in actions.items()} == {
        (i["id"], "done", 2 if i["id"] in dead_runs else 1) for i in items
    }
    assert stored(ctx) == Counter({("has_a", i["id"]): 1 for i in items})
    # the replayed actions found their scores already stored, as they were
    for run in dead_runs:
        assert [s["key"] for s in actions[run]["detail"]["scores"]] == ["has_a"]


async def test_a_claim_takes_a_batch_per_slot_of_deterministic_actions_only(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pid = await project_id(client)
    checks = await make_rule(client, regex_rule(pid, "checks"))
    judge = {"name": "llm_judge", "config": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}
    judged = await make_rule(client, regex_rule(pid, "judged", judge=judge, judge_mode="always"))
    await post_runs(client, run_items(100))
    queue_actions(app)  # 100 actions of each rule
    ctx = app.state.ctx

    # Two slots each: the deterministic rule's are batches of up to 32 actions, the judged
    # rule's (a thread per judge call) one action each.
    got = rule_actions.claim(ctx, "w", 4, batch=32)
    assert Counter(c.action["rule_id"] for c in got) == Counter({checks: 64, judged: 2})
    assert all(rule_actions.batchable(c) == (c.action["rule_id"] == checks) for c in got)
    # without batches, a slot is one action whatever the rule
    one_each = rule_actions.claim(ctx, "w", 4)
    assert Counter(c.action["rule_id"] for c in one_each) == Counter({checks: 2, judged: 2})
    # a short queue gives what it has: the 34 left (two slots' worth)
    rest = rule_actions.claim(ctx, "w", 4, batch=32)
    assert Counter(c.action["rule_id"] for c in rest) == Counter({checks: 34, judged: 2})


async def test_a_deterministic_backlog_is_stored_in_batches_of_up_to_batch_max(
    client: httpx.AsyncClient, app: FastAPI, feedback_inserts: list[str]
) -> None:
    pid = await project_id(client)
    await make_rule(client, regex_rule(pid, "backlog"))
    items = run_items(200)
    await post_runs(client, items)
    queue_actions(app)
    ctx = app.state.ctx

    feedback_inserts.clear()
    runner = ActionRunner(ctx, threads=4)  # 4 slots: up to 4 * BATCH_MAX actions a claim
    runner.flush()
    runner.close()

    actions = by_run(ctx)
    assert {(a["status"], a["attempts"]) for a in actions.values()} == {("done", 1)}
    assert runner.claimed == 200
    # 200 actions in batches of up to BATCH_MAX: at least 7, more when a thread was free long
    # enough for the runner to claim a slot's worth alone, or a short claim came in two halves;
    # a claim of one action per thread stored them in 50 batches of 4
    assert len(feedback_inserts) <= 2 * -(-200 // BATCH_MAX)
    assert stored(ctx) == Counter({("backlog", i["id"]): 1 for i in items})


async def test_recording_outcomes_does_not_wait_for_a_tail_pass(
    client: httpx.AsyncClient, app: FastAPI, backend: str
) -> None:
    """While a tail pass holds a rule's cursor (PostgreSQL: a row lock until its commit), the
    worker recording that rule's outcomes goes on without its lag figure instead of waiting."""
    pid = await project_id(client)
    rule_id = await make_rule(client, regex_rule(pid, "tailed"))
    await post_runs(client, run_items(4))
    queue_actions(app)
    ctx = app.state.ctx
    claimed = rule_actions.claim(ctx, "w", 4)
    outcomes = [
        (c.action, {"status": "done", "detail": {}, "updated_at": ctx.clock()}) for c in claimed
    ]

    if backend != "postgres":  # SQLite: one writer at a time, nothing to overtake
        assert rule_actions.finish(ctx, "w", outcomes) == 4
        return
    recorded: list[int] = []
    with ctx.db.engine.connect() as tail:
        held = tail.begin()
        assert rules_store.lock_rule(tail, rule_id) is not None  # as a tail pass does
        worker = threading.Thread(
            target=lambda: recorded.append(rule_actions.finish(ctx, "w", outcomes))
        )
        worker.start()
        worker.join(10)
        alive = worker.is_alive()
        held.rollback()
    worker.join(10)
    assert not alive, "finish waited for the tail pass's lock"
    assert recorded == [4]
    assert {(a["status"], a["lease_owner"]) for a in action_rows(ctx)} == {("done", None)}
    # the lag figure was left for the next finish to write; nothing else stops it
    assert (await client.get(f"{API}/rules/{rule_id}")).json()["lag_ms"] is None
    with ctx.db.engine.connect() as conn:
        assert rules_store.lock_rule(conn, rule_id) is not None
        assert rules_store.set_lag_unless_locked(conn, rule_id, 5) is True
        conn.rollback()


def test_a_claims_batches_take_the_rules_in_turns() -> None:
    """A rule with a few actions claimed beside another's backlog is in the first batch."""

    def claimed(rule_id: str, n: int) -> list[rule_actions.Claimed]:
        return [rule_actions.Claimed({"rule_id": rule_id, "pk": i}, None) for i in range(n)]

    parts = _batches(claimed("big", 96) + claimed("cheap", 5))
    assert [len(p) for p in parts] == [BATCH_MAX] * 3 + [5]
    assert [c.action["rule_id"] for c in parts[0][:10]] == ["big", "cheap"] * 5
    # a few actions: still two batches, one evaluated while the other waits on the database
    assert [len(p) for p in _batches(claimed("one", 10))] == [5, 5]


GATE = threading.Event()


@register_evaluator("test_gate", replace=True)
class Gate(Evaluator):
    """A deterministic evaluator that waits for the test to open ``GATE`` (at most 30 s)."""

    name = "test_gate"
    version = "1"

    def evaluate(self, run: RunData, example: Any) -> list[EvaluationResult]:
        GATE.wait(30)
        return [self.result("gated", score=1.0)]


async def test_closing_gives_back_the_batches_not_started(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A runner closed while some of its claimed batches wait for a batch thread hands those
    back at once (another worker claims them now, not after the lease); the batches running
    keep their leases."""
    GATE.clear()
    pid = await project_id(client)
    await make_rule(client, evaluate_rule(pid, "gated", [{"name": "test_gate"}]))
    await post_runs(client, run_items(200))
    queue_actions(app)
    ctx = app.state.ctx
    every = {int(a["pk"]) for a in action_rows(ctx)}
    assert len(every) == 200

    runner = ActionRunner(ctx, threads=4)  # 4 slots of up to BATCH_MAX, 2 batch threads
    batches: list[Any] = []
    try:
        runner.tick()
        claimed = set(runner.held())
        assert len(claimed) > 2 * BATCH_MAX, "more batches claimed than threads to run them"
        batches += runner._running  # the futures, to see the gated ones end
        runner.close(timeout=0.5)  # two batches wait at the gate; the others never started
        now = {int(c.action["pk"]) for c in rule_actions.claim(ctx, "other", 200, batch=BATCH_MAX)}
    finally:
        GATE.set()
        # the gated batches end before the database goes (a cancelled future never counts
        # as done for wait())
        wait([b for b in batches if not b.cancelled()], timeout=60)
    given_back = now & claimed
    still_leased = claimed - now
    assert given_back, "the batches not started wait out their lease"
    assert 0 < len(still_leased) <= 2 * BATCH_MAX  # the two batches at the gate
    assert now == every - still_leased
