"""Rule pages in-process over httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI

from fake_llm import FakeLLM, completion, user_text
from goldloop.services import rule_actions, rules
from goldloop.services.context import ServiceContext
from goldloop.workers.service_loops import Workers
from test_dashboard_runs import EVIL, assert_escaped, ingest, trace_items
from test_rules_flow import post_runs, project_id, run_items


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


async def test_a_judge_rule_shows_its_alignment_with_people(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, workers: Workers
) -> None:
    """A real judge rule (a fake OpenAI-compatible judge on 127.0.0.1) scores 40 runs; people
    label them; the rule page shows TPR, TNR and kappa, and after the judge's model is swapped
    (the new one passes everything) the page shows the two judges apart."""
    model = {"name": "judge-1"}

    def answer(body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        text = user_text(body)
        good = "refundable: no" in text
        if model["name"] == "judge-2" or "q3" in text or "q13" in text:  # judge-1 errs twice
            good = not good if model["name"] == "judge-1" else True
        return 200, completion(json.dumps({"reasoning": "r", "score": int(good)})), {}

    judge = FakeLLM(answer)
    try:
        pid = await project_id(client)
        made = await client.post(
            "/api/v1/rules",
            json={
                "project_id": pid,
                "name": "refund policy judge",
                "actions": [
                    {
                        "type": "evaluate",
                        "evaluators": [{"name": "regex", "config": {"key": "ok", "pattern": "a"}}],
                        "judge": {
                            "name": "llm_judge",
                            "config": {
                                "base_url": judge.url,
                                "model": "judge-1",
                                "key": "refund_policy",
                                "cache": False,
                            },
                        },
                        "judge_mode": "always",
                    }
                ],
            },
        )
        assert made.status_code == 201, made.text
        rule = made.json()
        items = run_items(40)
        for i, item in enumerate(items):
            item["outputs"] = {"answer": f"q{i} refundable: {'no' if i % 4 else 'yes'}"}
        await post_runs(client, items)
        workers.flush()
        assert judge.calls == 40
        page = await browser.get(f"/rules/{rule['id']}")
        assert "Judge alignment" in page.text
        assert "Label some of its runs" in page.text  # no people's labels yet
        # People: NR rates are not refundable, so "refundable: yes" answers (every 4th) fail.
        for i, item in enumerate(items):
            r = await client.post(
                "/api/v1/feedback",
                json={
                    "run_id": item["id"],
                    "key": "refund_policy",
                    "score": i % 4 != 0,
                    "source": "human",
                },
            )
            assert r.status_code in (200, 201), r.text
        page = await browser.get(f"/rules/{rule['id']}")
        assert "40 runs scored by both" in page.text
        doc = (
            await client.get(
                "/api/v1/judge-alignment",
                params={"judge_key": "refund_policy", "rule_id": rule["id"]},
            )
        ).json()
        tpr, tnr = doc["alignment"]["tpr"], doc["alignment"]["tnr"]
        assert (tpr["n"], tnr["n"]) == (30, 10)
        assert tpr["value"] < 1 or tnr["value"] < 1  # judge-1's two mistakes show
        assert f"{tpr['value'] * 100:.1f}%" in page.text
        assert "Cohen" in page.text

        model["name"] = "judge-2"
        config = rule["actions"][0]["judge"]["config"]
        swapped = await client.patch(
            f"/api/v1/rules/{rule['id']}",
            json={
                "actions": [
                    {
                        **rule["actions"][0],
                        "judge": {
                            "name": "llm_judge",
                            "config": {**config, "model": "judge-2", "base_url": judge.url},
                        },
                    }
                ]
            },
        )
        assert swapped.status_code == 200, swapped.text
        more = run_items(20)
        for i, item in enumerate(more):
            item["outputs"] = {"answer": f"r{i} refundable: {'no' if i % 4 else 'yes'}"}
        await post_runs(client, more)
        workers.flush()
        for i, item in enumerate(more):
            await client.post(
                "/api/v1/feedback",
                json={
                    "run_id": item["id"],
                    "key": "refund_policy",
                    "score": i % 4 != 0,
                    "source": "human",
                },
            )
        doc = (
            await client.get(
                "/api/v1/judge-alignment",
                params={"judge_key": "refund_policy", "rule_id": rule["id"]},
            )
        ).json()
        per_model = {j["model"]: j["alignment"] for j in doc["by_judge"]}
        assert per_model["judge-2"]["tnr"]["value"] == 0.0  # passes everything
        assert per_model["judge-1"]["kappa"]["value"] > per_model["judge-2"]["kappa"]["value"]
        page = await browser.get(f"/rules/{rule['id']}")
        assert "Per judge" in page.text
        assert "judge-2" in page.text
    finally:
        judge.stop()
