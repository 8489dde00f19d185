"""The LangSmith SDK's feedback-config calls, unmodified, against Goldloop's score configs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from langsmith.utils import LangSmithError

from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import SDK, Live, live_server, sdk_client

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def test_feedback_config_calls_map_onto_score_configs(live: Live) -> None:
    with sdk_client(live) as client:
        rating = client.create_feedback_config(
            "user-rating",
            feedback_config={"type": "continuous", "min": 0.0, "max": 5.0},
            is_lower_score_better=False,
        )
        assert rating.feedback_key == "user-rating"
        assert rating.feedback_config == {"type": "continuous", "min": 0.0, "max": 5.0}
        if SDK >= (0, 15):  # the 0.11 line's FeedbackConfigSchema has neither field
            assert rating.is_enforced
            assert not rating.is_deleted
        topics = client.create_feedback_config(
            "topic",
            feedback_config={
                "type": "categorical",
                "categories": [{"value": 0, "label": "billing"}, {"value": 1, "label": "shipping"}],
            },
        )
        # creating the identical config again returns it; a different one is refused
        again = client.create_feedback_config(
            "user-rating", feedback_config={"type": "continuous", "min": 0.0, "max": 5.0}
        )
        # the same config, unchanged (the 0.11 line's FeedbackConfigSchema carries no id)
        assert (again.feedback_key, again.modified_at) == (rating.feedback_key, rating.modified_at)
        if SDK >= (0, 15):
            assert again.id == rating.id
        with pytest.raises(LangSmithError, match="already exists"):
            client.create_feedback_config(
                "user-rating", feedback_config={"type": "continuous", "min": 0.0, "max": 10.0}
            )
        listed = {c.feedback_key: c for c in client.list_feedback_configs()}
        assert set(listed) == {"user-rating", "topic"}
        only = list(client.list_feedback_configs(feedback_key=["topic"]))
        assert [(c.feedback_key, c.modified_at) for c in only] == [("topic", topics.modified_at)]

        updated = client.update_feedback_config("user-rating", is_lower_score_better=True)
        assert updated.is_lower_score_better is True
        assert updated.feedback_config["max"] == 5.0
        if SDK >= (0, 15):
            client.add_feedback_categories("topic", [{"value": 2, "label": "returns"}])
            client.remove_feedback_categories("topic", [0])
        else:  # the 0.11 line lacks both calls: the same change as one update_feedback_config
            client.update_feedback_config(
                "topic",
                feedback_config={
                    "type": "categorical",
                    "categories": [
                        {"value": 1, "label": "shipping"},
                        {"value": 2, "label": "returns"},
                    ],
                },
            )

        # feedback is checked against the configs, through the SDK too
        run_id, project = uuid.uuid4(), uuid.uuid4()
        with pytest.raises(LangSmithError, match="outside its range"):
            client.create_feedback(run_id=run_id, key="user-rating", score=7, session_id=project)
        client.create_feedback(run_id=run_id, key="topic", score=2, session_id=project)
        client.delete_feedback_config("user-rating")
        assert [c.feedback_key for c in client.list_feedback_configs()] == ["topic"]
        client.create_feedback(
            run_id=run_id, key="user-rating", score=7, session_id=project
        )  # undeclared now

    with live.api() as api:
        topic = api.get("/feedback-keys/topic").json()
        assert topic["categories"] == [
            {"label": "shipping", "score": 1.0},
            {"label": "returns", "score": 2.0},
        ]
        assert api.get("/feedback-keys/user-rating").status_code == 404
        stored = api.get("/feedback", params={"run_id": str(run_id)}).json()["items"]
        assert sorted((f["key"], f["score"], f["value"]) for f in stored) == [
            ("topic", 2.0, "returns"),
            ("user-rating", 7.0, None),
        ]


def test_unsupported_configs_are_refused_with_the_reason(live: Live) -> None:
    with sdk_client(live) as client:
        with pytest.raises(LangSmithError, match="allows_multiple_categories is not supported"):
            client.create_feedback_config(
                "tags",
                feedback_config={
                    "type": "categorical",
                    "categories": [{"value": 0, "label": "a"}],
                    "allows_multiple_categories": True,
                },
            )
        with pytest.raises(LangSmithError, match=r"feedback_config\.type must be"):
            client.create_feedback_config("x", feedback_config={"type": "stars"})  # type: ignore[typeddict-item]
        with pytest.raises(LangSmithError, match="no feedback config for key"):
            client.update_feedback_config("nope", is_lower_score_better=True)
        free = client.create_feedback_config("note", feedback_config={"type": "freeform"})
        assert free.feedback_config == {"type": "freeform"}


def test_a_feedback_config_on_create_feedback_declares_the_key_once(live: Live) -> None:
    run_id, project = uuid.uuid4(), uuid.uuid4()
    config = {"type": "continuous", "min": 0.0, "max": 1.0}
    with sdk_client(live) as client:
        client.create_feedback(
            run_id=run_id, key="helpful", score=0.5, feedback_config=config, session_id=project
        )
        [declared] = list(client.list_feedback_configs())
        assert (declared.feedback_key, declared.feedback_config) == ("helpful", config)
        with pytest.raises(LangSmithError, match="outside its range"):
            client.create_feedback(run_id=run_id, key="helpful", score=3, session_id=project)
        # a later, different config does not redeclare the key: the feedback is checked
        with pytest.raises(LangSmithError, match="outside its range"):
            client.create_feedback(
                run_id=run_id,
                key="helpful",
                score=3,
                feedback_config={"type": "continuous", "min": 0.0, "max": 5.0},
                session_id=project,
            )
    ctx = live.app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    member = auth.create_key(ctx, ws.id, "reviewer", role="member").secret
    with httpx.Client(base_url=live.endpoint, headers={"x-api-key": member}, timeout=60) as raw:
        r = raw.post(
            "/feedback",
            json={"run_id": str(run_id), "key": "tone", "value": "x", "feedback_config": config},
        )
        assert r.status_code == 200  # kept, but a member key declares nothing
    with live.api() as api:
        assert api.get("/feedback-keys/tone").status_code == 404
