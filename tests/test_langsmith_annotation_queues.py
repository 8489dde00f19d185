"""The LangSmith SDK's annotation-queue calls, unmodified, against Goldloop's annotation queues:
create, list, read, update and delete a queue; add runs, list them, read one by index, remove
one; a member key may add runs but not change queues; another workspace sees nothing."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator

import langsmith
import pytest
from langsmith.utils import LangSmithError

from fixture_runs import insert_run
from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import Live, live_server, sdk_client

# the run calls are deprecated in the 0.15 line in favour of a resource API; they still work
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def _client(live: Live, workspace: str, role: str) -> langsmith.Client:
    ctx = live.app.state.ctx
    try:
        ws = auth.workspace_by_name(ctx, workspace)
    except Exception:
        ws = auth.create_workspace(ctx, workspace)
    key = auth.create_key(ctx, ws.id, f"{workspace}-{role}", role=role)
    return langsmith.Client(api_url=live.endpoint, api_key=key.secret)


def test_annotation_queue_calls_map_onto_review_queues(live: Live) -> None:
    runs = [str(uuid.uuid4()) for _ in range(3)]
    for i, run_id in enumerate(runs):
        insert_run(live.app, run_id, inputs={"question": f"q{i}"}, outputs={"answer": f"a{i}"})
    with live.api() as api:
        assert api.put("/feedback-keys/correct", json={"kind": "boolean"}).status_code == 201
    with sdk_client(live) as client:
        queue_id = uuid.uuid4()
        rubric = "rubric_items" in inspect.signature(client.create_annotation_queue).parameters
        created = client.create_annotation_queue(
            name="refund review",
            description="refund answers",
            queue_id=queue_id,
            rubric_instructions="Check the policy.",
            **(
                {"rubric_items": [{"feedback_key": "correct", "description": "Is it right?"}]}
                if rubric
                else {}
            ),
        )
        if not rubric:  # an SDK without rubric items: the keys are set through Goldloop's API
            with live.api() as api:
                patched = api.patch(f"/annotation-queues/{queue_id}", json={"keys": ["correct"]})
                assert patched.status_code == 200
        assert (created.id, created.name, created.description) == (
            queue_id,
            "refund review",
            "refund answers",
        )
        with pytest.raises(LangSmithError, match="exists"):
            client.create_annotation_queue(name="refund review")
        other = client.create_annotation_queue(name="tone review")

        read = client.read_annotation_queue(queue_id)
        assert read.rubric_instructions == "Check the policy."
        if "rubric_items" in type(read).model_fields:  # the 0.11 line does not read them back
            [item] = read.rubric_items or []
            assert item["feedback_key"] == "correct"
            assert item.get("description") == "Is it right?"
            assert item["feedback_config"].feedback_key == "correct"

        assert {q.name for q in client.list_annotation_queues()} == {"refund review", "tone review"}
        assert [q.id for q in client.list_annotation_queues(name_contains="TONE")] == [other.id]
        assert [q.id for q in client.list_annotation_queues(queue_ids=[queue_id])] == [queue_id]

        client.update_annotation_queue(queue_id, name="refunds", rubric_instructions="Be strict.")
        assert client.read_annotation_queue(queue_id).name == "refunds"

        client.add_runs_to_annotation_queue(queue_id, run_ids=runs[:2])
        client.add_runs_to_annotation_queue(queue_id, run_ids=runs[1:])  # once each
        listed = list(client.list_runs_from_annotation_queue(queue_id))
        assert [str(r.id) for r in listed] == runs
        assert listed[0].inputs == {"question": "q0"}
        assert listed[0].added_at is not None
        assert listed[0].last_reviewed_time is None
        second = client.get_run_from_annotation_queue(queue_id, index=1)
        assert (str(second.id), second.outputs) == (runs[1], {"answer": "a1"})
        with pytest.raises(LangSmithError):
            client.get_run_from_annotation_queue(queue_id, index=9)

        # a review through Goldloop's API shows in the LangSmith view of the queue
        with live.api() as api:
            item = api.post(f"/annotation-queues/{queue_id}/next").json()["item"]
            done = api.post(
                f"/annotation-queues/{queue_id}/items/{item['id']}/reviews",
                json={"scores": {"correct": True}},
            )
            assert done.status_code == 201, done.text
        completed = list(client.list_runs_from_annotation_queue(queue_id, status="completed"))
        assert [str(r.id) for r in completed] == [runs[0]]
        assert completed[0].last_reviewed_time is not None
        mine = list(client.list_runs_from_annotation_queue(queue_id, status="needs_my_review"))
        assert [str(r.id) for r in mine] == runs[1:]

        client.delete_run_from_annotation_queue(queue_id, run_id=runs[2])
        assert len(list(client.list_runs_from_annotation_queue(queue_id))) == 2
        client.delete_annotation_queue(other.id)
        with pytest.raises(LangSmithError):
            client.read_annotation_queue(other.id)

    member = _client(live, "default", "member")
    stranger = _client(live, "elsewhere", "admin")
    try:
        member.add_runs_to_annotation_queue(queue_id, run_ids=[runs[2]])
        with pytest.raises(LangSmithError, match="admin"):
            member.create_annotation_queue(name="mine")
        with pytest.raises(LangSmithError, match="admin"):
            member.delete_annotation_queue(queue_id)
        assert list(stranger.list_annotation_queues()) == []
        with pytest.raises(LangSmithError):
            stranger.read_annotation_queue(queue_id)
        with pytest.raises(LangSmithError):
            stranger.add_runs_to_annotation_queue(queue_id, run_ids=[runs[0]])
        with pytest.raises(LangSmithError):
            stranger.delete_annotation_queue(queue_id)
    finally:
        member.close()
        stranger.close()
    with live.api() as api:
        assert api.get(f"/annotation-queues/{queue_id}").json()["items"] == 3
