"""Rule pages in-process over httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import html as htmllib
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from dashboard_helpers import csrf_of, sign_in
from fake_llm import FakeLLM, completion, user_text
from goldloop.http.dashboard import rule_pages
from goldloop.services import auth, rule_actions, rules
from goldloop.services.context import Principal, ServiceContext
from goldloop.workers.service_loops import Workers
from test_dashboard_runs import EVIL, assert_escaped, ingest, trace_items
from test_rules_flow import post_runs, project_id, run_items


async def test_rules_list_and_history(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    project = (await client.post("/api/v1/projects", json={"name": "support"})).json()
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
    await ingest(client, trace_items("tr1", evil=True))  # a rule acts on what comes after it
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


# ---- the rule forms: create, edit, enable/disable, delete, preview, history ----

PATH_SECRET = "T000/B000/path-secret"


def _rule_form(pid: str, **over: str) -> dict[str, str]:
    form = {
        "name": "from the form",
        "project_id": pid,
        "trigger": "run",
        "filter": 'name = "answer"',
        "sample_rate": "0.5",
        "root_only": "on",
        "enabled": "on",
        "actions": json.dumps([{"type": "add_to_queue", "queue": "triage"}]),
        "daily_judge_budget": "",
    }
    return {**form, **over}


def _textarea(html: str) -> str:
    match = re.search(r'<textarea id="r-actions" name="actions"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, "no actions text area"
    return htmllib.unescape(match.group(1))


async def test_rules_are_created_edited_switched_and_deleted_from_the_forms(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    pid = await project_id(client)
    listing = await browser.get("/rules")
    assert "New rule" in listing.text
    csrf = csrf_of(listing.text)

    bad = await browser.post("/rules", data={"csrf": csrf, **_rule_form(pid, filter="name = ")})
    assert bad.status_code == 400
    assert "invalid filter at position" in bad.text
    assert 'value="from the form"' in bad.text  # the form comes back as typed
    broken = await browser.post("/rules", data={"csrf": csrf, **_rule_form(pid, actions="[{")})
    assert broken.status_code == 400
    assert "actions is not valid JSON" in broken.text
    wrong = json.dumps([{"type": "telegram"}])
    typo = await browser.post("/rules", data={"csrf": csrf, **_rule_form(pid, actions=wrong)})
    assert typo.status_code == 400
    assert "actions[0].type must be one of" in typo.text
    rate = await browser.post("/rules", data={"csrf": csrf, **_rule_form(pid, sample_rate="2")})
    assert rate.status_code == 400
    assert "sample_rate must be between 0 and 1" in rate.text
    assert (await client.get("/api/v1/rules")).json() == []

    url = f"http://127.0.0.1:9/{PATH_SECRET}"
    actions = json.dumps([{"type": "webhook", "url": url}, {"type": "add_to_queue", "queue": "q"}])
    made = await browser.post(
        "/rules", data={"csrf": csrf, **_rule_form(pid, name="hook " + EVIL, actions=actions)}
    )
    assert made.status_code == 200, made.text
    assert "signing secret" in made.text
    assert_escaped(made.text)
    (rule,) = (await client.get("/api/v1/rules")).json()
    assert rule["name"] == "hook " + EVIL
    assert rule["sample_rate"] == 0.5
    assert rule["filter"] == 'name = "answer"'
    assert rule["enabled"]
    assert rule["root_only"]
    rule_id = rule["id"]
    assert_escaped((await browser.get("/rules")).text)

    page = await browser.get(f"/rules/{rule_id}")
    assert PATH_SECRET not in page.text
    shown = _textarea(page.text)
    assert "http://127.0.0.1:9/…" in shown
    edit = _rule_form(pid, name="renamed", actions=shown, filter="", daily_judge_budget="5")
    edit.pop("enabled")  # unchecked: the edit disables the rule
    saved = await browser.post(f"/rules/{rule_id}", data={"csrf": csrf, **edit})
    assert saved.status_code == 303, saved.text
    stored = rules.get_rule(app.state.ctx, _admin(app), rule_id)
    assert stored["actions"][0]["url"] == url  # the masked URL kept the stored one
    assert stored["name"] == "renamed"
    assert stored["filter"] is None
    assert stored["daily_judge_budget"] == 5
    assert not stored["enabled"]
    refused = await browser.post(
        f"/rules/{rule_id}", data={"csrf": csrf, **_rule_form(pid, filter="latency >")}
    )
    assert refused.status_code == 400
    assert "invalid filter at position" in refused.text
    assert rules.get_rule(app.state.ctx, _admin(app), rule_id)["name"] == "renamed"

    for flag in ("true", "false", "true"):
        switched = await browser.post(
            f"/rules/{rule_id}/enabled", data={"csrf": csrf, "enabled": flag}
        )
        assert switched.status_code == 303
        assert (await client.get(f"/api/v1/rules/{rule_id}")).json()["enabled"] is (flag == "true")
    assert "Disable" in (await browser.get(f"/rules/{rule_id}")).text

    ask = await browser.post(f"/rules/{rule_id}/delete", data={"csrf": csrf})
    assert ask.status_code == 200
    assert 'name="confirm" value="yes"' in ask.text
    assert (await client.get(f"/api/v1/rules/{rule_id}")).status_code == 200
    gone = await browser.post(f"/rules/{rule_id}/delete", data={"csrf": csrf, "confirm": "yes"})
    assert gone.status_code == 303
    assert (await client.get(f"/api/v1/rules/{rule_id}")).status_code == 404
    no_csrf = await browser.post("/rules", data=_rule_form(pid))
    assert no_csrf.status_code == 403


def _admin(app: FastAPI) -> Principal:
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    return Principal(workspace_id=ws.id, key_id="test", role="admin")


async def test_members_read_only_and_other_workspaces_cannot_see_or_edit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    pid = await project_id(client)
    made = await client.post(
        "/api/v1/rules",
        json={"project_id": pid, "name": "r", "actions": [{"type": "add_to_queue", "queue": "q"}]},
    )
    rule_id = made.json()["id"]
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    member = auth.create_key(ctx, ws.id, "reader", role="member")
    other_ws = auth.create_workspace(ctx, "elsewhere")
    other = auth.create_key(ctx, other_ws.id, "boss", role="admin")
    transport = httpx.ASGITransport(app=app)
    for key, seen in ((member.secret, True), (other.secret, False)):
        async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as b:
            assert (await sign_in(b, key)).status_code == 303
            listing = await b.get("/rules")
            page = await b.get(f"/rules/{rule_id}")
            assert page.status_code == (200 if seen else 404)
            if seen:
                assert "New rule" not in listing.text
                assert 'name="actions"' not in page.text
                assert "Delete…" not in page.text
            csrf = csrf_of(listing.text)
            posts = [
                ("/rules", _rule_form(pid)),
                (f"/rules/{rule_id}", _rule_form(pid, name="taken")),
                (f"/rules/{rule_id}/enabled", {"enabled": "false"}),
                (f"/rules/{rule_id}/delete", {"confirm": "yes"}),
            ]
            for path, data in posts:
                answer = await b.post(path, data={"csrf": csrf, **data})
                assert answer.status_code == (403 if seen else 404), (path, answer.status_code)
    after = (await client.get(f"/api/v1/rules/{rule_id}")).json()
    assert after["name"] == "r"
    assert after["enabled"]
    assert [r["name"] for r in (await client.get("/api/v1/rules")).json()] == ["r"]


async def test_the_filter_preview_counts_what_the_runs_api_lists(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    now = int(time.time() * 1_000_000)
    hour = 3600 * 1_000_000
    items = []
    for i, (name, age_h) in enumerate([("answer", 1), ("answer", 2), ("other", 1), ("answer", 50)]):
        for j in range(3 if i == 0 else 1):
            rid = f"pv-{i}-{j}"
            start = now - age_h * hour + j
            items.append(
                {
                    "id": rid,
                    "trace_id": rid,
                    "name": name,
                    "kind": "chain",
                    "start_time": start,
                    "end_time": start + 1000,
                    "inputs": {},
                    "outputs": {},
                }
            )
    await ingest(client, items)
    pid = next(
        p["id"]
        for p in (await client.get("/api/v1/projects")).json()["items"]
        if p["name"] == "support"
    )
    csrf = csrf_of((await browser.get("/rules")).text)
    shown = await browser.post(
        "/rules", data={"csrf": csrf, "do": "preview", **_rule_form(pid, name="")}
    )
    assert shown.status_code == 200
    count = re.search(r'class="preview-count">(\d+)<', shown.text)
    assert count, shown.text
    since = datetime.fromtimestamp((now - 24 * hour) / 1e6, tz=UTC).isoformat()
    listed = await client.get(
        "/api/v1/runs",
        params={
            "project": "support",
            "filter": f'root and (name = "answer") and start_time >= "{since}"',
            "limit": 100,
        },
    )
    ids = [r["id"] for r in listed.json()["items"]]
    assert int(count.group(1)) == len(ids) == 4
    assert all(rid in shown.text for rid in ids)
    assert "pv-3-0" not in shown.text
    assert (await client.get("/api/v1/rules")).json() == []  # a preview creates nothing
    bad = await browser.post(
        "/rules", data={"csrf": csrf, "do": "preview", **_rule_form(pid, filter='name = "x')}
    )
    assert "position" in bad.text
    assert "preview-count" not in bad.text


async def test_the_history_shows_scores_as_numbers_and_pages(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient, monkeypatch: Any
) -> None:
    pid = await project_id(client)
    made = await client.post(
        "/api/v1/rules",
        json={
            "project_id": pid,
            "name": "scored",
            "actions": [
                {
                    "type": "evaluate",
                    "evaluators": [{"name": "regex", "config": {"key": "has_a1", "pattern": "a1"}}],
                }
            ],
        },
    )
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    await post_runs(client, run_items(3))
    ctx: ServiceContext = app.state.ctx
    rules.tail_once(ctx)
    rule_actions.execute_due(ctx)
    monkeypatch.setattr(rule_pages, "HISTORY", 2)
    first = await browser.get(f"/rules/{rule_id}")
    scores = re.findall(r'has_a1 <strong class="num">([0-9.]+)</strong>', first.text)
    assert len(scores) == 2
    older = re.search(r'href="(/rules/[^"]+before=\d+)"', first.text)
    assert older, first.text
    second = await browser.get(htmllib.unescape(older.group(1)))
    scores += re.findall(r'has_a1 <strong class="num">([0-9.]+)</strong>', second.text)
    assert sorted(float(s) for s in scores) == [0.0, 0.0, 1.0]  # only "a1" matches once
    assert "before=" not in second.text.split("Action pages")[1].split("</nav>")[0]
