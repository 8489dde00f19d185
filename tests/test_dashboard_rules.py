"""Rule pages in-process over httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from goldloop.services import rule_actions, rules
from goldloop.services.context import ServiceContext
from test_dashboard_runs import EVIL, assert_escaped, ingest, trace_items


async def test_rules_list_and_history(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("tr1", evil=True))
    project = next(
        p for p in (await client.get("/api/v1/projects")).json()["items"] if p["name"] == "support"
    )
    assert (await client.post("/api/v1/datasets", json={"name": "golden"})).status_code == 201
    made = await client.post(
        "/api/v1/rules",
        json={
            "project_id": project["id"],
            "name": "golden " + EVIL,
            "filter": 'name ~ "script"',
            "actions": [{"type": "add_to_dataset", "dataset": "golden"}],
        },
    )
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    ctx: ServiceContext = app.state.ctx
    rules.tail_once(ctx)
    rule_actions.execute_due(ctx)

    listing = await browser.get("/rules")
    assert listing.status_code == 200
    assert_escaped(listing.text)
    assert "add_to_dataset → golden" in listing.text
    page = await browser.get(f"/rules/{rule_id}")
    assert page.status_code == 200
    assert_escaped(page.text)
    assert "tr1-root" in page.text
    assert "done 1" in page.text
    failed = await browser.get(f"/rules/{rule_id}", params={"status": "failed"})
    assert "No actions with status failed" in failed.text
    assert (await browser.get("/rules/nope")).status_code == 404
