"""The runner against the real server on a real socket: a dataset read by name at a pinned
version, the experiment's runs in their own project, evaluator results stored as feedback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

import goldloop
from goldloop.evaluation import build_evaluator
from goldloop.sdk import setup as _setup
from goldloop.settings import Settings
from langsmith_live import live_server
from sdk_state import reset_sdk


@pytest.fixture
def clean_sdk() -> Iterator[None]:
    yield
    reset_sdk()


@goldloop.traced(kind="tool")
def lookup(booking_id: str) -> str:
    return "non-refundable" if booking_id in ("B1", "B3") else "refundable"


def agent(inputs: dict[str, Any]) -> dict[str, str]:
    return {"answer": lookup(inputs["booking_id"])}


def test_evaluate_a_dataset_by_name(settings: Settings, clean_sdk: None) -> None:
    with live_server(settings) as live, live.api() as api:
        assert api.post("/datasets", json={"name": "support-golden"}).status_code == 201
        v1 = [
            {"id": f"ex-{b}", "inputs": {"booking_id": b}, "outputs": {"answer": a}}
            for b, a in [("B1", "non-refundable"), ("B2", "refundable")]
        ]
        r = api.post("/datasets/support-golden/examples", json={"examples": v1})
        assert r.status_code == 201, r.text
        r = api.post(
            "/datasets/support-golden/examples",
            json={"examples": [{"id": "ex-B3", "inputs": {"booking_id": "B3"},
                                "outputs": {"answer": "refundable"}}]},
        )  # fmt: skip
        assert r.status_code == 201, r.text

        goldloop.configure(tracing=True, endpoint=live.base, api_key=live.key, project="prod")
        exact = build_evaluator("exact_match", {"key": "correct"})
        pinned = goldloop.evaluate(agent, "support-golden", [exact], as_of=1, progress=False)
        latest = goldloop.evaluate(agent, "support-golden", [exact], progress=False)

        assert (pinned.dataset, pinned.dataset_version) == ("support-golden", 1)
        assert [r.example_key for r in pinned.rows] == ["ex-B1", "ex-B2"]
        assert latest.dataset_version == 2
        assert latest.summary()["correct"]["mean"] == pytest.approx(2 / 3)
        assert latest.uploaded

        runs = api.get("/runs", params={"project": latest.experiment, "limit": 100}).json()
        names = sorted(r["name"] for r in runs["items"])
        assert names == ["agent"] * 3 + ["lookup"] * 3
        root = latest.rows[2]
        fb = api.get("/feedback", params={"run_id": root.run.id}).json()["items"]
        assert len(fb) == 1
        assert (fb[0]["key"], fb[0]["score"]) == ("correct", 0.0)
        assert fb[0]["source_info"]["experiment"] == latest.experiment
        assert fb[0]["source_info"]["evaluator"] == "exact_match"
        assert fb[0]["source_info"]["example_id"] == "ex-B3"

        with pytest.raises(ValueError, match=r"no dataset named .no-such-dataset. on http"):
            goldloop.evaluate(agent, "no-such-dataset", [exact], progress=False)


def test_evaluate_finds_the_server_in_the_environment(
    settings: Settings, clean_sdk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No configure() and no traced call before evaluate(): GOLDLOOP_ENDPOINT and
    GOLDLOOP_API_KEY are read as at the first traced call (as docs/experiments.md says)."""
    with live_server(settings) as live, live.api() as api:
        assert api.post("/datasets", json={"name": "support-golden"}).status_code == 201
        example = {"id": "ex-B1", "inputs": {"booking_id": "B1"}, "outputs": {"answer": "x"}}
        r = api.post("/datasets/support-golden/examples", json={"examples": [example]})
        assert r.status_code == 201, r.text
        monkeypatch.setenv("GOLDLOOP_ENDPOINT", live.base)
        monkeypatch.setenv("GOLDLOOP_API_KEY", live.key)
        monkeypatch.delenv("GOLDLOOP_TRACING", raising=False)
        assert _setup.current_config() is None
        exact = build_evaluator("exact_match", {"key": "correct"})
        results = goldloop.evaluate(agent, "support-golden", [exact], progress=False)
    assert (results.dataset, results.dataset_version) == ("support-golden", 1)
    assert [r.example_key for r in results.rows] == ["ex-B1"]


def flaky(inputs: dict[str, Any]) -> dict[str, str]:
    if inputs["booking_id"] == "B2":
        raise RuntimeError("tool down")
    return agent(inputs)


def length(outputs: dict[str, Any]) -> float:
    return len(outputs.get("answer", "")) / 20


def test_experiments_on_the_server_match_the_local_results(
    settings: Settings, clean_sdk: None
) -> None:
    """The runner registers the experiment (dataset and pinned version), links each root run to
    its example, and the server's aggregates, results and comparison agree with the results the
    runner returned."""
    with live_server(settings) as live, live.api() as api:
        assert api.post("/datasets", json={"name": "bookings"}).status_code == 201
        examples = [
            {"id": f"ex-{b}", "inputs": {"booking_id": b}, "outputs": {"answer": a}}
            for b, a in [("B1", "non-refundable"), ("B2", "refundable"), ("B3", "refundable"),
                         ("B4", "refundable")]
        ]  # fmt: skip
        assert api.post("/datasets/bookings/examples", json={"examples": examples}).is_success

        goldloop.configure(tracing=True, endpoint=live.base, api_key=live.key, project="prod")
        exact = build_evaluator("exact_match", {"key": "correct"})
        meta = {"git_sha": "abc"}
        a = goldloop.evaluate(agent, "bookings", [exact, length], repetitions=2, progress=False,
                              experiment_prefix="agent-v1", metadata=meta)  # fmt: skip
        b = goldloop.evaluate(flaky, "bookings", [exact, length], repetitions=2, progress=False)

        got = api.get(f"/experiments/{a.experiment}").json()
        assert (got["dataset"], got["dataset_version"], got["repetitions"]) == ("bookings", 1, 2)
        assert got["evaluators"] == ["exact_match", "length"]
        assert got["metadata"] == meta
        assert (got["run_count"], got["error_count"]) == (8, 0)
        for key, s in a.summary().items():
            assert got["scores"][key]["n"] == s["n"]
            assert got["scores"][key]["mean"] == pytest.approx(s["mean"])
        assert got["scores"]["correct"]["binary"]
        assert not got["scores"]["length"]["binary"]
        assert api.get(f"/experiments/{b.experiment}").json()["error_count"] == 2

        rows = api.get(f"/experiments/{b.experiment}/results", params={"limit": 1000}).json()
        local = {(r.example_key, r.repetition): r for r in b.rows}
        assert len(rows["items"]) == len(local) == 8
        for row in rows["items"]:
            mine = local[(row["example_id"], row["repetition"])]
            assert row["run_id"] == mine.run.id
            assert row["error"] == mine.error
            assert row["scores"] == {r.key: r.score for r in mine.results}
        run = api.get(f"/runs/{b.rows[0].run.id}").json()
        assert run["reference_example_id"] == "ex-B1"

        params = {"baseline": a.experiment, "candidate": b.experiment, "examples": "true"}
        remote = api.get("/experiments/compare", params=params).json()["comparisons"]
        expected = b.compare(a)
        assert [c["key"] for c in remote] == sorted(c.key for c in expected)
        for c in expected:
            (mirror,) = [r for r in remote if r["key"] == c.key]
            mirror.pop("verdict")
            assert mirror == orjson.loads(orjson.dumps(c.to_dict()))  # tuples as lists, NaN null
