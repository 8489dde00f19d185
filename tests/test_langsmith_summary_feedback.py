"""Summary evaluators: ``evaluate(..., summary_evaluators=[...])`` and ``aevaluate`` post
experiment-level feedback (a session, no run). It is stored on the experiment, returned by the
LangSmith and the native feedback APIs, shown on the experiment's page, and kept out of the
per-run score aggregates."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import langsmith
import pytest
from langsmith import aevaluate, evaluate
from langsmith.schemas import Example, Run

from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, ref, sdk_client, sdk_env

pytestmark = [
    pytest.mark.slow,
    # evaluate() passes the result's `metadata` on to create_feedback, which warns that it is
    # unused; the SDK posts the feedback all the same (the warning, made an error here, would
    # stop it in its worker thread).
    pytest.mark.filterwarnings(
        "ignore:The following arguments are no longer used:DeprecationWarning"
    ),
]

ANSWERS = {"2+2": "4", "capital of France": "Lyon", "largest ocean": "Pacific"}


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def exact(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> bool:
    return bool(outputs["answer"] == reference_outputs["answer"])


def precision(runs: Sequence[Run], examples: Sequence[Example]) -> dict[str, Any]:
    right = sum(
        (r.outputs or {}).get("answer") == (e.outputs or {}).get("answer")
        for r, e in zip(runs, examples, strict=True)
    )
    return {"key": "precision", "score": right / len(runs), "comment": "<b>bold</b> claim"}


def verdict(runs: Sequence[Run], examples: Sequence[Example]) -> dict[str, Any]:
    return {"results": [{"key": "verdict", "value": "ship"}, {"key": "runs", "score": len(runs)}]}


def _seed(live: Live, name: str) -> None:
    with sdk_client(live) as client:
        ds = client.create_dataset(name)
        client.create_examples(
            dataset_id=ds.id,
            examples=[
                {"inputs": {"q": q}, **ref({"answer": a})}
                for q, a in (
                    ("2+2", "4"),
                    ("capital of France", "Paris"),
                    ("largest ocean", "Pacific"),
                )
            ],
        )


def _check(live: Live, experiment: str) -> None:
    with live.api() as api:
        project_id = api.get("/projects", params={"name": experiment}).json()["items"][0]["id"]
        items = api.get("/feedback", params={"project_id": project_id}).json()["items"]

        got = {f["key"]: (f["score"], f["value"]) for f in items}
        assert got == {
            "precision": (0.6667, None),  # the SDK rounds scores to 4 places
            "verdict": (None, "ship"),
            "runs": (3, None),
        }
        assert {(f["run_id"], f["trace_id"], f["project_id"]) for f in items} == {
            (None, None, project_id)
        }
        # per-run scores are untouched: the experiment's aggregates hold only run feedback
        experiment_json = api.get(f"/experiments/{project_id}").json()
        assert "precision" not in str(experiment_json.get("scores"))
        assert "exact" in str(experiment_json.get("scores"))
    with sdk_client(live) as client:
        everything = list(client.list_feedback(session=[project_id]))  # the runs' too
        assert sorted(f.key for f in everything) == ["exact"] * 3 + ["precision", "runs", "verdict"]
        summary = [f for f in everything if f.run_id is None]
        assert {f.key for f in summary} == {"precision", "verdict", "runs"}
        assert all(str(f.session_id) == project_id for f in summary)
        assert all(str(f.session_id) == project_id for f in everything)
        only = list(client.list_feedback(session=[project_id], feedback_key=["precision"]))
        assert [f.comment for f in only] == ["<b>bold</b> claim"]

    with httpx.Client(base_url=live.base, timeout=HTTP_TIMEOUT) as browser:  # the page
        login = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        signed = browser.post("/login", data={"csrf": csrf.group(1), "api_key": live.key})
        assert signed.status_code in (200, 303)
        page = browser.get(f"/experiments/{project_id}")
        assert page.status_code == 200
        assert "Summary scores" in page.text
        assert "verdict" in page.text
        assert "ship" in page.text
        assert "&lt;b&gt;bold&lt;/b&gt; claim" in page.text
        assert "<b>bold</b>" not in page.text


def test_evaluate_summary_evaluators(
    live: Live, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _seed(live, "summary-ds")
    sdk_env(monkeypatch, live, "summary-traces")

    def target(inputs: dict[str, Any]) -> dict[str, Any]:
        return {"answer": ANSWERS[inputs["q"]]}

    with caplog.at_level(logging.ERROR, logger="langsmith"), sdk_client(live) as client:
        results = evaluate(
            target,
            data="summary-ds",
            evaluators=[exact],
            summary_evaluators=[precision, verdict],
            experiment_prefix="sum",
            client=client,
        )
        assert len(list(results)) == 3
        results.wait()
        client.flush()
        experiment = results.experiment_name
    assert not [r for r in caplog.records if "feedback" in r.getMessage().lower()]
    _check(live, experiment)


def test_aevaluate_summary_evaluators(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(live, "asummary-ds")
    sdk_env(monkeypatch, live, "asummary-traces")

    async def target(inputs: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"answer": ANSWERS[inputs["q"]]}

    async def run() -> str:
        with sdk_client(live) as client:
            results = await aevaluate(
                target,
                data="asummary-ds",
                evaluators=[exact],
                summary_evaluators=[precision, verdict],
                experiment_prefix="asum",
                client=client,
            )
            assert len([row async for row in results]) == 3
            client.flush()
            return results.experiment_name

    _check(live, asyncio.run(run()))


def test_experiment_feedback_is_checked_and_isolated(live: Live) -> None:
    ctx = live.app.state.ctx
    other = auth.create_key(ctx, auth.create_workspace(ctx, "other").id, "o", role="admin").secret
    with live.api() as api:
        project = api.post("/projects", json={"name": "mine"})
        assert project.status_code in (200, 201), project.text
        project_id = project.json()["id"]
        ok = api.post("/feedback", json={"key": "overall", "score": 0.5, "project_id": project_id})
        assert ok.status_code == 201, ok.text
        both = api.post(
            "/feedback", json={"key": "k", "score": 1, "project_id": project_id, "run_id": "r1"}
        )
        assert both.status_code == 400
        assert "project_id" in both.text
        missing = api.post("/feedback", json={"key": "k", "score": 1, "project_id": "nope"})
        assert missing.status_code == 404
    headers = {"x-api-key": other}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        stolen = raw.post("/feedback", json={"key": "k", "score": 1, "session_id": project_id})
        assert stolen.status_code == 404  # another workspace's experiment does not exist here
        assert raw.get("/feedback", params={"session": project_id}).json() == []
    with httpx.Client(
        timeout=HTTP_TIMEOUT, base_url=live.base + "/api/v1", headers=headers
    ) as theirs:
        assert theirs.get("/feedback", params={"project_id": project_id}).json()["items"] == []


def test_async_client_creates_and_lists_experiment_feedback(live: Live) -> None:
    with sdk_client(live) as client:
        project_id = str(client.create_project("async-experiment").id)

    async def scenario() -> list[tuple[str, Any, Any]]:
        async with langsmith.AsyncClient(api_url=live.endpoint, api_key=live.key) as aclient:
            await aclient.create_feedback(key="f1", score=0.25, project_id=project_id)
            await aclient.create_feedback(key="label", value="good", project_id=project_id)
            return [
                (f.key, f.score, str(f.session_id))
                async for f in aclient.list_feedback(session=[project_id])
            ]

    got = sorted(asyncio.run(scenario()))
    assert got == [("f1", 0.25, project_id), ("label", None, project_id)]
