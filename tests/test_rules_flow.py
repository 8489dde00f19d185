"""Automation rules end to end: runs through the real batch API, the tailer and the action
outbox driven with flush(), a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.receiver import Receiver

from goldloop.domain.rules import masked_actions
from goldloop.domain.sampling import is_sampled
from goldloop.store import rules as rule_store
from goldloop.workers.service_loops import Workers
from ingest_helpers import workspace_of
from sqlite_plans import query_plans


def run_items(n: int, *, project: str = "agent-support", error_every: int = 0) -> list[dict]:
    items = []
    for i in range(n):
        rid = uuid.uuid4().hex
        item = {
            "id": rid,
            "trace_id": rid,
            "name": "answer",
            "kind": "chain",
            "start_time": 1_790_000_000_000_000 + i,
            "end_time": 1_790_000_000_500_000 + i,
            "inputs": {"question": f"q{i}"},
            "outputs": {"answer": f"a{i}"},
        }
        if error_every and i % error_every == 0:
            item["error"] = {"type": "ValueError", "message": "boom"}
        items.append(item)
    return items


async def post_runs(
    client: httpx.AsyncClient, items: list[dict], project: str = "agent-support"
) -> None:
    r = await client.post("/api/v1/runs/batch", json={"project": project, "runs": items})
    assert r.status_code == 202, r.text


async def project_id(client: httpx.AsyncClient, name: str = "agent-support") -> str:
    listed = (await client.get("/api/v1/projects", params={"name": name})).json()
    if listed["items"]:
        return str(listed["items"][0]["id"])
    return str((await client.post("/api/v1/projects", json={"name": name})).json()["id"])


async def test_webhook_rule_samples_deterministically_and_never_repeats(
    client: httpx.AsyncClient, hook: Receiver, workers: Workers
) -> None:
    pid = await project_id(client)
    rule = await client.post(
        "/api/v1/rules",
        json={
            "project_id": pid,
            "name": "sample to hook",
            "sample_rate": 0.3,
            "actions": [{"type": "webhook", "url": hook.url}],
        },
    )
    assert rule.status_code == 201, rule.text
    rule_id = rule.json()["id"]
    items = run_items(200)
    await post_runs(client, items)
    workers.flush()

    expected = {i["id"] for i in items if is_sampled(rule_id, i["trace_id"], 0.3)}
    got = {b["run"]["id"] for b in hook.bodies()}
    assert got == expected
    assert 30 < len(got) < 90
    body = hook.bodies()[0]
    assert body["rule"]["id"] == rule_id
    assert body["trace_url"].endswith(f"/traces/{body['run']['trace_id']}")
    assert hook.requests[0].headers["idempotency-key"].startswith(f"rule:{rule_id}:")

    # Re-delivering the same runs (a client retry) and running the workers again: nothing new.
    await post_runs(client, items)
    workers.flush()
    assert len(hook.requests) == len(expected)

    status = (await client.get(f"/api/v1/rules/{rule_id}")).json()
    assert status["matched"] == len(expected)
    assert status["outcomes"] == {"done": len(expected)}
    assert status["lag_ms"] is not None
    history = (await client.get(f"/api/v1/rules/{rule_id}/history", params={"limit": 5})).json()
    assert len(history) == 5
    assert history[0]["detail"]["delivery"] == "queued"


async def test_only_completed_runs_trigger_and_a_late_end_still_does(
    client: httpx.AsyncClient, hook: Receiver, workers: Workers
) -> None:
    pid = await project_id(client)
    await client.post(
        "/api/v1/rules",
        json={"project_id": pid, "name": "all", "actions": [{"type": "webhook", "url": hook.url}]},
    )
    rid = uuid.uuid4().hex
    start = {"id": rid, "trace_id": rid, "name": "slow", "start_time": 1_790_000_000_000_000}
    await post_runs(client, [start])
    workers.flush()
    assert hook.requests == []  # still running: nothing to judge yet
    await post_runs(
        client,
        [
            {
                "id": rid,
                "trace_id": rid,
                "end_time": 1_790_000_009_000_000,
                "outputs": {"answer": "done"},
            }
        ],
    )
    workers.flush()
    assert [b["run"]["outputs"] for b in hook.bodies()] == [{"answer": "done"}]


async def webhook_rule(
    client: httpx.AsyncClient, pid: str, hook: Receiver, name: str
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/rules",
        json={"project_id": pid, "name": name, "actions": [{"type": "webhook", "url": hook.url}]},
    )
    assert r.status_code == 201, r.text
    rule: dict[str, Any] = r.json()
    return rule


async def backfill_2026(client: httpx.AsyncClient, rule_id: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/rules/{rule_id}/backfill",
        json={"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"},
    )


async def test_a_new_rule_acts_on_new_runs_and_backfill_brings_the_past_once(
    client: httpx.AsyncClient, hook: Receiver, workers: Workers
) -> None:
    """A rule watches what arrives after it is created (a judge rule on a project with a
    million runs must not queue a million judge calls); the past is for backfill, on request,
    and neither a second backfill nor the tailer acts on a run twice."""
    past = run_items(20)
    await post_runs(client, past)
    pid = await project_id(client)
    rule = await webhook_rule(client, pid, hook, "late")
    workers.flush()
    assert hook.requests == []  # nothing from before the rule
    assert (await client.get(f"/api/v1/rules/{rule['id']}")).json()["processed"] == 0

    new = run_items(3)
    await post_runs(client, new)
    workers.flush()
    assert sorted(b["run"]["id"] for b in hook.bodies()) == sorted(i["id"] for i in new)

    res = await backfill_2026(client, rule["id"])
    assert res.json() == {"rule_id": rule["id"], "runs_scanned": 23, "runs_queued": 20}
    workers.flush()
    res = await backfill_2026(client, rule["id"])
    assert res.json() == {"rule_id": rule["id"], "runs_scanned": 23, "runs_queued": 0}
    workers.flush()
    sent = sorted(b["run"]["id"] for b in hook.bodies())
    assert sent == sorted(i["id"] for i in past + new)  # each run once


async def test_backfill_pages_through_runs_that_share_a_start_time(
    client: httpx.AsyncClient, hook: Receiver, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 3 over 11 runs, 4 of them started at the same microsecond: the keyset on
    (start time, pk) visits each run once, across page boundaries inside a tie."""
    from goldloop.services import rules

    monkeypatch.setattr(rules, "TAIL_BATCH", 3)
    items = run_items(11)
    for item in items[2:6]:
        item["start_time"] = items[2]["start_time"]
    await post_runs(client, items)
    pid = await project_id(client)
    rule = await webhook_rule(client, pid, hook, "late")
    res = await backfill_2026(client, rule["id"])
    assert res.json() == {"rule_id": rule["id"], "runs_scanned": 11, "runs_queued": 11}
    workers.flush()
    assert sorted(b["run"]["id"] for b in hook.bodies()) == sorted(i["id"] for i in items)


async def test_crash_between_tail_and_action_replays_without_loss_or_repeat(
    client: httpx.AsyncClient, app: FastAPI, hook: Receiver
) -> None:
    pid = await project_id(client)
    await client.post(
        "/api/v1/rules",
        json={"project_id": pid, "name": "r", "actions": [{"type": "webhook", "url": hook.url}]},
    )
    await post_runs(client, run_items(30))
    first = Workers(app.state.ctx)
    first.rules.flush()  # pending actions recorded with the watermark ...
    first.stop()  # ... then the worker "dies" before executing any
    assert hook.requests == []
    second = Workers(app.state.ctx)
    second.flush()
    second.flush()
    second.stop()
    assert len(hook.requests) == 30
    assert len({b["run"]["id"] for b in hook.bodies()}) == 30


async def test_bad_rules_get_clear_errors(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    pid = await project_id(client)
    cases = [
        ({"actions": []}, "non-empty list"),
        ({"actions": [{"type": "email"}]}, "actions[0].type"),
        ({"actions": [{"type": "webhook", "url": "file:///etc/passwd"}]}, "http(s) URL"),
        ({"actions": [{"type": "add_to_dataset"}]}, "dataset"),
        ({"actions": [{"type": "evaluate", "evaluators": []}]}, "evaluators"),
        (
            {"actions": [{"type": "evaluate", "evaluators": [{"name": "nope"}]}]},
            "unknown evaluator",
        ),
        (
            {"actions": [{"type": "evaluate", "evaluators": [{"name": "regex", "config": {}}]}]},
            "bad config for evaluator 'regex'",
        ),
        (
            {"filter": "latency >", "actions": [{"type": "webhook", "url": "http://h/"}]},
            "position",
        ),
        (
            {
                "trigger": "feedback",
                "actions": [{"type": "evaluate", "evaluators": [{"name": "x"}]}],
            },
            "trigger 'run'",
        ),
    ]
    for extra, message in cases:
        r = await client.post("/api/v1/rules", json={"project_id": pid, "name": "x", **extra})
        assert r.status_code == 400, (extra, r.text)
        assert message in r.json()["error"]["message"], (extra, r.json())
    rate = await client.post(
        "/api/v1/rules",
        json={
            "project_id": pid,
            "name": "x",
            "sample_rate": 2,
            "actions": [{"type": "webhook", "url": "http://h/"}],
        },
    )
    assert rate.status_code == 400
    missing = await client.post(
        "/api/v1/rules",
        json={
            "project_id": "nope",
            "name": "x",
            "actions": [{"type": "webhook", "url": "http://h/"}],
        },
    )
    assert missing.status_code == 404
    assert (await anon.get("/api/v1/rules")).status_code == 401
    assert (await client.get("/api/v1/rules/nope")).status_code == 404


async def test_filter_selects_the_runs_a_rule_acts_on(
    client: httpx.AsyncClient, hook: Receiver, workers: Workers
) -> None:
    pid = await project_id(client)
    await client.post(
        "/api/v1/rules",
        json={
            "project_id": pid,
            "name": "errors to hook",
            "filter": 'error and name = "answer"',
            "actions": [{"type": "webhook", "url": hook.url}],
        },
    )
    items = run_items(30, error_every=3)
    await post_runs(client, items)
    workers.flush()
    errored = {i["id"] for i in items if "error" in i}
    assert len(errored) == 10
    assert {b["run"]["id"] for b in hook.bodies()} == errored


async def test_metrics_expose_lag_and_backlog(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, hook: Receiver, workers: Workers
) -> None:
    pid = await project_id(client)
    rule = (
        await client.post(
            "/api/v1/rules",
            json={
                "project_id": pid,
                "name": 'quote" rule',
                "actions": [{"type": "webhook", "url": hook.url}],
            },
        )
    ).json()
    await post_runs(client, run_items(4))
    workers.rules.flush()  # queued, not yet done
    text = (await client.get("/api/v1/metrics")).text
    assert f'goldloop_rule_pending_actions{{rule_id="{rule["id"]}",rule="quote\\" rule"}} 4' in text
    workers.flush()
    text = (await client.get("/api/v1/metrics")).text
    assert f'goldloop_rule_pending_actions{{rule_id="{rule["id"]}",rule="quote\\" rule"}} 0' in text
    assert "goldloop_rule_lag_seconds{" in text
    assert (await anon.get("/api/v1/metrics")).status_code == 401


async def test_judge_tiebreak_respects_the_daily_budget_and_hides_its_key(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    from fake_llm import FakeLLM, completion

    judge = FakeLLM(lambda body: (200, completion('{"reasoning": "fine", "score": 1}'), {}))
    try:
        pid = await project_id(client)
        rule = await client.post(
            "/api/v1/rules",
            json={
                "project_id": pid,
                "name": "judge everything, twice a day",
                "daily_judge_budget": 2,
                "actions": [
                    {
                        "type": "evaluate",
                        "evaluators": [{"name": "regex", "config": {"key": "ok", "pattern": "a"}}],
                        "judge": {
                            "name": "llm_judge",
                            "config": {
                                "base_url": judge.url,
                                "model": "judge-1",
                                "api_key": "sk-secret-judge",
                                "cache": False,
                            },
                        },
                        "judge_mode": "always",
                    }
                ],
            },
        )
        assert rule.status_code == 201, rule.text
        assert "sk-secret-judge" not in rule.text
        rule_id = rule.json()["id"]
        await post_runs(client, run_items(5))
        workers.flush()
        assert judge.calls == 2
        history = (await client.get(f"/api/v1/rules/{rule_id}/history")).json()
        assert all(a["status"] == "done" for a in history), [
            (a["status"], a["detail"]) for a in history
        ]
        verdicts = sorted(a["detail"]["judge"] for a in history)
        assert verdicts.count("judged") == 2
        assert verdicts.count("skipped: the rule's daily judge budget is spent") == 3
        scores = (await client.get("/api/v1/feedback", params={"limit": 100})).json()["items"]
        assert sorted(f["key"] for f in scores).count("ok") == 5
        assert all(f["source"] == "online-evaluator" for f in scores)
        # New traffic: the budget is spent, so evaluation is not even sampled, and the rule says so.
        await post_runs(client, run_items(3))
        workers.flush()
        status = (await client.get(f"/api/v1/rules/{rule_id}")).json()
        assert "judge budget of 2" in status["status"]
        assert status["outcomes"] == {"done": 5}
        assert judge.calls == 2
    finally:
        judge.stop()


async def test_two_workers_at_once_never_do_the_same_action_twice(
    client: httpx.AsyncClient, app: FastAPI, hook: Receiver
) -> None:
    import threading

    pid = await project_id(client)
    await client.post(
        "/api/v1/rules",
        json={"project_id": pid, "name": "all", "actions": [{"type": "webhook", "url": hook.url}]},
    )
    items = run_items(120)
    await post_runs(client, items)
    pool = [Workers(app.state.ctx) for _ in range(3)]
    threads = [threading.Thread(target=w.flush) for w in pool]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for w in pool:
        w.flush()
        w.stop()
    ids = [b["run"]["id"] for b in hook.bodies()]
    assert sorted(ids) == sorted(i["id"] for i in items)  # each run exactly once


def test_sqlite_reads_a_backfill_page_as_one_index_range(tmp_path: Path) -> None:
    """A backfill page is a range of the project/root/start-time index in its own order: no
    sort of the whole time range per page (which made a week's backfill at 1,000,000 runs
    take minutes)."""
    (plan,) = query_plans(
        tmp_path,
        lambda c: rule_store.runs_in_range(
            c, "p", start_us=0, end_us=10, root_only=True, match=None, after=(3, 7), limit=500
        ),
    )
    assert any("ix_runs_project_root_start" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


async def test_a_rule_with_cut_urls_from_an_import_cannot_be_enabled_until_given_in_full(
    client: httpx.AsyncClient, app: FastAPI, hook: Receiver, admin_key: str
) -> None:
    """A workspace import stores a rule's webhook URL cut (``scheme://host/…``) and disabled;
    enabling it as it is would post to the cut URL, so it is refused until the URL is given."""
    project = (await client.post("/api/v1/projects", json={"name": "imported"})).json()
    made = await client.post(
        "/api/v1/rules",
        json={
            "name": "hook",
            "project_id": project["id"],
            "enabled": False,
            "actions": [{"type": "webhook", "url": hook.url + "/secret-path"}],
        },
    )
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    ctx = app.state.ctx
    ws = workspace_of(app, admin_key)
    stored = ctx.db.read(lambda c: rule_store.get_rule(c, ws, rule_id))
    cut = masked_actions(stored["actions"])  # what the import stores
    ctx.db.write(lambda c: rule_store.update_rule(c, ws, rule_id, {"actions": cut}))

    refused = await client.patch(f"/api/v1/rules/{rule_id}", json={"enabled": True})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["details"]["field"] == "actions[0].url"
    assert (await client.get(f"/api/v1/rules/{rule_id}")).json()["enabled"] is False

    fixed = await client.patch(
        f"/api/v1/rules/{rule_id}",
        json={"enabled": True, "actions": [{"type": "webhook", "url": hook.url + "/new"}]},
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["enabled"] is True
