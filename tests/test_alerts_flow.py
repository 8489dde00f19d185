"""Alerts end to end: runs in the store, the alert loop on an injected clock, a real receiver."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from tests.receiver import Receiver

from fake_clock import FakeClock
from goldloop.services.context import ServiceContext
from goldloop.store.schema import runs
from goldloop.webhooks import WebhookSignatureError, verify
from goldloop.workers.service_loops import Workers

S = 1_000_000
T0 = 1_800_000_000 * S  # "now" at the start of the test


def add_runs(ctx: ServiceContext, project_id: str, start: int, n: int, errors: int) -> None:
    ws = ctx.db.read(lambda c: c.exec_driver_sql("SELECT workspace_id FROM projects").scalar())

    def write(conn: sa.Connection) -> None:
        rows = []
        for i in range(n):
            rid = uuid.uuid4().hex
            rows.append(
                {
                    "workspace_id": ws,
                    "project_id": project_id,
                    "id": rid,
                    "trace_id": rid,
                    "seq": 0,
                    "is_root": True,
                    "name": "answer",
                    "kind": "chain",
                    "status": "error" if i < errors else "success",
                    "start_time": start + i * 1000,
                    "end_time": start + i * 1000 + 500,
                    "latency_us": 500,
                    "created_at": start,
                    "updated_at": start,
                }
            )
        conn.execute(sa.insert(runs), rows)

    ctx.db.write(write)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def _setup(
    client: httpx.AsyncClient, hook: Receiver, kind: str = "webhook"
) -> tuple[str, str]:
    project = (await client.post("/api/v1/projects", json={"name": "agent-support"})).json()
    body = {"name": f"{kind}-ch", "kind": kind, "url": hook.url}
    if kind == "pagerduty":
        body["secret"] = "routing-key-123"
    channel = (await client.post("/api/v1/channels", json=body)).json()
    rule = await client.post(
        "/api/v1/alert-rules",
        json={
            "project_id": project["id"],
            "name": "errors up",
            "metric": {"kind": "error_rate"},
            "condition": {"type": "change", "alpha": 0.01, "min_samples": 30},
            "window_s": 600,
            "every_s": 60,
            "cooldown_s": 0,
            "channel_ids": [channel["id"]],
        },
    )
    assert rule.status_code == 201, rule.text
    return project["id"], rule.json()["id"]


async def test_drop_fires_once_with_numbers_then_resolves(
    client: httpx.AsyncClient, app: FastAPI, hook: Receiver, clock: FakeClock, workers: Workers
) -> None:
    ctx = workers.ctx
    project_id, rule_id = await _setup(client, hook)
    # Baseline hour: 1% errors. Last 10 minutes: 20% errors.
    add_runs(ctx, project_id, T0 - 3600 * S, 600, 6)
    add_runs(ctx, project_id, T0 - 300 * S, 200, 40)

    workers.flush()
    assert len(hook.requests) == 1
    note = hook.requests[0]
    assert note.body["event"] == "fired"
    assert note.body["numbers"]["samples"] == 200
    assert note.body["numbers"]["value"] == pytest.approx(0.2)
    assert note.body["numbers"]["statistic"] >= note.body["numbers"]["limit"] > 0
    assert len(note.body["worst_runs"]) == 5
    assert note.headers["idempotency-key"].startswith("alert:")
    state = (await client.get(f"/api/v1/alert-rules/{rule_id}")).json()
    assert state["state"] == "firing"

    # Still bad a minute later: no second page.
    clock.now += 60 * S
    workers.flush()
    assert len(hook.requests) == 1

    ack = await client.post(f"/api/v1/alert-rules/{rule_id}/ack", json={"by": "on-call"})
    assert ack.json()["acknowledged_by"] == "on-call"

    # Eleven minutes later the bad window has passed and traffic is clean: the metric is back
    # near the frozen baseline, and it has to stay there for resolve_after_s (900 s) first.
    clock.now += 660 * S
    add_runs(ctx, project_id, clock.now - 300 * S, 200, 1)
    workers.flush()
    assert len(hook.requests) == 1
    clock.now += 300 * S
    add_runs(ctx, project_id, clock.now - 100 * S, 100, 0)
    workers.flush()
    assert len(hook.requests) == 1
    clock.now += 600 * S
    add_runs(ctx, project_id, clock.now - 300 * S, 200, 1)
    workers.flush()
    assert [r.body["event"] for r in hook.requests] == ["fired", "resolved"]
    events = (await client.get(f"/api/v1/alert-rules/{rule_id}/events")).json()
    assert [e["kind"] for e in events] == ["resolved", "acknowledged", "fired"]
    assert events[2]["numbers"]["baseline"] == pytest.approx(0.01)


async def test_few_samples_do_not_page(
    client: httpx.AsyncClient, hook: Receiver, workers: Workers
) -> None:
    project_id, rule_id = await _setup(client, hook)
    add_runs(workers.ctx, project_id, T0 - 3600 * S, 600, 6)
    add_runs(workers.ctx, project_id, T0 - 300 * S, 5, 3)  # 60% errors, but only five runs
    workers.flush()
    assert hook.requests == []
    rule = (await client.get(f"/api/v1/alert-rules/{rule_id}")).json()
    assert rule["state"] == "ok"
    assert "no sustained rise" in rule["last_evaluation"]["reason"]
    assert rule["last_evaluation"]["statistic"] < rule["last_evaluation"]["limit"]


async def test_failed_delivery_is_retried_with_backoff_and_every_attempt_recorded(
    client: httpx.AsyncClient, hook: Receiver, clock: FakeClock, workers: Workers
) -> None:
    project_id, _ = await _setup(client, hook, kind="pagerduty")
    hook.script = [(503, {"Retry-After": "7"}), (500, {})]
    add_runs(workers.ctx, project_id, T0 - 3600 * S, 600, 6)
    add_runs(workers.ctx, project_id, T0 - 300 * S, 200, 40)
    workers.flush()
    assert len(hook.requests) == 1  # 503: retry in 7 s, not now
    clock.now += 6 * S
    workers.deliveries.flush()
    assert len(hook.requests) == 1
    clock.now += 1 * S
    workers.deliveries.flush()
    assert len(hook.requests) == 2  # 500: backoff 4 s (second attempt)
    clock.now += 4 * S
    workers.deliveries.flush()
    assert len(hook.requests) == 3
    assert all(r.body["dedup_key"] == hook.requests[0].body["dedup_key"] for r in hook.requests)
    assert hook.requests[0].body["routing_key"] == "routing-key-123"
    listed = (await client.get("/api/v1/deliveries")).json()
    assert listed[0]["status"] == "sent"
    assert [a["status_code"] for a in listed[0]["attempt_log"]] == [503, 500, 200]


async def test_channel_secrets_are_not_returned_and_bad_rules_are_explained(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, app: FastAPI
) -> None:
    slack = await client.post(
        "/api/v1/channels",
        json={
            "name": "s",
            "kind": "slack",
            "url": "https://hooks.example.test/services/T/B/SECRET",
        },
    )
    assert slack.status_code == 201
    assert "SECRET" not in slack.text
    listed = await client.get("/api/v1/channels")
    assert "SECRET" not in listed.text
    bad_url = await client.post(
        "/api/v1/channels", json={"name": "x", "kind": "webhook", "url": "ftp://x"}
    )
    assert bad_url.status_code == 400
    no_key = await client.post(
        "/api/v1/channels", json={"name": "p", "kind": "pagerduty", "url": "https://x.test/"}
    )
    assert "routing key" in no_key.json()["error"]["message"]

    project = (await client.post("/api/v1/projects", json={"name": "p"})).json()
    base = {"project_id": project["id"], "name": "a", "metric": {"kind": "latency_p95"}}
    change_on_p95 = await client.post(
        "/api/v1/alert-rules", json={**base, "condition": {"type": "change"}}
    )
    assert change_on_p95.status_code == 400
    assert "only threshold" in change_on_p95.json()["error"]["message"]
    unknown_channel = await client.post(
        "/api/v1/alert-rules",
        json={
            **base,
            "condition": {"type": "threshold", "op": ">", "value": 1},
            "channel_ids": ["nope"],
        },
    )
    assert unknown_channel.status_code == 400
    other_project = await client.post(
        "/api/v1/alert-rules",
        json={
            **base,
            "project_id": "nope",
            "condition": {"type": "threshold", "op": ">", "value": 1},
        },
    )
    assert other_project.status_code == 404
    assert (await anon.get("/api/v1/alert-rules")).status_code == 401


async def test_metric_filter_narrows_the_runs_an_alert_watches(
    client: httpx.AsyncClient, hook: Receiver, workers: Workers
) -> None:
    project = (await client.post("/api/v1/projects", json={"name": "agent-support"})).json()
    pid = project["id"]
    base = {
        "project_id": pid,
        "window_s": 600,
        "every_s": 60,
        "cooldown_s": 0,
        "condition": {"type": "threshold", "op": ">", "value": 0.5, "min_samples": 10},
    }
    # Errors only among runs named "checkout": 30 of them all fail, 300 others succeed.
    add_runs(workers.ctx, pid, T0 - 300 * S, 300, 0)
    checkout = (
        await client.post(
            "/api/v1/alert-rules",
            json={
                **base,
                "name": "checkout errors",
                "metric": {"kind": "error_rate", "filter": 'name = "checkout"'},
            },
        )
    ).json()
    everything = (
        await client.post(
            "/api/v1/alert-rules",
            json={
                **base,
                "name": "all errors",
                "metric": {"kind": "error_rate"},
            },
        )
    ).json()
    ws = workers.ctx.db.read(
        lambda c: c.exec_driver_sql("SELECT workspace_id FROM projects").scalar()
    )

    def failing_checkouts(conn: sa.Connection) -> None:
        rows = []
        for i in range(30):
            rid = uuid.uuid4().hex
            rows.append(
                {
                    "workspace_id": ws,
                    "project_id": pid,
                    "id": rid,
                    "trace_id": rid,
                    "seq": 0,
                    "is_root": True,
                    "name": "checkout",
                    "kind": "chain",
                    "status": "error",
                    "start_time": T0 - 200 * S + i,
                    "end_time": T0 - 199 * S,
                    "latency_us": 1,
                    "created_at": T0,
                    "updated_at": T0,
                }
            )
        conn.execute(sa.insert(runs), rows)

    workers.ctx.db.write(failing_checkouts)
    workers.flush()
    assert (await client.get(f"/api/v1/alert-rules/{checkout['id']}")).json()["state"] == "firing"
    assert (await client.get(f"/api/v1/alert-rules/{everything['id']}")).json()["state"] == "ok"
    bad = await client.post(
        "/api/v1/alert-rules",
        json={
            **base,
            "name": "x",
            "metric": {"kind": "error_rate", "filter": "name ="},
        },
    )
    assert bad.status_code == 400
    assert "position" in bad.json()["error"]["message"]


async def test_webhook_channels_are_signed_with_a_secret_shown_once(
    client: httpx.AsyncClient, app: FastAPI, hook: Receiver, workers: Workers
) -> None:
    ctx = workers.ctx
    project = (await client.post("/api/v1/projects", json={"name": "agent-support"})).json()
    made = {}
    for kind in ("webhook", "slack"):
        r = await client.post(
            "/api/v1/channels", json={"name": kind, "kind": kind, "url": hook.url}
        )
        assert r.status_code == 201, r.text
        made[kind] = r.json()
    secret = made["webhook"]["signing_secret"]
    assert secret.startswith("whsec_")
    assert made["webhook"]["has_signing_secret"] is True
    assert made["slack"]["signing_secret"] is None  # Slack and PagerDuty use their own auth
    listed = await client.get("/api/v1/channels")
    assert secret not in listed.text
    assert all("signing_secret" not in c for c in listed.json())
    rule = await client.post(
        "/api/v1/alert-rules",
        json={
            "project_id": project["id"],
            "name": "errors up",
            "metric": {"kind": "error_rate"},
            "condition": {"type": "threshold", "op": ">", "value": 0.1, "min_samples": 10},
            "window_s": 600,
            "channel_ids": [made["webhook"]["id"], made["slack"]["id"]],
        },
    )
    assert rule.status_code == 201, rule.text
    add_runs(ctx, project["id"], T0 - 300 * S, 50, 25)
    workers.flush()
    assert len(hook.requests) == 2
    by_kind = {("text" in r.body): (r, raw) for r, raw in zip(hook.requests, hook.raw, strict=True)}
    signed, raw = by_kind[False]
    assert verify(secret, signed.headers, raw, now=T0 / S) == T0 // S
    assert signed.body["event"] == "fired"
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify(secret, signed.headers, raw.replace(b"fired", b"fixed"), now=T0 / S)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify(secret, signed.headers, raw, now=T0 / S + 301)
    slack, _ = by_kind[True]
    assert "goldloop-signature" not in slack.headers
