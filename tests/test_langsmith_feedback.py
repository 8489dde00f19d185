"""LangSmith feedback calls land in Goldloop's feedback, checked through Goldloop's own API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from langsmith.schemas import FeedbackSourceType

from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, SDK, Live, live_server, sdk_client

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def test_feedback_with_corrections_by_run_and_by_trace(live: Live) -> None:
    run_id, trace_id, project_id = (str(uuid.uuid4()) for _ in range(3))
    with sdk_client(live) as client:
        by_run = client.create_feedback(
            run_id=run_id,
            key="correctness",
            score=0,
            correction={"answer": "Paris"},
            comment="wrong city",
            session_id=project_id,
        )
        by_trace = client.create_feedback(
            trace_id=trace_id,
            key="helpfulness",
            score=0.87654,
            value="good",
            correction="say it shorter",
            feedback_source_type=FeedbackSourceType.MODEL,
            source_run_id=uuid.uuid4(),
            session_id=project_id,
        )
        listed = list(client.list_feedback(run_ids=[run_id]))
        assert [str(f.id) for f in listed] == [str(by_run.id)]
        models = list(client.list_feedback(feedback_source_type=[FeedbackSourceType.MODEL]))
        assert [str(f.id) for f in models] == [str(by_trace.id)]
        read = client.read_feedback(by_trace.id)
        assert (read.score, read.value, read.correction) == (0.8765, "good", "say it shorter")
        assert str(read.trace_id) == trace_id
        client.update_feedback(by_run.id, score=1, comment=None)
        client.delete_feedback(by_trace.id)

    with live.api() as api:
        mine = api.get(f"/feedback/{by_run.id}").json()
        assert mine["run_id"] == run_id
        assert mine["key"] == "correctness"
        assert mine["score"] == 1
        if SDK >= (0, 15):
            assert mine["comment"] is None  # the SDK sends null, and null clears in a PATCH
        else:  # the 0.11 line leaves a None argument out of the PATCH: the comment stays
            assert mine["comment"] == "wrong city"
            # The null the 0.15 line sends, sent by hand, clears it all the same.
            r = httpx.patch(
                f"{live.endpoint}/feedback/{by_run.id}",
                json={"comment": None},
                headers={"x-api-key": live.key},
                timeout=HTTP_TIMEOUT,
            )
            assert r.status_code == 200, r.text
            assert api.get(f"/feedback/{by_run.id}").json()["comment"] is None
        assert mine["correction"] == {"answer": "Paris"}
        assert mine["source_info"]["langsmith"]["session_id"] == project_id
        assert api.get(f"/feedback/{by_trace.id}").status_code == 404
        on_trace = api.get("/feedback", params={"trace_id": trace_id}).json()["items"]
        assert on_trace == []


def test_feedback_is_idempotent_and_never_404s(live: Live) -> None:
    body = {"id": str(uuid.uuid4()), "run_id": str(uuid.uuid4()), "key": "k", "score": True}
    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        first = raw.post("/feedback", json=body)
        again = raw.post("/feedback", json=body)
        assert first.status_code == again.status_code == 200
        assert first.json()["id"] == again.json()["id"] == body["id"]
        assert {"run_id", "trace_id"} <= set(first.json())
        assert raw.post("/feedback", json={"run_id": "x"}).status_code == 400
        page = raw.get("/feedback", params={"limit": 1, "offset": 0}).json()
        assert len(page) == 1
        assert raw.get("/feedback", params={"limit": 1, "offset": 1}).json() == []
    with live.api() as api:
        assert api.get(f"/feedback/{body['id']}").json()["score"] is True
