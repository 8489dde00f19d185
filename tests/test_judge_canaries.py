"""Judge drift canaries end to end, on SQLite and PostgreSQL: a judge rule with 100 human-labelled
runs, a real OpenAI-compatible fake on 127.0.0.1 whose judgement depends on the model the rule
names, the workers on an injected clock, and a real webhook receiver.

Swapping the rule's judge model fires the judge-drift alert within one canary cycle, and the
agent-quality alert on the same key does not page (the agent's outputs never changed); accepting
the new judge resolves the drift alert, and the agent alert that then fires says the judge
drifted. An unchanged but noisy judge raises no drift over many cycles; canary calls count
against the rule's daily judge budget and stop at it."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from fastapi import FastAPI
from tests.fake_llm import FakeLLM, completion, section, user_text
from tests.receiver import Receiver

from dashboard_helpers import csrf_of, other_workspace_browser, sign_in
from fake_clock import FakeClock
from goldloop.cli.main import cli
from goldloop.client import Client
from goldloop.services import auth, canaries
from goldloop.services.context import ServiceContext
from goldloop.settings import Settings
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import rule_actions as rule_actions_table
from goldloop.workers.service_loops import Workers
from live_api import live_api
from test_dashboard_runs import EVIL, assert_escaped

S = 1_000_000
T0 = 1_800_000_000 * S
PROJECT = "refunds"
KEY = "refund_ok"


def good(i: int) -> bool:
    """The truth people label: 70% of the agent's answers are right."""
    return i % 10 < 7


def _noise(model: str, marker: str, call: int) -> float:
    digest = hashlib.sha256(f"{model}:{marker}:{call}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Judge:
    """The fake judge's behaviour: model ``judge-a`` agrees with people except for ``noise`` of
    its calls (deterministic per run and call); ``judge-b`` also fails every other good answer."""

    def __init__(self, noise: float = 0.0) -> None:
        self.noise = noise
        self.calls: dict[str, int] = {}

    def __call__(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        response = section(user_text(body), "response")
        found = re.search(r"#(\d+)", response)
        assert found, response
        i = int(found.group(1))
        model = str(body["model"])
        n = self.calls[f"{model}:{i}"] = self.calls.get(f"{model}:{i}", 0) + 1
        verdict = good(i)
        if model == "judge-b" and verdict and i % 2 == 0:
            verdict = False
        if _noise(model, str(i), n) < self.noise:
            verdict = not verdict
        text = f'{{"reasoning": "checked", "score": {int(verdict)}}}'
        return 200, completion(text), {}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def judge() -> Judge:
    return Judge()


@pytest.fixture
def llm(judge: Judge) -> Iterator[FakeLLM]:
    fake = FakeLLM(judge)
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings: Settings, llm: FakeLLM) -> Settings:
    return dataclasses.replace(settings, judge_base_url=llm.url, judge_model="judge-a")


def _runs(start: int, count: int, at: int, name: str = "answer") -> list[dict[str, Any]]:
    return [
        {
            "id": f"run-{i}-{at}",
            "trace_id": f"run-{i}-{at}",
            "name": name,
            "kind": "chain",
            "start_time": at + (i - start) * 1000,
            "end_time": at + (i - start) * 1000 + 500,
            "inputs": {"question": f"can I get a refund? (case {i})"},
            "outputs": {"answer": f"answer #{i}"},
        }
        for i in range(start, start + count)
    ]


def _judge(model: str) -> dict[str, Any]:
    return {"name": "llm_judge", "config": {"key": KEY, "model": model, "criteria": "correctness"}}


async def _setup(
    client: httpx.AsyncClient, workers: Workers, *, labelled: int, sample_rate: float, **rule: Any
) -> dict[str, Any]:
    """A project with ``labelled`` runs people labelled, and a judge rule over it."""
    pid = (await client.post("/api/v1/projects", json={"name": PROJECT})).json()["id"]
    body = {
        "project_id": pid,
        "name": "refund judge",
        "sample_rate": sample_rate,
        "filter": 'name = "answer"',  # live traffic; the labelled history was judged before
        "actions": [
            {
                "type": "evaluate",
                "evaluators": [{"name": "regex", "config": {"key": "answered", "pattern": "#"}}],
                "judge": _judge("judge-a"),
                "judge_mode": "always",
            }
        ],
        **rule,
    }
    created = await client.post("/api/v1/rules", json=body)
    assert created.status_code == 201, created.text
    at = T0 - 3 * 3600 * S
    r = await client.post(
        "/api/v1/runs/batch",
        json={"project": PROJECT, "runs": _runs(0, labelled, at, name="history")},
    )
    assert r.status_code == 202, r.text

    async def label(i: int) -> None:
        fb = {"run_id": f"run-{i}-{at}", "key": KEY, "score": int(good(i)), "source": "human"}
        assert (await client.post("/api/v1/feedback", json=fb)).status_code in (200, 201)

    for first in range(0, labelled, 25):
        await asyncio.gather(*(label(i) for i in range(first, min(labelled, first + 25))))
    workers.flush()
    return {"project_id": pid, "rule": created.json()}


async def _alerts(client: httpx.AsyncClient, hook: Receiver, pid: str, rule_id: str) -> list[str]:
    ids = []
    for name, metric, condition in (
        ("judge drift", {"kind": "judge_drift", "rule_id": rule_id}, {"type": "drift"}),
        (
            "refund answers worse",
            {"kind": "feedback_pass_rate", "key": KEY},
            {"type": "threshold", "op": "<", "value": 0.55, "min_samples": 20},
        ),
    ):
        channel = await client.post(
            "/api/v1/channels", json={"name": f"{name} ch", "kind": "webhook", "url": hook.url}
        )
        r = await client.post(
            "/api/v1/alert-rules",
            json={
                "project_id": pid,
                "name": name,
                "metric": metric,
                "condition": condition,
                "window_s": 600,
                "every_s": 60,
                "cooldown_s": 0,
                "channel_ids": [channel.json()["id"]],
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def _live_traffic(client: httpx.AsyncClient, clock: FakeClock, workers: Workers) -> None:
    """40 more of the agent's answers, as good as ever, judged online by the rule."""
    at = clock.now - 120 * S
    r = await client.post(
        "/api/v1/runs/batch", json={"project": PROJECT, "runs": _runs(1000, 40, at)}
    )
    assert r.status_code == 202


async def test_swapping_the_judge_model_fires_judge_drift_not_the_agent_alert(
    client: httpx.AsyncClient, clock: FakeClock, workers: Workers, hook: Receiver, llm: FakeLLM
) -> None:
    setup = await _setup(client, workers, labelled=100, sample_rate=1.0)
    rule_id = setup["rule"]["id"]
    made = await client.post(f"/api/v1/rules/{rule_id}/canaries", json={"interval_s": 3600})
    assert made.status_code == 201, made.text
    cset = made.json()
    assert (cset["size"], cset["kind"], cset["judge_key"]) == (100, "binary", KEY)
    drift_alert, agent_alert = await _alerts(client, hook, setup["project_id"], rule_id)

    # The first cycle is the baseline: judge-a agrees with every label.
    await _live_traffic(client, clock, workers)
    workers.flush()
    runs = (await client.get(f"/api/v1/canary-sets/{cset['id']}/runs")).json()
    assert [(r["trigger"], r["status"], r["n"]) for r in runs] == [("first", "done", 100)]
    first = runs[0]
    assert first["is_baseline"]
    assert first["judge_model"] == "judge-a"
    assert first["drift"] is None
    assert first["figures"]["kappa"]["value"] == 1.0
    assert first["figures"]["tpr"]["n"] == 70
    assert first["figures"]["tnr"]["n"] == 30
    assert hook.requests == []

    # Swap the judge's model. One flush: the change is seen, the canaries are re-scored, the
    # drift alert fires; the agent alert sees the live pass rate fall and does not page.
    actions = setup["rule"]["actions"]
    actions[0]["judge"] = _judge("judge-b")
    patched = await client.patch(f"/api/v1/rules/{rule_id}", json={"actions": actions})
    assert patched.status_code == 200, patched.text
    clock.now += 60 * S
    await _live_traffic(client, clock, workers)
    workers.flush()
    runs = (await client.get(f"/api/v1/canary-sets/{cset['id']}/runs")).json()
    latest = runs[0]
    assert (latest["trigger"], latest["judge_model"]) == ("judge_changed", "judge-b")
    assert latest["drift"]["drifted"] is True
    assert latest["drift"]["worse"] == 40
    assert latest["drift"]["better"] == 0
    assert latest["figures"]["tpr"]["value"] == pytest.approx(30 / 70)
    assert [r.body["alert"]["name"] for r in hook.requests] == ["judge drift"]
    fired = hook.requests[0].body
    assert fired["event"] == "fired"
    assert "judge drift on rule 'refund judge'" in fired["reason"]
    assert fired["numbers"]["value"] == pytest.approx(0.6)
    assert fired["numbers"]["baseline"] == pytest.approx(1.0)
    assert len(fired["worst_runs"]) == 5
    agent = (await client.get(f"/api/v1/alert-rules/{agent_alert}")).json()
    assert agent["state"] == "ok"
    assert agent["last_evaluation"]["value"] < 0.55  # it would have paged on the judge's scores
    assert "not paged: judge drift detected" in agent["last_evaluation"]["reason"]
    assert "the drop may be the judge, not the agent" in agent["last_evaluation"]["reason"]

    # People decide the stricter judge is right: accept its run as the baseline. The drift
    # alert resolves; the agent alert may now page, and says the judge drifted in its period.
    accepted = await client.post(f"/api/v1/canary-sets/{cset['id']}/accept", json={})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["baseline_run_id"] == latest["id"]
    clock.now += 60 * S
    await _live_traffic(client, clock, workers)
    workers.flush()
    events = {(r.body["alert"]["name"], r.body["event"]): r.body for r in hook.requests[1:]}
    assert sorted(events) == [("judge drift", "resolved"), ("refund answers worse", "fired")]
    note = events[("refund answers worse", "fired")]["reason"]
    assert "judge drift detected on the canaries of rule 'refund judge' at" in note
    assert "the drop may be the judge, not the agent" in note
    incident = (await client.get(f"/api/v1/alert-rules/{agent_alert}/events")).json()
    assert "judge drift detected" in incident[0]["reason"]
    assert (await client.get(f"/api/v1/alert-rules/{drift_alert}")).json()["state"] == "ok"


async def test_an_unchanged_noisy_judge_never_drifts(
    client: httpx.AsyncClient, clock: FakeClock, workers: Workers, hook: Receiver, judge: Judge
) -> None:
    judge.noise = 0.05  # 5% of its verdicts flip at random on every call
    setup = await _setup(client, workers, labelled=30, sample_rate=0.0)
    rule_id = setup["rule"]["id"]
    made = await client.post(
        f"/api/v1/rules/{rule_id}/canaries", json={"interval_s": 3600, "selection": "newest"}
    )
    assert made.status_code == 201, made.text
    set_id = made.json()["id"]
    await _alerts(client, hook, setup["project_id"], rule_id)
    cycles = 10
    for _ in range(cycles):
        workers.flush()
        clock.now += 3600 * S
    runs = (await client.get(f"/api/v1/canary-sets/{set_id}/runs", params={"limit": 100})).json()
    assert len(runs) == cycles
    assert all(r["status"] == "done" for r in runs)
    compared = [r["drift"] for r in runs if r["drift"] is not None]
    assert len(compared) == cycles - 1
    assert sum(d["worse"] + d["better"] for d in compared) > 9  # the noise is real
    assert not any(d["drifted"] for d in compared)
    assert hook.requests == []


async def test_canary_calls_count_against_the_rule_budget(
    client: httpx.AsyncClient, clock: FakeClock, workers: Workers, llm: FakeLLM
) -> None:
    setup = await _setup(client, workers, labelled=30, sample_rate=0.0, daily_judge_budget=70)
    rule_id = setup["rule"]["id"]
    made = await client.post(f"/api/v1/rules/{rule_id}/canaries", json={"interval_s": 600})
    set_id = made.json()["id"]
    for _ in range(4):  # 4 cycles of 30 calls wanted, 70 allowed a day
        workers.flush()
        clock.now += 600 * S
    runs = (await client.get(f"/api/v1/canary-sets/{set_id}/runs")).json()
    assert [r["status"] for r in reversed(runs)] == ["done", "done", "skipped", "skipped"]
    assert "daily judge budget of 70" in runs[0]["detail"]
    assert llm.calls == 60
    rule = (await client.get(f"/api/v1/rules/{rule_id}")).json()
    assert rule["outcomes"].get("failed", 0) == 0
    # The next day the budget is fresh: the next cycle runs.
    clock.now += 86_400 * S
    workers.flush()
    runs = (await client.get(f"/api/v1/canary-sets/{set_id}/runs")).json()
    assert runs[0]["status"] == "done"
    assert llm.calls == 90


async def test_canary_routes_check_roles_workspaces_and_input(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, workers: Workers
) -> None:
    setup = await _setup(client, workers, labelled=12, sample_rate=0.0)
    rule_id = setup["rule"]["id"]
    ctx = app.state.ctx
    ws = auth.authenticate(ctx, client.headers["x-api-key"]).workspace_id
    member = {"x-api-key": auth.create_key(ctx, ws, "m", role="member").secret}
    other_ws = auth.create_workspace(ctx, "other").id
    other = {"x-api-key": auth.create_key(ctx, other_ws, "o", role="admin").secret}
    path = f"/api/v1/rules/{rule_id}/canaries"

    assert (await anon.post(path, json={})).status_code == 401
    assert (await client.post(path, json={}, headers=member)).status_code == 403
    assert (await client.post(path, json={}, headers=other)).status_code == 404
    for bad in ({"size": 0}, {"selection": "best"}, {"interval_s": 5}, {"alpha": 0.9}, {"x": 1}):
        r = await client.post(path, json=bad)
        assert r.status_code in (400, 422), (bad, r.status_code)
    no_labels = await client.post(path, json={"human_key": "nobody_labels_this"})
    assert no_labels.status_code == 400
    assert "label" in no_labels.json()["error"]["message"]

    made = await client.post(path, json={"size": 10, "selection": "balanced"})
    assert made.status_code == 201, made.text
    set_id = made.json()["id"]
    items = (await client.get(f"/api/v1/canary-sets/{set_id}/items")).json()
    assert len(items) == 10
    assert sum(1 for i in items if i["human_score"] < 0.5) == 3  # every failing label of 12
    again = await client.post(path, json={})
    assert again.status_code == 409
    assert (await client.post(path, json={"replace": True})).status_code == 201
    [current] = (await client.get(path, headers=member)).json()
    set_id = current["id"]

    for method, url in (
        ("GET", f"/api/v1/canary-sets/{set_id}"),
        ("GET", f"/api/v1/canary-sets/{set_id}/runs"),
        ("GET", f"/api/v1/canary-sets/{set_id}/items"),
        ("POST", f"/api/v1/canary-sets/{set_id}/run"),
        ("POST", f"/api/v1/canary-sets/{set_id}/accept"),
        ("DELETE", f"/api/v1/canary-sets/{set_id}"),
        ("GET", path),
    ):
        body = {} if method == "POST" else None
        theirs = await client.request(method, url, json=body, headers=other)
        assert theirs.status_code == 404, (method, url, theirs.status_code)
    assert (await client.get("/api/v1/canary-sets", headers=other)).json() == []
    assert len((await client.get("/api/v1/canary-sets", headers=member)).json()) == 1
    for method, url in (
        ("POST", f"/api/v1/canary-sets/{set_id}/run"),
        ("POST", f"/api/v1/canary-sets/{set_id}/accept"),
        ("DELETE", f"/api/v1/canary-sets/{set_id}"),
    ):
        r = await client.request(method, url, json={} if method == "POST" else None, headers=member)
        assert r.status_code == 403, (method, url)

    queued = await client.post(f"/api/v1/canary-sets/{set_id}/run")
    assert queued.status_code == 202, queued.text
    assert (await client.post(f"/api/v1/canary-sets/{set_id}/run")).status_code == 409
    nothing = await client.post(f"/api/v1/canary-sets/{set_id}/accept", json={"run_id": "nope"})
    assert nothing.status_code == 400
    workers.flush()
    runs = (await client.get(f"/api/v1/canary-sets/{set_id}/runs")).json()
    assert [r["trigger"] for r in runs] == ["manual"]
    # a judge_drift alert names a rule of its own project
    bad_alert = await client.post(
        "/api/v1/alert-rules",
        json={
            "project_id": setup["project_id"],
            "name": "x",
            "metric": {"kind": "judge_drift", "rule_id": "nope"},
            "condition": {"type": "drift"},
        },
    )
    assert bad_alert.status_code == 400
    mixed = await client.post(
        "/api/v1/alert-rules",
        json={
            "project_id": setup["project_id"],
            "name": "x",
            "metric": {"kind": "judge_drift"},
            "condition": {"type": "threshold"},
        },
    )
    assert mixed.status_code == 400
    assert (await client.delete(f"/api/v1/canary-sets/{set_id}")).status_code == 204
    assert (await client.get(f"/api/v1/canary-sets/{set_id}")).status_code == 404


def test_the_client_and_cli_show_canary_history(settings: Settings, db: Database) -> None:
    with live_api(settings) as live, Client(live.endpoint, live.key) as client:
        headers = {"x-api-key": live.key}
        pid = httpx.post(
            f"{live.endpoint}/api/v1/projects", json={"name": PROJECT}, headers=headers
        ).json()["id"]
        rule = client.create_rule(
            pid,
            "refund judge",
            [
                {
                    "type": "evaluate",
                    "evaluators": [{"name": "regex", "config": {"key": "any", "pattern": "#"}}],
                    "judge": _judge("judge-a"),
                }
            ],
            sample_rate=0.0,
        )
        assert client.ingest_runs(_runs(0, 12, T0), project=PROJECT) == 12
        with httpx.Client(base_url=live.endpoint, headers=headers) as api:
            for i in range(12):
                fb = {"run_id": f"run-{i}-{T0}", "key": KEY, "score": good(i), "source": "human"}
                assert api.post("/api/v1/feedback", json=fb).status_code in (200, 201)
        workers = Workers(ServiceContext(db=db, settings=settings))
        try:
            made = client.create_canaries(rule["id"], size=12, selection="newest")
            assert made["size"] == 12
            workers.flush()
            actions = client.get_rule(rule["id"])["actions"]
            actions[0]["judge"] = _judge("judge-b")
            client.update_rule(rule["id"], actions=actions)
            workers.flush()
        finally:
            workers.stop()
        [cset] = client.list_canary_sets(rule_id=rule["id"])
        assert cset["latest_run"]["judge_model"] == "judge-b"
        runs = client.canary_runs(cset["id"])
        assert [r["trigger"] for r in runs] == ["judge_changed", "first"]
        assert runs[0]["drift"]["worse"] == 5  # the even good answers: 0, 2, 4, 6 and 10

        def run_cli(*args: str) -> Any:
            base = ["--endpoint", live.endpoint, "--api-key", live.key]
            return CliRunner().invoke(cli, ["canaries", args[0], *base, *args[1:]])

        listed = run_cli("list")
        assert listed.exit_code == 0, listed.output
        assert "refund judge  12 canaries" in listed.output
        shown = run_cli("runs", cset["id"])
        assert shown.exit_code == 0, shown.output
        lines = shown.output.splitlines()
        assert "judge_changed" in lines[0]
        assert "judge-b" in lines[0]
        assert "baseline" in lines[-1]
        as_json = run_cli("runs", cset["id"], "--json")
        assert json.loads(as_json.output)[0]["figures"]["kind"] == "binary"
        accepted = run_cli("accept", cset["id"])
        assert accepted.exit_code == 0, accepted.output
        assert runs[0]["id"] in accepted.output
        queued = run_cli("run", cset["id"])
        assert "queued" in queued.output
        again = run_cli("run", cset["id"])
        assert again.exit_code != 0
        assert "queued already" in again.output
        missing = run_cli("runs", "nope")
        assert missing.exit_code != 0
        assert "no canary set" in missing.output


async def test_the_rule_page_freezes_runs_and_shows_the_canary_history(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient, workers: Workers
) -> None:
    setup = await _setup(client, workers, labelled=12, sample_rate=0.0)
    rule_id = setup["rule"]["id"]
    page = await browser.get(f"/rules/{rule_id}")
    assert page.status_code == 200
    assert "Judge drift canaries" in page.text
    assert "Freeze canary set" in page.text
    form = {"csrf": csrf_of(page.text), "size": "10", "selection": "newest"}
    assert (await browser.post(f"/rules/{rule_id}/canaries", data=form)).status_code == 303
    assert (await browser.post(f"/rules/{rule_id}/canaries", data=form)).status_code == 409
    bad = await browser.post(f"/rules/{rule_id}/canaries", data={**form, "size": "ten"})
    assert bad.status_code == 400
    assert "size must be a whole number" in bad.text
    # A judge model name is the rule author's text: it is shown escaped.
    actions = setup["rule"]["actions"]
    actions[0]["judge"] = _judge("judge-" + EVIL)
    assert (
        await client.patch(f"/api/v1/rules/{rule_id}", json={"actions": actions})
    ).status_code == 200
    workers.flush()
    page = await browser.get(f"/rules/{rule_id}")
    assert "10 binary canaries" in page.text
    assert "baseline" in page.text
    assert "kappa 1 <span" in page.text
    assert_escaped(page.text)
    [cset] = (await client.get(f"/api/v1/rules/{rule_id}/canaries")).json()
    run = await browser.post(f"/canary-sets/{cset['id']}/run", data={"csrf": csrf_of(page.text)})
    assert run.status_code == 303
    again = await browser.post(f"/canary-sets/{cset['id']}/run", data={"csrf": csrf_of(page.text)})
    assert again.status_code == 409
    assert "queued already" in again.text

    ctx = app.state.ctx
    ws = auth.authenticate(ctx, client.headers["x-api-key"]).workspace_id
    member_key = auth.create_key(ctx, ws, "reviewer", role="member").secret
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as member:
        assert (await sign_in(member, member_key)).status_code == 303
        seen = await member.get(f"/rules/{rule_id}")
        assert seen.status_code == 200
        assert "Judge drift canaries" in seen.text
        assert "Accept the latest run" not in seen.text
        refused = await member.post(
            f"/canary-sets/{cset['id']}/accept", data={"csrf": csrf_of(seen.text)}
        )
        assert refused.status_code == 403
    async with other_workspace_browser(app) as other:
        assert (await other.get(f"/rules/{rule_id}")).status_code == 404
    alert = await client.post(
        "/api/v1/alert-rules",
        json={
            "project_id": setup["project_id"],
            "name": "judge drift",
            "metric": {"kind": "judge_drift", "rule_id": rule_id},
            "condition": {"type": "drift"},
        },
    )
    shown = await browser.get(f"/alerts/{alert.json()['id']}")
    assert shown.status_code == 200
    assert f"judge drift on the canaries of rule {rule_id}" in shown.text
    assert "agreement with people significantly down" in shown.text


def test_the_canary_migration_downgrades_and_upgrades(db: Database) -> None:
    cfg = migrate._config()

    def tables() -> set[str]:
        return set(sa.inspect(db.engine).get_table_names())

    assert {"canary_sets", "canary_items", "canary_runs"} <= tables()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0022_redaction")
    assert not {"canary_sets", "canary_items", "canary_runs"} & tables()
    migrate.upgrade(db.engine)
    assert {"canary_sets", "canary_items", "canary_runs"} <= tables()
    assert migrate.current_revision(db.engine) == migrate.head_revision()


async def test_a_canary_run_whose_action_gave_up_is_recorded_and_rescheduled(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, workers: Workers
) -> None:
    setup = await _setup(client, workers, labelled=6, sample_rate=0.0)
    rule_id = setup["rule"]["id"]
    made = await client.post(f"/api/v1/rules/{rule_id}/canaries", json={"interval_s": 600})
    set_id = made.json()["id"]
    ctx = app.state.ctx
    assert canaries.schedule_due(ctx) == 1
    assert canaries.schedule_due(ctx) == 0  # one queued run at a time
    [queued] = (await client.get(f"/api/v1/canary-sets/{set_id}/runs")).json()
    # Its action failed for good (say, the database was away for every retry).
    a = rule_actions_table.c
    ctx.db.write(
        lambda c: c.execute(
            sa.update(rule_actions_table)
            .where(a.object_id == queued["id"])
            .values(status="failed", detail={"reason": "database unavailable"})
        )
    )
    assert canaries.schedule_due(ctx) == 0  # recorded as failed, the set freed
    [failed] = (await client.get(f"/api/v1/canary-sets/{set_id}/runs")).json()
    assert (failed["status"], failed["detail"]) == ("failed", "database unavailable")
    assert canaries.schedule_due(ctx) == 0  # a failed run waits for the set's next turn
    clock.now += 600 * S
    assert canaries.schedule_due(ctx) == 1
    workers.flush()
    runs = (await client.get(f"/api/v1/canary-sets/{set_id}/runs")).json()
    assert [r["status"] for r in runs] == ["done", "failed"]
    assert runs[0]["is_baseline"]


async def test_without_a_judge_drift_alert_the_agent_alert_pages_and_names_the_drift(
    client: httpx.AsyncClient, clock: FakeClock, workers: Workers, hook: Receiver
) -> None:
    setup = await _setup(client, workers, labelled=30, sample_rate=1.0)
    rule_id = setup["rule"]["id"]
    made = await client.post(f"/api/v1/rules/{rule_id}/canaries", json={"interval_s": 3600})
    assert made.status_code == 201, made.text
    _, agent_alert = await _alerts(client, hook, setup["project_id"], rule_id)
    drift_alert = (await client.get("/api/v1/alert-rules")).json()
    [drift_id] = [a["id"] for a in drift_alert if a["metric"]["kind"] == "judge_drift"]
    assert (await client.delete(f"/api/v1/alert-rules/{drift_id}")).status_code == 204
    await _live_traffic(client, clock, workers)
    workers.flush()
    actions = setup["rule"]["actions"]
    actions[0]["judge"] = _judge("judge-b")
    assert (
        await client.patch(f"/api/v1/rules/{rule_id}", json={"actions": actions})
    ).status_code == 200
    clock.now += 60 * S
    await _live_traffic(client, clock, workers)
    workers.flush()
    assert [(r.body["alert"]["id"], r.body["event"]) for r in hook.requests] == [
        (agent_alert, "fired")
    ]
    reason = hook.requests[0].body["reason"]
    assert "judge drift detected on the canaries of rule 'refund judge'" in reason
    assert "no judge_drift alert watches this judge, so this alert pages" in reason
