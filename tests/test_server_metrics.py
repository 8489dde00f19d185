"""/metrics: the server reporting on itself, on SQLite and PostgreSQL.

Worker liveness and the rule backlog come from the database, so they stay true when no worker
runs: a fake clock moves time, the heartbeat rows and pending actions stay where they are.
"""

from __future__ import annotations

import re
import socket
import uuid

import httpx
import pytest
from fastapi import FastAPI
from tests.fake_clock import FakeClock
from tests.receiver import Receiver

from goldloop._version import __version__
from goldloop.services import auth
from goldloop.settings import Settings, load_settings
from goldloop.workers.service_loops import Workers

T0 = 1_790_000_000_000_000
API = "/api/v1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the series ``name`` whose labels include ``labels`` (None: no such)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        series, _, raw = head.partition("{")
        if series != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', raw))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def run_items(n: int) -> list[dict[str, object]]:
    items = []
    for i in range(n):
        rid = uuid.uuid4().hex
        items.append(
            {
                "id": rid,
                "trace_id": rid,
                "name": "answer",
                "start_time": T0 + i,
                "end_time": T0 + 500_000 + i,
                "inputs": {"q": i},
                "outputs": {"a": i},
            }
        )
    return items


async def add_rule(client: httpx.AsyncClient, hook: Receiver, name: str) -> str:
    pid = (await client.post(f"{API}/projects", json={"name": f"{name}-project"})).json()["id"]
    rule = await client.post(
        f"{API}/rules",
        json={"project_id": pid, "name": name, "actions": [{"type": "webhook", "url": hook.url}]},
    )
    assert rule.status_code == 201, rule.text
    return str(rule.json()["id"])


async def test_metrics_need_an_admin_key(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    assert (await anon.get("/metrics")).status_code == 401
    assert (await anon.get("/metrics", headers={"x-api-key": "gl_not-a-key"})).status_code == 401
    ctx = app.state.ctx
    default = auth.workspace_by_name(ctx, "default")
    member = auth.create_key(ctx, default.id, "reader", role="member").secret
    assert (await anon.get("/metrics", headers={"x-api-key": member})).status_code == 403
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert sample(r.text, "goldloop_build_info", version=__version__) == 1
    assert sample(r.text, "goldloop_write_queue_depth") is not None
    assert sample(r.text, "goldloop_db_pool_size") is not None
    assert sample(r.text, "goldloop_db_pool_connections", state="in_use") is not None


async def test_a_worker_that_stops_heart_beating_shows_as_dead(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    settings: Settings = app.state.ctx.settings
    alive, gone = Workers(app.state.ctx), Workers(app.state.ctx)
    alive.heartbeat.flush()
    gone.heartbeat.flush()
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_worker_up", worker=alive.heartbeat.identity.id) == 1
    assert sample(text, "goldloop_worker_up", worker=gone.heartbeat.identity.id) == 1
    assert sample(text, "goldloop_workers", state="alive") == 2

    # `gone` is killed: it writes nothing more. `alive` keeps beating.
    clock.now += int(settings.worker_dead_after_s * 1_000_000) + 1
    alive.heartbeat.flush()
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_worker_up", worker=alive.heartbeat.identity.id) == 1
    assert sample(text, "goldloop_worker_up", worker=gone.heartbeat.identity.id) == 0
    silent = sample(text, "goldloop_worker_last_seen_seconds", worker=gone.heartbeat.identity.id)
    assert silent == pytest.approx(settings.worker_dead_after_s + 1e-6, abs=1e-3)
    assert sample(text, "goldloop_workers", state="dead") == 1

    # a clean stop is not a death: the worker leaves the liveness series
    alive.start()
    alive.stop()
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_worker_up", worker=alive.heartbeat.identity.id) is None
    assert sample(text, "goldloop_workers", state="stopped") == 1
    assert sample(text, "goldloop_workers", state="alive") == 0
    gone.stop()  # never started: closes its clients, writes nothing
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_worker_up", worker=gone.heartbeat.identity.id) == 0


async def test_backlog_and_oldest_pending_age_come_from_the_database(
    app: FastAPI, client: httpx.AsyncClient, hook: Receiver, clock: FakeClock
) -> None:
    rule_id = await add_rule(client, hook, 'quote" rule')
    r = await client.post(
        f"{API}/runs/batch", json={"project": 'quote" rule-project', "runs": run_items(4)}
    )
    assert r.status_code == 202, r.text
    tailer = Workers(app.state.ctx)
    tailer.rules.flush()  # the actions are queued; no worker executes them
    queued_at = clock.now
    labels = {"rule_id": rule_id, "rule": 'quote\\" rule'}

    clock.now = queued_at + 669_000_000
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_rule_pending_actions", **labels) == 4
    assert sample(text, "goldloop_rule_oldest_pending_age_seconds", **labels) == 669
    # no worker ran in between: the age keeps growing, it does not freeze
    clock.now = queued_at + 1_202_000_000
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_rule_oldest_pending_age_seconds", **labels) == 1202
    assert sample(text, "goldloop_actions_oldest_pending_age_seconds") == 1202
    assert sample(text, "goldloop_actions_pending") == 4
    # the workspace's own metrics (any key) carry the same age
    workspace_text = (await client.get(f"{API}/metrics")).text
    assert sample(workspace_text, "goldloop_rule_oldest_pending_age_seconds", **labels) == 1202

    tailer.flush()  # a worker comes back and drains the backlog
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_rule_pending_actions", **labels) == 0
    assert sample(text, "goldloop_rule_oldest_pending_age_seconds", **labels) == 0
    assert sample(text, "goldloop_actions_pending") == 0
    assert len(hook.bodies()) == 4
    tailer.stop()


async def test_an_admin_of_another_workspace_sees_only_its_own_rules(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, hook: Receiver
) -> None:
    rule_a = await add_rule(client, hook, "workspace-a-secret-rule")
    ctx = app.state.ctx
    other = auth.create_workspace(ctx, "b")
    b_key = auth.create_key(ctx, other.id, "b admin", role="admin").secret
    b_text = (await anon.get("/metrics", headers={"x-api-key": b_key})).text
    assert rule_a not in b_text
    assert "workspace-a-secret-rule" not in b_text
    a_text = (await client.get("/metrics")).text
    assert sample(a_text, "goldloop_rule_pending_actions", rule_id=rule_a) == 0
    assert "workspace_id=" not in a_text  # labels name the workspace on the operator port only


async def test_requests_are_counted_by_route_template_not_raw_path(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        missing = f"{API}/projects/{uuid.uuid4()}"
        assert (await client.get(missing)).status_code == 404
    text = (await client.get("/metrics")).text
    route = f"{API}/projects/{{project_id}}"
    assert sample(text, "goldloop_http_requests_total", route=route, status="404") == 3
    count = sample(text, "goldloop_http_request_duration_seconds_count", route=route)
    assert count == 3
    inf = sample(text, "goldloop_http_request_duration_seconds_bucket", route=route, le="+Inf")
    assert inf == 3
    assert str(uuid.UUID(missing.rsplit("/", 1)[1])) not in text  # no raw id anywhere
    # an unknown path is one series, whatever the path
    await client.get("/no/such/page/1")
    await client.get("/no/such/page/2")
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_http_requests_total", route="(unmatched)", status="404") == 2
    assert "/no/such/page" not in text


async def test_ingested_runs_and_rejections_by_reason(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    r = await client.post(f"{API}/runs/batch", json={"project": "p", "runs": run_items(5)})
    assert r.status_code == 202, r.text
    assert (await client.post(f"{API}/runs/batch", content=b"{not json")).status_code == 400
    assert (await anon.post(f"{API}/runs/batch", json={"runs": []})).status_code == 401
    text = (await client.get("/metrics")).text
    assert sample(text, "goldloop_ingest_runs_total") == 5
    assert sample(text, "goldloop_ingest_rejected_total", reason="invalid") == 1
    assert sample(text, "goldloop_ingest_rejected_total", reason="unauthenticated") == 1


async def test_request_ids_are_echoed_or_made(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"x-request-id": "trace-42.a:b"})
    assert r.headers["x-request-id"] == "trace-42.a:b"
    assert r.json() == {"status": "ok", "version": __version__}
    for hostile in ("x" * 129, "has space", "new\\nline"):
        r = await client.get("/healthz", headers={"x-request-id": hostile})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    made = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The backend's settings with the operator's metrics port on."""
    overrides = {
        name: getattr(settings, name)
        for name in ("data_dir", "database_url", "workers_in_process", "ingest_processes")
    }
    return load_settings({**overrides, "metrics_port": _free_port()}, environ={})


async def test_the_metrics_port_serves_every_workspace_without_a_key(
    app: FastAPI, client: httpx.AsyncClient, hook: Receiver
) -> None:
    rule_id = await add_rule(client, hook, "on the operator port")
    port = app.state.metrics_port.port
    workspace = auth.workspace_by_name(app.state.ctx, "default").id
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scrape:
        r = await scrape.get("/metrics")
        assert r.status_code == 200
        labels = {"workspace_id": workspace, "rule_id": rule_id}
        assert sample(r.text, "goldloop_rule_pending_actions", **labels) == 0
        assert (await scrape.get("/api/v1/projects")).status_code == 404
