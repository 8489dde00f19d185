"""A Goldloop key sees only its own workspace through the LangSmith API too; and the API works
with the ``/langsmith/api/v1`` endpoint form self-hosted installs use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import langsmith
import pytest
from langsmith.utils import LangSmithNotFoundError

from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, sdk_client

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def test_another_workspace_sees_nothing(live: Live) -> None:
    ctx = live.app.state.ctx
    other = auth.create_workspace(ctx, "other")
    other_key = auth.create_key(ctx, other.id, "other").secret
    run_id = str(uuid.uuid4())
    post = {
        "id": run_id,
        "trace_id": run_id,
        "dotted_order": f"20261126T100000000000Z{run_id}",
        "session_name": "mine",
        "name": "secret",
        "run_type": "chain",
        "start_time": "2026-11-26T10:00:00+00:00",
        "inputs": {"card": "4242"},
    }
    with sdk_client(live) as client:
        r = client.session.post(
            live.endpoint + "/runs/batch", json={"post": [post]}, headers={"x-api-key": live.key}
        )
        assert r.status_code == 202
        project = client.read_project(project_name="mine")
        ds = client.create_dataset("private")
        ex = client.create_example(inputs={"q": 1}, dataset_id=ds.id)
        fb = client.create_feedback(run_id=run_id, key="k", score=1, session_id=project.id)

    intruder = langsmith.Client(api_url=live.endpoint, api_key=other_key)
    try:
        for read in (
            lambda: intruder.read_run(run_id),
            lambda: intruder.read_project(project_id=project.id),
            lambda: intruder.read_project(project_name="mine"),
            lambda: intruder.read_dataset(dataset_id=ds.id),
            lambda: intruder.read_example(ex.id),
            lambda: intruder.read_feedback(fb.id),
        ):
            with pytest.raises(LangSmithNotFoundError):
                read()
        assert list(intruder.list_runs(project_id=project.id)) == []
        assert list(intruder.list_feedback(run_ids=[run_id])) == []
        assert list(intruder.list_datasets()) == []
        with pytest.raises(LangSmithNotFoundError):
            intruder.delete_example(ex.id)
        # The same run id written by the other workspace is a different run.
        hijack = {**post, "inputs": {"card": "0000"}, "session_name": "theirs"}
        r = intruder.session.post(
            live.endpoint + "/runs/batch", json={"post": [hijack]}, headers={"x-api-key": other_key}
        )
        assert r.status_code == 202
    finally:
        intruder.close()
    with live.api() as api:
        assert api.get(f"/runs/{run_id}").json()["inputs"] == {"card": "4242"}
        examples = api.get(f"/datasets/{ds.id}/examples").json()["items"]
        assert [e["id"] for e in examples] == [str(ex.id)]


def test_the_api_v1_endpoint_form(live: Live) -> None:
    client = langsmith.Client(api_url=live.endpoint + "/api/v1", api_key=live.key)
    try:
        project = client.create_project("via-api-v1")
        assert client.read_project(project_name="via-api-v1").id == project.id
        ds = client.create_dataset("via-api-v1")
        client.create_examples(dataset_id=ds.id, examples=[{"inputs": {"q": 1}}])
        assert len(list(client.list_examples(dataset_id=ds.id))) == 1
        assert client.info.batch_ingest_config["size_limit"] == 100
    finally:
        client.close()
    assert httpx.get(timeout=HTTP_TIMEOUT, url=live.endpoint + "/api/v1/info").status_code == 200
