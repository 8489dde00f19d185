"""LangSmith feedback calls land in Goldloop's feedback, checked through Goldloop's own API."""

from __future__ import annotations

import random
import statistics
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


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # list_runs: still served, deprecated
def test_runs_carry_their_feedback_stats(live: Live) -> None:
    """``list_runs`` and ``read_run`` give each run's ``feedback_stats``, as computed here from
    the feedback sent: n, mean and sample deviation of the scores, counts of the values."""
    rng = random.Random(7)
    project = f"fb-stats-{uuid.uuid4().hex[:6]}"
    run_ids = [uuid.uuid4() for _ in range(3)]
    sent: dict[str, dict[str, list[tuple[float | None, str | None]]]] = {}
    with sdk_client(live) as client:
        for run_id in run_ids:
            client.create_run(
                "answer",
                {"q": "refund?"},
                "chain",
                id=run_id,
                project_name=project,
                outputs={"a": "no"},
            )
        client.flush()
        project_id = client.read_project(project_name=project).id
        for run_id in run_ids[:2]:  # the third run gets no feedback
            for _ in range(rng.randint(2, 4)):
                score = round(rng.random(), 3)
                client.create_feedback(
                    run_id=run_id, key="correctness", score=score, session_id=project_id
                )
                sent.setdefault(str(run_id), {}).setdefault("correctness", []).append((score, None))
            label = rng.choice(["polite", "rude"])
            client.create_feedback(run_id=run_id, key="tone", value=label, session_id=project_id)
            sent[str(run_id)]["tone"] = [(None, label)]

        listed = {str(r.id): r for r in client.list_runs(project_name=project)}
        assert set(listed) == {str(r) for r in run_ids}
        for run_id in run_ids:
            expected = sent.get(str(run_id))
            for run in (listed[str(run_id)], client.read_run(run_id)):
                if expected is None:
                    assert not run.feedback_stats
                    continue
                stats = run.feedback_stats
                assert stats is not None
                assert set(stats) == {"correctness", "tone"}
                scores = [s for s, _ in expected["correctness"] if s is not None]
                assert stats["correctness"]["n"] == len(scores)
                assert stats["correctness"]["avg"] == pytest.approx(statistics.fmean(scores))
                assert stats["correctness"]["stdev"] == pytest.approx(statistics.stdev(scores))
                assert stats["tone"] == {
                    "n": 1,
                    "avg": None,
                    "stdev": None,
                    "values": {expected["tone"][0][1]: 1},
                }
