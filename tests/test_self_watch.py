"""Alert rules that watch Goldloop itself, evaluated and delivered by the server's watchdog with
no worker running: a worker that stops heart-beating pages, a growing backlog pages, and both
resolve when the workers come back (SQLite and PostgreSQL, a fake clock, a real receiver)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.fake_clock import FakeClock
from tests.receiver import Receiver

from goldloop.settings import Settings
from goldloop.workers.service_loops import Workers
from goldloop.workers.watchdog import Watchdog
from test_server_metrics import add_rule, run_items

T0 = 1_790_000_000_000_000
S = 1_000_000
API = "/api/v1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def _alert(
    client: httpx.AsyncClient, hook: Receiver, metric: dict[str, Any], op: str, value: float
) -> str:
    project = (await client.post(f"{API}/projects", json={"name": "ops"})).json()
    channel = (
        await client.post(
            f"{API}/channels", json={"name": "on-call", "kind": "webhook", "url": hook.url}
        )
    ).json()
    rule = await client.post(
        f"{API}/alert-rules",
        json={
            "project_id": project["id"],
            "name": f"{metric['kind']} {op} {value}",
            "metric": metric,
            "condition": {"type": "threshold", "op": op, "value": value, "resolve_after_s": 0},
            "window_s": 600,
            "every_s": 60,
            "cooldown_s": 0,
            "channel_ids": [channel["id"]],
        },
    )
    assert rule.status_code == 201, rule.text
    return str(rule.json()["id"])


def _events(hook: Receiver) -> list[tuple[str, Any]]:
    return [(b["event"], b["numbers"]["value"]) for b in hook.bodies()]


async def test_dead_workers_page_and_their_return_resolves(
    app: FastAPI, client: httpx.AsyncClient, hook: Receiver, clock: FakeClock
) -> None:
    settings: Settings = app.state.ctx.settings
    rule_id = await _alert(client, hook, {"kind": "workers_alive"}, "<", 1)
    worker = Workers(app.state.ctx)
    watchdog = Watchdog(app.state.ctx)
    try:
        worker.heartbeat.flush()  # one worker, alive
        watchdog.tick()
        assert hook.bodies() == []
        state = (await client.get(f"{API}/alert-rules/{rule_id}")).json()
        assert state["state"] == "ok"
        assert state["last_evaluation"]["value"] == 1

        # killed: no heartbeat for longer than worker_dead_after_s; nothing else runs
        clock.now += int(settings.worker_dead_after_s * S) + S
        watchdog.tick()
        assert _events(hook) == [("fired", 0)]
        assert "workers_alive = 0" in hook.bodies()[0]["reason"]

        clock.now += 60 * S  # still dead a minute later: no second page
        watchdog.tick()
        assert len(hook.bodies()) == 1

        worker.heartbeat.flush()  # back
        clock.now += 60 * S
        watchdog.tick()
        assert _events(hook) == [("fired", 0), ("resolved", 1)]
    finally:
        worker.stop()
        watchdog.stop()


async def test_a_backlog_that_grows_old_pages(
    app: FastAPI, client: httpx.AsyncClient, hook: Receiver, clock: FakeClock
) -> None:
    rule = await add_rule(client, hook, "judge")
    r = await client.post(
        f"{API}/runs/batch", json={"project": "judge-project", "runs": run_items(3)}
    )
    assert r.status_code == 202, r.text
    tailer = Workers(app.state.ctx)
    tailer.rules.flush()  # three actions queued, no worker executes them
    await _alert(client, hook, {"kind": "rule_backlog_age", "rule_id": rule}, ">", 600)
    watchdog = Watchdog(app.state.ctx)
    try:
        watchdog.tick()
        assert hook.bodies() == []  # young: 0 s

        clock.now += 601 * S
        watchdog.tick()
        fired = [b for b in hook.bodies() if "event" in b]
        assert [(b["event"], b["numbers"]["value"]) for b in fired] == [("fired", 601)]

        tailer.flush()  # a worker drains it (its webhooks go to the same receiver)
        clock.now += 60 * S
        watchdog.tick()
        events = [(b["event"], b["numbers"]["value"]) for b in hook.bodies() if "event" in b]
        assert events == [("fired", 601), ("resolved", 0)]
    finally:
        tailer.stop()
        watchdog.stop()


async def test_self_watch_metrics_refuse_what_they_cannot_use(
    app: FastAPI, client: httpx.AsyncClient, hook: Receiver
) -> None:
    project = (await client.post(f"{API}/projects", json={"name": "ops"})).json()
    base = {
        "project_id": project["id"],
        "name": "x",
        "window_s": 600,
        "every_s": 60,
        "channel_ids": [],
    }
    cases = [
        ({"kind": "workers_alive"}, {"type": "change"}, "condition.type"),
        ({"kind": "workers_alive", "rule_id": "r"}, {"type": "threshold"}, "metric.rule_id"),
        ({"kind": "rule_backlog", "rule_id": "nope"}, {"type": "threshold"}, "metric.rule_id"),
        ({"kind": "rule_backlog", "key": "k"}, {"type": "threshold"}, "metric.key"),
        ({"kind": "rule_backlog_age", "filter": 'eq(name, "x")'}, {"type": "threshold"}, None),
    ]
    for metric, condition, field in cases:
        r = await client.post(
            f"{API}/alert-rules", json={**base, "metric": metric, "condition": condition}
        )
        assert r.status_code == 400, (metric, r.text)
        if field is not None:
            assert r.json()["error"]["details"]["field"] == field, r.text
