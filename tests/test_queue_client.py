"""Review queues through the Python client (goldloop.client.Client), against a real server
socket: create, add runs, take the next item, review, skip, agreement. The client only shapes
HTTP calls, so SQLite is enough here (test_annotation_queues.py covers both backends)."""

from __future__ import annotations

import time

import httpx
import pytest

from goldloop.client import ApiError, Client
from goldloop.settings import Settings
from live_api import live_api


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_queue_calls(settings: Settings) -> None:
    with live_api(settings) as live, Client(live.endpoint, live.key) as gl:
        runs = [
            {
                "id": f"qc-{i}",
                "trace_id": f"qc-{i}",
                "name": "agent",
                "start_time": 1_790_000_000_000_000 + i,
                "end_time": 1_790_000_001_000_000 + i,
                "inputs": {"q": i},
                "outputs": {"a": i},
            }
            for i in range(2)
        ]
        sent = httpx.post(
            f"{live.endpoint}/api/v1/runs/batch",
            headers={"x-api-key": live.key},
            json={"project": "support", "runs": runs},
        )
        assert sent.status_code == 202
        gl.declare_feedback_key("correct", "boolean")
        gl.create_dataset("golden")
        queue = gl.create_queue("triage", keys=["correct"], dataset="golden")
        assert [q["id"] for q in gl.list_queues(name_contains="tri")] == [queue["id"]]
        for _ in range(400):  # ingestion is asynchronous: wait (bounded) for the runs
            found = httpx.get(f"{live.endpoint}/api/v1/runs/qc-1", headers={"x-api-key": live.key})
            if found.status_code == 200:
                break
            time.sleep(0.05)
        added = gl.add_runs_to_queue(queue["id"], ["qc-0", "qc-1"])
        assert len(added["added"]) == 2
        first = gl.next_queue_item(queue["id"])
        assert first["run"]["inputs"] == {"q": 0}
        done = gl.review_queue_item(
            queue["id"], first["item"]["id"], scores={"correct": False}, correction={"a": 9}
        )
        assert done["completed"] is True
        second = gl.next_queue_item(queue["id"])
        gl.skip_queue_item(queue["id"], second["item"]["id"])
        assert gl.next_queue_item(queue["id"])["item"] is None
        assert [i["run_id"] for i in gl.list_queue_items(queue["id"], status="completed")] == [
            "qc-0"
        ]
        assert gl.queue_agreement(queue["id"])["keys"][0]["reviewers"] == 1
        assert gl.update_queue(queue["id"], reviewers_needed=2)["reviewers_needed"] == 2
        assert gl.get_queue(queue["id"])["completed"] == 1
        with pytest.raises(ApiError) as refused:
            gl.review_queue_item(queue["id"], first["item"]["id"], scores={"correct": True})
        assert refused.value.status == 409
        gl.delete_queue(queue["id"])
        with pytest.raises(ApiError):
            gl.get_queue(queue["id"])

        pairwise = gl.create_pairwise_queue("a vs b", pairs=[("qc-0", "qc-1")])
        assert pairwise["added"] == 1
        assert gl.add_pairs_to_queue(pairwise["queue"]["id"], [("qc-0", "qc-1")])[
            "already_queued"
        ] == ["qc-0"]
        item = gl.next_queue_item(pairwise["queue"]["id"])["item"]
        shown = gl.get_queue_pair(pairwise["queue"]["id"], item["id"])
        assert (shown["a"]["id"], shown["b"]["id"]) == ("qc-0", "qc-1")
        assert gl.prefer(pairwise["queue"]["id"], item["id"], "B")["completed"] is True
        results = gl.pairwise_results(pairwise["queue"]["id"])
        assert (results["n"], results["b_wins"], results["win_rate"]["value"]) == (1, 1, 1.0)
