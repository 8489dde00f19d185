"""Rule action workers under load: claims, leases, fairness, one HTTP transport per worker.

Runs go in through the real batch API and the real tailer queues their actions; the action
runners (``workers.actions.ActionRunner``, what ``goldloop worker`` runs) work on the real
database of each backend. The judge is a real OpenAI-compatible server on 127.0.0.1 that counts
its calls per run.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from tests.fake_llm import FakeLLM, completion, user_text
from tests.test_rules_flow import post_runs, project_id, run_items

from fake_clock import FakeClock
from goldloop.services import rule_actions
from goldloop.services.context import ServiceContext
from goldloop.settings import Settings
from goldloop.store import rule_queue
from goldloop.store.schema import rule_actions as actions_table
from goldloop.workers.actions import ActionRunner
from goldloop.workers.service_loops import Workers

LEASE_S = 3.0
JUDGE_S = 5.0  # longer than the lease: only renewals keep a second worker off the action


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, rule_action_lease_s=LEASE_S, rule_action_threads=4)


@pytest.fixture
def slow_judge() -> Iterator[FakeLLM]:
    def answer(body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        time.sleep(JUDGE_S)
        return 200, completion('{"reasoning": "fine", "score": 1}'), {}

    llm = FakeLLM(answer)
    yield llm
    llm.stop()


def regex_rule(pid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "project_id": pid,
        "name": name,
        "actions": [
            {
                "type": "evaluate",
                "evaluators": [{"name": "regex", "config": {"key": name, "pattern": "a"}}],
                **extra,
            }
        ],
    }


async def make_rule(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    r = await client.post("/api/v1/rules", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def action_rows(ctx: ServiceContext) -> list[dict[str, Any]]:
    q = sa.select(actions_table).order_by(actions_table.c.pk)
    return ctx.db.read(lambda c: [dict(r._mapping) for r in c.execute(q)])


def queue_actions(app: FastAPI) -> None:
    w = Workers(app.state.ctx)
    w.rules.flush()
    w.stop()


def run_together(runners: list[ActionRunner]) -> None:
    threads = [threading.Thread(target=r.flush) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for r in runners:
        r.flush()
        r.close()


async def test_a_judge_slower_than_the_lease_is_called_once_per_action(
    client: httpx.AsyncClient, app: FastAPI, slow_judge: FakeLLM
) -> None:
    pid = await project_id(client)
    judge = {
        "name": "llm_judge",
        "config": {"base_url": slow_judge.url, "model": "judge-1", "api_key": "k", "cache": False},
    }
    await make_rule(client, regex_rule(pid, "judged", judge=judge, judge_mode="always"))
    items = run_items(6)
    await post_runs(client, items)
    queue_actions(app)
    ctx = app.state.ctx
    runners = [ActionRunner(ctx), ActionRunner(ctx)]
    run_together(runners)

    asked = Counter(
        next(i["id"] for i in items if i["outputs"]["answer"] in user_text(b))
        for b in slow_judge.requests
    )
    assert asked == Counter({i["id"]: 1 for i in items})  # each run judged exactly once
    rows = action_rows(ctx)
    assert [(r["status"], r["attempts"], r["lease_owner"]) for r in rows] == [("done", 1, None)] * 6
    assert all(r.renewals > 0 for r in runners if r.claimed)  # the leases were renewed
    assert sum(r.claimed for r in runners) == 6
    assert sum(r.lost for r in runners) == 0


async def test_three_workers_do_every_action_once_and_skip_none(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pid = await project_id(client)
    first = await make_rule(client, regex_rule(pid, "first"))
    second = await make_rule(client, regex_rule(pid, "second"))
    items = run_items(150)
    await post_runs(client, items)
    queue_actions(app)
    ctx = app.state.ctx
    runners = [ActionRunner(ctx) for _ in range(3)]
    run_together(runners)

    rows = action_rows(ctx)
    assert len(rows) == 300
    assert {(r["status"], r["attempts"]) for r in rows} == {("done", 1)}
    assert sum(r.claimed for r in runners) == 300  # no action claimed twice
    scores = (await client.get("/api/v1/feedback", params={"limit": 1000})).json()["items"]
    per_key = Counter((f["key"], f["run_id"]) for f in scores)
    expected = {(k, i["id"]): 1 for k in ("first", "second") for i in items}
    assert per_key == Counter(expected)
    for rule_id in (first, second):
        got = (await client.get(f"/api/v1/rules/{rule_id}")).json()
        assert got["outcomes"] == {"done": 150}


async def test_a_dead_workers_claims_come_back_after_the_lease_before_the_backlog(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pid = await project_id(client)
    await make_rule(client, regex_rule(pid, "backlog"))
    await post_runs(client, run_items(40))
    queue_actions(app)
    clock = FakeClock(app.state.ctx.clock())
    ctx = dataclasses.replace(app.state.ctx, clock=clock)

    dead = rule_actions.claim(ctx, "dead-worker", 5)  # claimed, then the process is killed
    dead_pks = [int(c.action["pk"]) for c in dead]
    assert dead_pks == [int(r["pk"]) for r in action_rows(ctx)[:5]]  # the oldest ones

    # Within the lease the others work on the backlog behind them.
    alive = rule_actions.claim(ctx, "alive", 10)
    assert not {int(c.action["pk"]) for c in alive} & set(dead_pks)
    clock.now += int(LEASE_S * 1_000_000) - 1
    assert not {int(c.action["pk"]) for c in rule_actions.claim(ctx, "alive", 30)} & set(dead_pks)

    # One lease after the claim they are the first claimed again, ahead of the 35 other due
    # actions (of which 25 were due earlier): they are the oldest pending ones.
    rule_actions.release(ctx, "alive", [int(r["pk"]) for r in action_rows(ctx)[15:]])
    clock.now += 1
    back = rule_actions.claim(ctx, "survivor", 5)
    assert [int(c.action["pk"]) for c in back] == dead_pks
    assert {int(c.action["attempts"]) for c in back} == {2}
    # The dead worker's late outcome, if it ever came, is not recorded over the survivor's.
    late = [(c.action, {"status": "done", "detail": {}, "updated_at": clock.now}) for c in dead]
    assert rule_actions.finish(ctx, "dead-worker", late) == 0
    assert {r["lease_owner"] for r in action_rows(ctx)[:5]} == {"survivor"}


async def test_a_cheap_rules_actions_are_claimed_whatever_another_rules_backlog(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    big = await make_rule(client, regex_rule(await project_id(client), "big"))
    await post_runs(client, run_items(200))
    queue_actions(app)  # 200 actions of the big rule, all due
    cheap = await make_rule(client, regex_rule(await project_id(client, "other"), "cheap"))
    await post_runs(client, run_items(5), project="other")
    queue_actions(app)  # then 5 of the cheap one, queued behind them
    ctx = app.state.ctx

    first = rule_actions.claim(ctx, "w", 16)
    # the cheap rule gets all of its 5 at once; the big one the share the cheap one left
    assert Counter(c.action["rule_id"] for c in first) == Counter({cheap: 5, big: 11})
    # and the big rule's turn does not come first every time
    second = rule_actions.claim(ctx, "w", 2, turn=1)
    assert [c.action["rule_id"] for c in second] == [big, big]  # cheap has nothing left

    # Driven by a runner, the cheap rule gets half the slots: its actions are in its first
    # claim, beside up to BATCH_MAX of the big rule's per slot, and in the first batch of it
    # (test_rule_batches checks the order of the batches): all done while the big rule's
    # backlog is not (a batch finishing early lets the runner claim again meanwhile).
    rule_actions.release(ctx, "w", [int(c.action["pk"]) for c in first + second])
    runner = ActionRunner(ctx, threads=4)
    try:
        while (await client.get(f"/api/v1/rules/{cheap}")).json()["outcomes"] != {"done": 5}:
            assert runner.tick() > 0
        big_done = (await client.get(f"/api/v1/rules/{big}")).json()["outcomes"].get("done", 0)
        assert big_done < 200
    finally:
        runner.close()


async def test_two_claimers_take_disjoint_sets(
    client: httpx.AsyncClient, app: FastAPI, backend: str
) -> None:
    pid = await project_id(client)
    rule_id = await make_rule(client, regex_rule(pid, "shared"))
    await post_runs(client, run_items(30))
    queue_actions(app)
    ctx = app.state.ctx
    now = ctx.clock()
    lease = now + 10_000_000
    engine = ctx.db.engine
    if backend == "postgres":
        # Two open transactions at once: the second skips the rows the first has locked
        # instead of waiting for them (FOR UPDATE SKIP LOCKED).
        with engine.connect() as a, engine.connect() as b:
            ta, tb = a.begin(), b.begin()
            got_a = rule_queue.claim_for_rule(a, rule_id, now, 20, "a", lease)
            got_b = rule_queue.claim_for_rule(b, rule_id, now, 20, "b", lease)
            tb.commit()
            ta.commit()
    else:
        # SQLite: one writer at a time; claims made one after the other.
        with engine.begin() as a:
            got_a = rule_queue.claim_for_rule(a, rule_id, now, 20, "a", lease)
        with engine.begin() as b:
            got_b = rule_queue.claim_for_rule(b, rule_id, now, 20, "b", lease)
    pks_a = {int(r["pk"]) for r in got_a}
    pks_b = {int(r["pk"]) for r in got_b}
    assert len(pks_a) == 20
    assert len(pks_b) == 10
    assert not pks_a & pks_b
    owners = Counter(r["lease_owner"] for r in action_rows(ctx))
    assert owners == Counter({"a": 20, "b": 10})


async def test_a_worker_builds_one_transport_for_all_its_judges_and_none_for_regex(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    fast = FakeLLM(lambda body: (200, completion('{"reasoning": "ok", "score": 1}'), {}))
    try:
        pid = await project_id(client)
        await make_rule(client, regex_rule(pid, "only regex"))
        ctx = app.state.ctx
        await post_runs(client, run_items(10))
        queue_actions(app)
        runner = ActionRunner(ctx)
        assert runner.flush() >= 10
        assert runner.transport.built == 0  # nothing was sent: no TLS context, no pool

        judge = {
            "name": "llm_judge",
            "config": {"base_url": fast.url, "model": "judge-1", "api_key": "k", "cache": False},
        }
        await make_rule(client, regex_rule(pid, "judged", judge=judge, judge_mode="always"))
        await post_runs(client, run_items(12))
        queue_actions(app)
        runner.flush()
        assert fast.calls == 12  # the new rule judges the runs that came after it
        assert runner.transport.built == 1  # one for the worker, not one per evaluation
        runner.close()
        assert runner.transport.built == 1
    finally:
        fast.stop()
