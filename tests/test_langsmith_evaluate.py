"""``evaluate()`` and ``aevaluate()`` of the real SDK, end to end against Goldloop, checked
through Goldloop's own API: the experiment is a project, its runs point at the examples, and
each evaluator's score is feedback on the target run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langsmith import aevaluate, evaluate

from goldloop.settings import Settings
from langsmith_live import Live, live_server, ref, sdk_client, sdk_env

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def exact(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> bool:
    return bool(outputs["answer"] == reference_outputs["answer"])


def short(outputs: dict[str, Any]) -> dict[str, Any]:
    return {"key": "short", "score": len(outputs["answer"]) <= 5, "comment": "length check"}


def _seed(live: Live, name: str) -> tuple[str, list[str]]:
    with sdk_client(live) as client:
        ds = client.create_dataset(name)
        made = client.create_examples(
            dataset_id=ds.id,
            examples=[
                {"inputs": {"q": "2+2"}, **ref({"answer": "4"})},
                {"inputs": {"q": "capital of France"}, **ref({"answer": "Paris"})},
                {"inputs": {"q": "largest ocean"}, **ref({"answer": "Pacific"})},
            ],
        )
    return str(ds.id), [str(i) for i in made["example_ids"]]


ANSWERS = {"2+2": "4", "capital of France": "Lyon", "largest ocean": "Pacific Ocean"}


def _check(live: Live, experiment: str, example_ids: list[str], dataset_id: str) -> None:
    with live.api() as api:
        projects = api.get("/projects", params={"name": experiment}).json()["items"]
        assert len(projects) == 1, experiment
        project_id = projects[0]["id"]
        # The experiment's dataset and the SDK's closing metadata (PATCH /sessions/{id}).
        assert projects[0]["extra"]["reference_dataset_id"] == dataset_id
        assert projects[0]["extra"]["metadata"]["dataset_version"]
        with sdk_client(live) as client:
            session = client.read_project(project_name=experiment)
            assert str(session.reference_dataset_id) == dataset_id
            listed = client.list_projects(reference_dataset_id=dataset_id)
            assert [p.name for p in listed] == [experiment]
        page = api.get("/runs", params={"project": project_id, "filter": "root", "limit": 100})
        roots = page.json()["items"]
        assert sorted(r["reference_example_id"] for r in roots) == sorted(example_ids)
        assert all(r["status"] == "success" for r in roots)
        scores: dict[str, dict[str, Any]] = {}
        for root in roots:
            items = api.get("/feedback", params={"run_id": root["id"]}).json()["items"]
            scores[root["reference_example_id"]] = {f["key"]: f["score"] for f in items}
        first, second, third = example_ids
        assert scores == {
            first: {"exact": True, "short": True},
            second: {"exact": False, "short": True},
            third: {"exact": False, "short": False},
        }
        feedback = api.get("/feedback", params={"run_id": roots[0]["id"]}).json()["items"]
        kept = feedback[0]["source_info"]["langsmith"]
        assert kept["session_id"] == project_id
        assert feedback[0]["source"] == "model"


def test_evaluate_with_two_evaluators(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset_id, example_ids = _seed(live, "ls-eval")
    sdk_env(monkeypatch, live, "ls-eval-traces")

    def target(inputs: dict[str, Any]) -> dict[str, Any]:
        return {"answer": ANSWERS[inputs["q"]]}

    with sdk_client(live) as client:
        results = evaluate(
            target,
            data="ls-eval",
            evaluators=[exact, short],
            experiment_prefix="exp",
            max_concurrency=2,
            client=client,
        )
        rows = list(results)
        client.flush()
        experiment = results.experiment_name
    assert len(rows) == 3
    _check(live, experiment, example_ids, dataset_id)


def test_aevaluate_with_two_evaluators(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset_id, example_ids = _seed(live, "ls-aeval")
    sdk_env(monkeypatch, live, "ls-aeval-traces")

    async def target(inputs: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"answer": ANSWERS[inputs["q"]]}

    async def run() -> tuple[str, int]:
        with sdk_client(live) as client:
            results = await aevaluate(
                target,
                data="ls-aeval",
                evaluators=[exact, short],
                experiment_prefix="aexp",
                max_concurrency=2,
                client=client,
            )
            rows = [row async for row in results]
            client.flush()
            return results.experiment_name, len(rows)

    experiment, count = asyncio.run(run())
    assert count == 3
    _check(live, experiment, example_ids, dataset_id)
