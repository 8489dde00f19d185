"""The review-queue pages without JavaScript: create a queue (admins), add a run from its trace
page, review it with a plain form, see progress and agreement; escaping; other workspaces."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from dashboard_helpers import csrf_of, other_workspace_browser, sign_in
from fixture_runs import insert_run
from goldloop.services import auth

API = "/api/v1"
XSS = "<script>window.__xss=1</script>"


async def test_create_add_review_without_javascript(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    tone = {"kind": "categorical", "categories": ["rude", "warm"], "rubric": "warm: " + XSS}
    await client.put(f"{API}/feedback-keys/tone", json=tone)
    await client.put(f"{API}/feedback-keys/correct", json={"kind": "boolean"})
    await client.post(f"{API}/datasets", json={"name": "golden"})
    insert_run(app, "dq-1", inputs={"question": "hi " + XSS}, outputs={"answer": "bye"})
    insert_run(app, "dq-2", inputs={"question": "two"}, outputs={"answer": "2"})

    page = await browser.get("/queues")
    assert page.status_code == 200
    assert "No review queues yet" in page.text
    created = await browser.post(
        "/queues",
        data={
            "csrf": csrf_of(page.text),
            "name": "triage",
            "instructions": "Be strict " + XSS,
            "keys": ["correct", "tone"],
            "reviewers_needed": "1",
            "dataset": "golden",
        },
    )
    assert created.status_code == 303
    queue_url = created.headers["location"]
    queue_id = queue_url.rsplit("/", 1)[-1]
    # a refused form says why, on the list page
    dup = await browser.post("/queues", data={"csrf": csrf_of(page.text), "name": "triage"})
    assert dup.status_code == 400
    assert "exists" in dup.text

    # "Add to review queue" on the trace page
    trace = await browser.get("/traces/dq-1?run=dq-1")
    assert 'action="/queues/add-runs"' in trace.text
    assert f'<option value="{queue_id}">triage</option>' in trace.text
    added = await browser.post(
        "/queues/add-runs",
        data={
            "csrf": csrf_of(trace.text),
            "queue": queue_id,
            "run_id": ["dq-1", "dq-2"],
            "back": "/traces/dq-1?run=dq-1",
        },
    )
    assert added.status_code == 303
    assert added.headers["location"].startswith("/traces/dq-1?run=dq-1&added=2")

    review = await browser.get(f"{queue_url}/review")
    assert review.status_code == 200
    assert XSS not in review.text  # the run's input, the instructions and the rubric escaped
    assert "hi &lt;script&gt;" in review.text
    assert 'data-hotkey="1"' in review.text
    assert "2</strong> item(s) left for you" in review.text
    action = re.search(r'action="(/queues/[^"]+/review)"', review.text)
    assert action
    # missing a key: the form comes back with the reason and what was chosen
    partial = await browser.post(
        action.group(1), data={"csrf": csrf_of(review.text), "k:tone": "warm"}
    )
    assert partial.status_code == 400
    assert "correct" in partial.text
    assert 'value="warm" data-hotkey="2" checked' in partial.text
    done = await browser.post(
        action.group(1),
        data={
            "csrf": csrf_of(review.text),
            "k:tone": "rude",
            "k:correct": "false",
            "correction": '{"answer": "hello"}',
            "comment": "curt",
        },
    )
    assert done.status_code == 303
    nxt = await browser.get(done.headers["location"])
    assert "Review saved." in nxt.text
    assert "two" in nxt.text  # the second run is next
    skip = re.search(r'action="(/queues/[^"]+/skip)"', nxt.text)
    assert skip
    skipped = await browser.post(skip.group(1), data={"csrf": csrf_of(nxt.text)})
    assert skipped.status_code == 303
    empty = await browser.get(skipped.headers["location"])
    assert "Nothing left for you in this queue" in empty.text

    examples = (await client.get(f"{API}/datasets/golden/examples")).json()["items"]
    assert [e["outputs"] for e in examples] == [{"answer": "hello"}]
    queue_page = await browser.get(queue_url)
    assert '<strong class="q-completed">1</strong> of <strong class="q-items">2</strong>' in (
        queue_page.text
    )
    assert "Cohen's kappa" in queue_page.text
    assert XSS not in queue_page.text
    listing = await browser.get("/queues")
    assert "1 / 2" in listing.text


async def test_members_review_but_do_not_create_and_workspaces_stay_apart(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    queue = (await client.post(f"{API}/annotation-queues", json={"name": "q"})).json()
    insert_run(app, "dm-1", inputs={"q": 1})
    await client.post(f"{API}/annotation-queues/{queue['id']}/items", json={"run_ids": ["dm-1"]})
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    member = auth.create_key(ctx, ws.id, "ann", role="member")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as ann:
        assert (await sign_in(ann, member.secret)).status_code == 303
        page = await ann.get("/queues")
        assert "New queue" not in page.text
        refused = await ann.post("/queues", data={"csrf": csrf_of(page.text), "name": "x"})
        assert refused.status_code == 403
        review = await ann.get(f"/queues/{queue['id']}/review")
        assert review.status_code == 200
        assert "Submit &amp; next" in review.text

    async with other_workspace_browser(app) as other:
        assert (await other.get(f"/queues/{queue['id']}")).status_code == 404
        assert (await other.get(f"/queues/{queue['id']}/review")).status_code == 404
        page = await other.get("/queues")
        assert "q</a>" not in page.text
        insert_run(app, "theirs", workspace="other")
        stolen = await other.post(
            "/queues/add-runs",
            data={"csrf": csrf_of(page.text), "queue": queue["id"], "run_id": "theirs"},
        )
        assert stolen.status_code == 404
