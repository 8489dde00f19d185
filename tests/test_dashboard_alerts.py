"""Alert pages in-process over httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import html as htmllib
import re
import time
from typing import Any

import httpx
from fastapi import FastAPI

from dashboard_helpers import csrf_of, other_workspace_browser, sign_in
from goldloop.services import alerts, auth
from goldloop.services.context import ServiceContext
from test_dashboard_runs import EVIL, assert_escaped

ERRORS_OVER_10_PERCENT = {"type": "threshold", "op": ">", "value": 0.1, "min_samples": 10}


async def _alert_rule(
    client: httpx.AsyncClient,
    project_id: str,
    name: str,
    *,
    metric: dict[str, Any] | None = None,
    condition: dict[str, Any] | None = None,
) -> str:
    """An alert rule over a 10-minute window (by default: error rate above 10%); its id."""
    made = await client.post(
        "/api/v1/alert-rules",
        json={
            "project_id": project_id,
            "name": name,
            "metric": metric or {"kind": "error_rate"},
            "condition": condition or ERRORS_OVER_10_PERCENT,
            "window_s": 600,
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_rules_list_history_chart_and_acknowledge(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    now = int(time.time() * 1_000_000)
    runs = [
        {
            "id": f"a{i}",
            "trace_id": f"a{i}",
            "name": "answer",
            "start_time": now - 60_000_000 + i,
            "end_time": now - 59_000_000 + i,
            "error": "boom" if i % 2 else None,
        }
        for i in range(40)
    ]
    r = await client.post("/api/v1/runs/batch", json={"project": "alerting", "runs": runs})
    assert r.status_code == 202
    project = next(
        p for p in (await client.get("/api/v1/projects")).json()["items"] if p["name"] == "alerting"
    )
    rule_id = await _alert_rule(client, project["id"], "errors " + EVIL)
    ctx: ServiceContext = app.state.ctx
    who = auth.authenticate(ctx, ctx.settings.admin_key_path.read_text().strip())
    rule = alerts.get_rule(ctx, who, rule_id)
    assert alerts.evaluate_rule(ctx, rule, ctx.clock()) == "fired"

    listing = await browser.get("/alerts")
    assert listing.status_code == 200
    assert "firing" in listing.text
    assert_escaped(listing.text)
    page = await browser.get(f"/alerts/{rule_id}")
    assert page.status_code == 200
    assert_escaped(page.text)
    assert 'class="marker m-fired"' in page.text
    assert "Acknowledge" in page.text
    token = csrf_of(page.text)
    assert (await browser.post(f"/alerts/{rule_id}/acknowledge")).status_code == 403
    acked = await browser.post(f"/alerts/{rule_id}/acknowledge", data={"csrf": token})
    assert acked.status_code == 303
    after = await browser.get(f"/alerts/{rule_id}")
    assert "acknowledged by dashboard" in after.text
    again = await browser.post(f"/alerts/{rule_id}/acknowledge", data={"csrf": token})
    assert again.status_code == 303  # acknowledging twice is harmless
    assert (await browser.get("/alerts/nope")).status_code == 404


async def test_alert_rules_are_switched_and_deleted_by_admins_only(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    project = (await client.post("/api/v1/projects", json={"name": "alerting"})).json()
    rule_id = await _alert_rule(client, project["id"], "errors")
    ctx: ServiceContext = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    member = auth.create_key(ctx, ws.id, "reader", role="member")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as reader:
        assert (await sign_in(reader, member.secret)).status_code == 303
        page = await reader.get(f"/alerts/{rule_id}")
        assert "Delete…" not in page.text
        for path, data in (("enabled", {"enabled": "false"}), ("delete", {"confirm": "yes"})):
            refused = await reader.post(
                f"/alerts/{rule_id}/{path}", data={"csrf": csrf_of(page.text), **data}
            )
            assert refused.status_code == 403
    assert (await client.get(f"/api/v1/alert-rules/{rule_id}")).json()["enabled"] is True

    csrf = csrf_of((await browser.get(f"/alerts/{rule_id}")).text)
    for flag in ("false", "true"):
        switched = await browser.post(
            f"/alerts/{rule_id}/enabled", data={"csrf": csrf, "enabled": flag}
        )
        assert switched.status_code == 303
        got = (await client.get(f"/api/v1/alert-rules/{rule_id}")).json()
        assert got["enabled"] is (flag == "true")
    ask = await browser.post(f"/alerts/{rule_id}/delete", data={"csrf": csrf})
    assert ask.status_code == 200
    assert 'name="confirm" value="yes"' in ask.text
    assert (await client.get(f"/api/v1/alert-rules/{rule_id}")).status_code == 200
    gone = await browser.post(f"/alerts/{rule_id}/delete", data={"csrf": csrf, "confirm": "yes"})
    assert gone.status_code == 303
    assert (await client.get(f"/api/v1/alert-rules/{rule_id}")).status_code == 404


async def test_channels_are_created_and_deleted_from_the_alerts_page(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    listing = await browser.get("/alerts")
    assert "New channel" in listing.text
    csrf = csrf_of(listing.text)
    url = "http://127.0.0.1:9/hooks/path-secret"
    form = {"csrf": csrf, "name": "ops " + EVIL, "kind": "webhook", "url": url}
    bad = await browser.post("/alerts/channels", data={**form, "url": "ftp://x"})
    assert bad.status_code == 400
    assert "channel url must be an http(s) URL" in bad.text
    pd = await browser.post("/alerts/channels", data={**form, "kind": "pagerduty"})
    assert pd.status_code == 400
    assert "routing key" in pd.text
    made = await browser.post("/alerts/channels", data={**form, "secret": "s3cr3t-value"})
    assert made.status_code == 200
    assert "signing secret" in made.text
    assert "path-secret" not in made.text
    assert "s3cr3t-value" not in made.text
    assert_escaped(made.text)
    again = await browser.post("/alerts/channels", data=form)
    assert again.status_code == 409
    (channel,) = (await client.get("/api/v1/channels")).json()
    assert channel["name"] == "ops " + EVIL
    assert channel["has_secret"]

    project = (await client.post("/api/v1/projects", json={"name": "paged"})).json()
    rule_form = {
        "csrf": csrf,
        "name": "errors",
        "project_id": project["id"],
        "metric": '{"kind": "error_rate"}',
        "condition": '{"type": "threshold", "op": ">", "value": 0.2}',
        "window_s": "600",
        "every_s": "60",
        "cooldown_s": "900",
        "channel_ids": channel["id"],
        "enabled": "on",
    }
    broken = await browser.post("/alerts", data={**rule_form, "metric": "{"})
    assert broken.status_code == 400
    assert "metric is not valid JSON" in broken.text
    unknown = await browser.post("/alerts", data={**rule_form, "metric": '{"kind": "vibes"}'})
    assert unknown.status_code == 400
    assert "metric.kind" in unknown.text
    assert 'value="errors"' in unknown.text  # the form comes back as typed
    assert (await client.get("/api/v1/alert-rules")).json() == []
    created = await browser.post("/alerts", data=rule_form)
    assert created.status_code == 303
    (alert,) = (await client.get("/api/v1/alert-rules")).json()
    assert alert["channel_ids"] == [channel["id"]]
    assert alert["window_s"] == 600
    assert alert["condition"]["value"] == 0.2
    assert created.headers["location"] == f"/alerts/{alert['id']}"
    await client.delete(f"/api/v1/alert-rules/{alert['id']}")

    async with other_workspace_browser(app) as other:
        assert "ops " not in (await other.get("/alerts")).text
    ctx: ServiceContext = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    member = auth.create_key(ctx, ws.id, "reader", role="member")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as reader:
        assert (await sign_in(reader, member.secret)).status_code == 303
        page = await reader.get("/alerts")
        assert "New channel" not in page.text
        mine = {**form, "csrf": csrf_of(page.text), "name": "x"}
        assert (await reader.post("/alerts/channels", data=mine)).status_code == 403
        assert (await reader.post("/alerts", data=mine)).status_code == 403
        delete = f"/alerts/channels/{channel['id']}/delete"
        refused = await reader.post(delete, data={"csrf": csrf_of(page.text), "confirm": "yes"})
        assert refused.status_code == 403

    delete = f"/alerts/channels/{channel['id']}/delete"
    ask = await browser.post(delete, data={"csrf": csrf})
    assert ask.status_code == 200
    assert 'name="confirm" value="yes"' in ask.text
    assert len((await client.get("/api/v1/channels")).json()) == 1
    gone = await browser.post(delete, data={"csrf": csrf, "confirm": "yes"})
    assert gone.status_code == 303
    assert (await client.get("/api/v1/channels")).json() == []


async def test_an_alert_rule_is_edited_from_its_page(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    project = (await client.post("/api/v1/projects", json={"name": "edited"})).json()
    rule_id = await _alert_rule(
        client,
        project["id"],
        "latency",
        metric={"kind": "latency_p95", "filter": 'name = "answer"'},
        condition={"type": "threshold", "op": ">", "value": 2000},
    )
    page = await browser.get(f"/alerts/{rule_id}")
    assert "Edit this alert rule" in page.text
    metric = re.search(r'<textarea id="a-metric" name="metric"[^>]*>(.*?)</textarea>', page.text)
    assert metric
    form = {
        "csrf": csrf_of(page.text),
        "name": "latency " + EVIL,
        "metric": htmllib.unescape(metric.group(1)),
        "condition": '{"type": "threshold", "op": ">", "value": 3000}',
        "window_s": "900",
        "every_s": "60",
        "cooldown_s": "900",
    }
    bad = await browser.post(f"/alerts/{rule_id}", data={**form, "condition": '{"op": "?"}'})
    assert bad.status_code == 400
    assert "condition" in bad.text
    saved = await browser.post(f"/alerts/{rule_id}", data=form)
    assert saved.status_code == 303
    got = (await client.get(f"/api/v1/alert-rules/{rule_id}")).json()
    assert got["name"] == "latency " + EVIL
    assert got["metric"]["filter"] == 'name = "answer"'
    assert got["condition"]["value"] == 3000
    assert got["window_s"] == 900
    assert got["enabled"] is False  # the box was not ticked
    assert_escaped((await browser.get(f"/alerts/{rule_id}")).text)
    async with other_workspace_browser(app) as other:
        assert (await other.post(f"/alerts/{rule_id}", data=form)).status_code in (403, 404)
