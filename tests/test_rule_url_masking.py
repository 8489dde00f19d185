"""Rule webhook URLs are shown like channel URLs (scheme://host/…) in the API and the dashboard,
stay usable by the workers, and survive a GET-edit-PATCH round trip unchanged."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tests.receiver import receiver
from tests.test_rules_flow import post_runs, project_id, run_items

from goldloop.domain.outbound import masked_url
from goldloop.workers.service_loops import Workers

PATH_SECRET = "T000/B000/xoxb-path-secret"


def test_masked_url_keeps_only_scheme_host_and_port() -> None:
    assert masked_url("https://hooks.slack.com/services/T/B/x?y=1") == "https://hooks.slack.com/…"
    assert masked_url("http://user:pw@10.0.0.1:8080/p") == "http://10.0.0.1:8080/…"
    assert masked_url("http://[::1]:9/p") == "http://[::1]:9/…"


async def test_rule_webhook_urls_are_masked_but_still_used(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, app: FastAPI
) -> None:
    pid = await project_id(client)
    with receiver() as hook:
        url = f"{hook.url}/{PATH_SECRET}"
        body = {
            "project_id": pid,
            "name": "to the hook",
            "actions": [
                {"type": "webhook", "url": url},
                {
                    "type": "evaluate",
                    "evaluators": [{"name": "regex", "config": {"key": "ok", "pattern": "a"}}],
                },
            ],
        }
        made = await client.post("/api/v1/rules", json=body)
        assert made.status_code == 201, made.text
        rule_id = made.json()["id"]
        port = hook.url.split(":")[2].split("/")[0]
        shown = f"http://127.0.0.1:{port}/…"
        responses = [
            made,
            await client.get(f"/api/v1/rules/{rule_id}"),
            await client.get("/api/v1/rules"),
            await browser.get("/rules"),
            await browser.get(f"/rules/{rule_id}"),
        ]
        for r in responses:
            assert r.status_code == 200 or r.status_code == 201, r.text
            assert PATH_SECRET not in r.text
            assert shown in r.text
        # A client that reads the rule, edits something else and sends the actions back keeps
        # the stored URL, not the masked one.
        got = (await client.get(f"/api/v1/rules/{rule_id}")).json()
        patched = await client.patch(
            f"/api/v1/rules/{rule_id}", json={"actions": got["actions"], "name": "renamed"}
        )
        assert patched.status_code == 200, patched.text
        workers = Workers(app.state.ctx)
        try:
            await post_runs(client, run_items(1))
            workers.flush()
        finally:
            workers.stop()
        assert [r.path for r in hook.requests] == [f"/hook/{PATH_SECRET}"]


async def test_a_masked_value_that_matches_nothing_is_refused(client: httpx.AsyncClient) -> None:
    pid = await project_id(client)
    made = await client.post(
        "/api/v1/rules",
        json={
            "project_id": pid,
            "name": "hook",
            "actions": [{"type": "webhook", "url": "https://hooks.example.com/secret"}],
        },
    )
    rule_id = made.json()["id"]
    for actions, fragment in [
        ([{"type": "webhook", "url": "https://other.example.com/…"}], "masked URL"),
        (
            [
                {
                    "type": "evaluate",
                    "evaluators": [{"name": "regex", "config": {"pattern": "a", "token": "***"}}],
                }
            ],
            "masked ***",
        ),
    ]:
        r = await client.patch(f"/api/v1/rules/{rule_id}", json={"actions": actions})
        assert r.status_code == 400, r.text
        assert fragment in r.json()["error"]["message"]
    stored = (await client.get(f"/api/v1/rules/{rule_id}")).json()
    assert stored["actions"][0]["url"] == "https://hooks.example.com/…"
