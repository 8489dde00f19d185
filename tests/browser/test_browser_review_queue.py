"""A reviewer works through a review queue with the keyboard only, in a real browser: number
keys score, Ctrl+Enter submits from the correction box, Enter submits, s skips; the corrections
land in the queue's dataset as a new version."""

from __future__ import annotations

import time
import uuid
from typing import Any

from dashboard_harness import Pages, Server

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1;alert(1)">'
T0 = int(time.time() * 1_000_000) - 3_600_000_000


def _runs(tag: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"rq-{tag}-{i}",
            "trace_id": f"rq-{tag}-{i}",
            "name": "support-agent",
            "kind": "chain",
            "start_time": T0 + i * 1_000_000,
            "end_time": T0 + i * 1_000_000 + 500_000,
            "inputs": {
                "messages": [
                    {"role": "user", "content": f"Question {i}: can I get a refund? {XSS}"}
                ]
            },
            "outputs": {"messages": [{"role": "assistant", "content": f"No refunds ({i})."}]},
        }
        for i in range(3)
    ]


def _setup(server: Server, tag: str) -> tuple[str, list[str]]:
    runs = _runs(tag)
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": "review-queue", "runs": runs})
        assert r.status_code == 202, r.text
        for _ in range(600):  # ingest is asynchronous: wait (bounded) for the last run
            if api.get(f"/api/v1/runs/{runs[-1]['id']}").status_code == 200:
                break
            time.sleep(0.1)
        keys = {
            f"rq-ok-{tag}": {"kind": "boolean", "rubric": "Is the answer right? " + XSS},
            f"rq-tone-{tag}": {"kind": "categorical", "categories": ["rude", "neutral", "warm"]},
        }
        for key, body in keys.items():
            assert api.put(f"/api/v1/feedback-keys/{key}", json=body).status_code == 201
        assert api.post("/api/v1/datasets", json={"name": f"rq-golden-{tag}"}).status_code == 201
        queue = api.post(
            "/api/v1/annotation-queues",
            json={
                "name": f"refunds {tag}",
                "instructions": "Check the refund policy. " + XSS,
                "keys": list(keys),
                "dataset": f"rq-golden-{tag}",
            },
        )
        assert queue.status_code == 201, queue.text
        queue_id = queue.json()["id"]
        added = api.post(
            f"/api/v1/annotation-queues/{queue_id}/items",
            json={"run_ids": [r["id"] for r in runs]},
        )
        assert len(added.json()["added"]) == 3
    return queue_id, [r["id"] for r in runs]


def test_review_a_queue_with_the_keyboard(tab: Pages, server: Server) -> None:
    tag = uuid.uuid4().hex[:8]
    queue_id, run_ids = _setup(server, tag)
    page = tab.page
    tab.sign_in()
    tab.goto(f"/queues/{queue_id}/review")
    page.wait_for_selector("#review-form")
    assert "Question 0" in page.inner_text(".review-run")
    assert "Is the answer right? " + XSS in page.inner_text("#review-form")
    assert "3 item(s) left for you" in page.inner_text(".review-progress")
    tab.shot("review-queue-item")

    # item 1: "2" = false on the highlighted boolean key, then "3" = warm; a correction typed
    # into the box and Ctrl+Enter
    page.keyboard.press("2")
    assert page.locator("fieldset.rv-active").get_attribute("data-key") == f"rq-tone-{tag}"
    page.keyboard.press("3")
    page.focus("#rv-correction")
    page.keyboard.press("Control+A")
    page.keyboard.type('{"messages": [{"role": "assistant", "content": "Yes, within 30 days."}]}')
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=Review saved.")
    assert "Question 1" in page.inner_text(".review-run")
    assert "2 item(s) left for you" in page.inner_text(".review-progress")

    # item 2: "1" = true, "1" = rude, Enter (no correction: the output stays the reference)
    page.keyboard.press("1")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Review saved.")
    assert "Question 2" in page.inner_text(".review-run")

    # item 3: skipped with "s"
    page.keyboard.press("s")
    page.wait_for_selector("text=Nothing left for you in this queue")
    tab.shot("review-queue-done")

    with server.api() as api:
        versions = api.get(f"/api/v1/datasets/rq-golden-{tag}/versions").json()["items"]
        examples = api.get(f"/api/v1/datasets/rq-golden-{tag}/examples").json()["items"]
        feedback = api.get("/api/v1/feedback", params={"run_id": run_ids[0]}).json()["items"]
    assert [v["version"] for v in versions][:2] == [2, 1]
    by_run = {e["lineage"]["run_id"]: e for e in examples}
    assert set(by_run) == set(run_ids[:2])
    first = by_run[run_ids[0]]
    assert first["outputs"] == {
        "messages": [{"role": "assistant", "content": "Yes, within 30 days."}]
    }
    assert first["lineage"]["outputs_from"] == "correction"
    assert by_run[run_ids[1]]["outputs"]["messages"][0]["content"] == "No refunds (1)."
    scores = {f["key"]: (f["score"], f["value"]) for f in feedback}
    assert scores == {f"rq-ok-{tag}": (False, None), f"rq-tone-{tag}": (None, "warm")}

    tab.goto(f"/queues/{queue_id}")
    page.wait_for_selector(".queue-progress")
    assert "2 of 3 items completed" in " ".join(page.inner_text(".queue-progress").split())
    tab.shot("review-queue-page")
    assert not tab.xss_fired()
    assert tab.dialogs == []
