"""Issue #20's "done when", from the dashboard alone: a reviewer works through a queue of 50
runs with the keyboard, a second reviewer (another key) labels some of the same runs, the
completed items land in the golden dataset as a new version, and the queue page shows the two
reviewers' agreement (Cohen's kappa) computed from what they pressed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from dashboard_harness import Pages, Server

T0 = int(time.time() * 1_000_000) - 7_200_000_000
N = 50
SECOND = 12  # how many of the same items the second reviewer labels


def _runs(tag: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"r50-{tag}-{i:02d}",
            "trace_id": f"r50-{tag}-{i:02d}",
            "name": "support-agent",
            "kind": "chain",
            "start_time": T0 + i * 1_000_000,
            "end_time": T0 + i * 1_000_000 + 400_000,
            "inputs": {"messages": [{"role": "user", "content": f"Refund question {i}"}]},
            "outputs": {"messages": [{"role": "assistant", "content": f"Answer {i}"}]},
        }
        for i in range(N)
    ]


def _member_key(server: Server) -> str:
    """A second, member key made the way an operator makes one: `goldloop keys create`."""
    out = subprocess.run(
        [
            *(sys.executable, "-m", "goldloop", "keys", "create", "--role", "member"),
            *("--name", "second reviewer", "--data-dir", str(server.data_dir)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ},
    )
    return next(word for word in out.stdout.split() if word.startswith("gl_"))


def _verdict(reviewer: int, i: int) -> str:
    """The key each reviewer presses on item i: they disagree on items 3 and 7 only."""
    first = "1" if i % 2 == 0 else "2"
    if reviewer == 2 and i in (3, 7):
        return "1" if first == "2" else "2"
    return first


def _work_through(tab: Pages, queue_id: str, reviewer: int, count: int) -> list[str]:
    """Review ``count`` items with the keyboard alone; returns the questions seen, in order."""
    page = tab.page
    tab.goto(f"/queues/{queue_id}/review")
    seen = []
    for _ in range(count):
        page.wait_for_selector("#review-form")
        question = page.inner_text(".review-run").split("Refund question ", 1)[1].split()[0]
        seen.append(question)
        page.keyboard.press(_verdict(reviewer, int(question)))
        with page.expect_navigation():
            page.keyboard.press("Enter")
    return seen


def test_fifty_runs_two_reviewers_a_dataset_version_and_their_agreement(
    tab: Pages, chromium: Any, server: Server
) -> None:
    tag = uuid.uuid4().hex[:8]
    key = f"r50-ok-{tag}"
    runs = _runs(tag)
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": "review-fifty", "runs": runs})
        assert r.status_code == 202, r.text
        for _ in range(600):  # ingest is asynchronous: wait (bounded) for the last run
            if api.get(f"/api/v1/runs/{runs[-1]['id']}").status_code == 200:
                break
            time.sleep(0.1)
        body = {"kind": "boolean", "rubric": "Does the answer follow the refund policy?"}
        assert api.put(f"/api/v1/feedback-keys/{key}", json=body).status_code == 201
        assert api.post("/api/v1/datasets", json={"name": f"r50-golden-{tag}"}).status_code == 201
        queue = api.post(
            "/api/v1/annotation-queues",
            json={
                "name": f"fifty {tag}",
                "keys": [key],
                "reviewers_needed": 2,
                "dataset": f"r50-golden-{tag}",
            },
        )
        assert queue.status_code == 201, queue.text
        queue_id = queue.json()["id"]
        added = api.post(
            f"/api/v1/annotation-queues/{queue_id}/items",
            json={"run_ids": [r["id"] for r in runs]},
        )
        assert len(added.json()["added"]) == N

    tab.sign_in()
    first = _work_through(tab, queue_id, 1, N)
    assert sorted(int(q) for q in first) == list(range(N))  # every run once
    tab.page.wait_for_selector("text=Nothing left for you in this queue")

    second_context = chromium.new_context(viewport={"width": 1360, "height": 860})
    try:
        second = Pages(second_context.new_page(), server)
        second.sign_in(_member_key(server))
        labelled = _work_through(second, queue_id, 2, SECOND)
        assert len(set(labelled)) == SECOND
    finally:
        second_context.close()

    with server.api() as api:
        examples = api.get(f"/api/v1/datasets/r50-golden-{tag}/examples").json()["items"]
        versions = api.get(f"/api/v1/datasets/r50-golden-{tag}/versions").json()["items"]
        agreement = api.get(f"/api/v1/annotation-queues/{queue_id}/agreement").json()
    # the items both reviewed are complete: each became an example, in new versions
    assert sorted(e["lineage"]["run_id"] for e in examples) == sorted(
        f"r50-{tag}-{int(q):02d}" for q in labelled
    )
    assert versions[0]["version"] > 1

    # the agreement the page shows is the one computed from the presses above
    disagreements = sum(1 for q in labelled if _verdict(1, int(q)) != _verdict(2, int(q)))
    (row,) = agreement["keys"]
    assert row["items_compared"] == SECOND
    assert row["reviewers"] == 2
    tab.goto(f"/queues/{queue_id}")
    shown = " ".join(tab.page.inner_text(f'.agreement tr[data-key="{key}"]').split())
    assert f"{SECOND}" in shown
    kappa = row["kappa"]["value"]
    assert f"{kappa:.2f}" in shown
    # Cohen's kappa of the presses, computed here: observed agreement against chance agreement
    a = [_verdict(1, int(q)) for q in labelled]
    b = [_verdict(2, int(q)) for q in labelled]
    observed = 1 - disagreements / SECOND
    chance = sum((a.count(v) / SECOND) * (b.count(v) / SECOND) for v in ("1", "2"))
    assert disagreements > 0  # the second reviewer's first items include 3 or 7
    assert kappa == pytest.approx((observed - chance) / (1 - chance))
    tab.shot("review-fifty-agreement")
