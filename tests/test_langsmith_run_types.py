"""Run types outside LangSmith's set are a 422 on every LangSmith ingestion path (the SDK logs
the message once and does not retry); Goldloop's own API keeps accepting its wider set of kinds.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

import httpx
import langsmith
import langsmith as ls
import pytest
from langsmith import traceable

from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, INGEST_MODES, Live, live_server, sdk_client, sdk_env

pytestmark = pytest.mark.slow

INGEST_PATHS = ("/langsmith/runs/batch", "/langsmith/runs/multipart")


@pytest.fixture(params=INGEST_MODES)
def live(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Live]:
    with live_server(settings, str(request.param)) as server:
        yield server


def _project_runs(live: Live, project: str) -> list[dict[str, object]]:
    with live.api() as api:
        return list(api.get("/runs", params={"filter": f'project = "{project}"'}).json()["items"])


def test_traceable_with_a_foreign_run_type_is_refused_once(
    live: Live, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    project = f"ls-kind-{uuid.uuid4().hex[:6]}"
    sdk_env(monkeypatch, live, project)
    with pytest.warns(UserWarning, match="Unrecognized run_type: agent"):

        @traceable(run_type="agent")  # type: ignore[arg-type]
        def plan(x: int) -> int:
            return x + 1

    with caplog.at_level(logging.WARNING, logger="langsmith"), sdk_client(live) as client:
        with ls.tracing_context(client=client, project_name=project, enabled=True):
            assert plan(1) == 2
        client.flush()
    sent = [r for r in live.seen if r[1] in INGEST_PATHS]
    assert sent, "the SDK sent nothing"
    failures = [r.getMessage() for r in caplog.records if "Failed to" in r.getMessage()]
    # one warning per request, each naming the problem: nothing was retried
    assert len(failures) == len(sent)
    for message in failures:
        assert "422" in message
        assert "agent" in message
        assert "is not a LangSmith run type" in message
    assert _project_runs(live, project) == []


def test_raw_paths_answer_422_naming_the_field(live: Live) -> None:
    run = {
        "id": str(uuid.uuid4()),
        "trace_id": None,
        "name": "x",
        "run_type": "reranker",
        "start_time": "2026-11-26T10:00:00Z",
        "inputs": {},
    }
    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        for path, body in (("/runs", run), ("/runs/batch", {"post": [run]})):
            r = raw.post(path, json=body)
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert error["code"] == "unprocessable"
            assert "run_type: 'reranker'" in error["message"]
            assert "llm, chain, tool, retriever, embedding, prompt, parser" in error["message"]
        r = raw.patch(f"/runs/{run['id']}", json={"run_type": "guardrail"})
        assert r.status_code == 422
        # a well-formed LangSmith type in the same shape is stored
        assert raw.post("/runs", json={**run, "run_type": "retriever"}).status_code == 202
        # no key: 401 before the body is looked at
        assert httpx.post(live.endpoint + "/runs", json=run).status_code == 401
    with live.api() as api:
        stored = api.get(f"/runs/{run['id']}").json()
        assert stored["kind"] == "retriever"
        # Goldloop's own API accepts its wider set of kinds, by design (docs/ingestion.md)
        native = {"id": f"native-{uuid.uuid4().hex[:8]}", "trace_id": "t", "kind": "reranker"}
        assert api.post("/runs/batch", json={"runs": [native]}).status_code == 202
        assert api.get(f"/runs/{native['id']}").json()["kind"] == "reranker"


def test_multipart_body_with_a_foreign_run_type_is_422(live: Live) -> None:
    run_id = str(uuid.uuid4())
    part = (
        f'--b\r\nContent-Disposition: form-data; name="post.{run_id}"\r\n'
        "Content-Type: application/json\r\n\r\n"
        f'{{"id": "{run_id}", "trace_id": "{run_id}", "name": "x", "run_type": "agent"}}\r\n'
        "--b--\r\n"
    )
    r = httpx.post(
        live.endpoint + "/runs/multipart",
        content=part.encode(),
        headers={"x-api-key": live.key, "content-type": "multipart/form-data; boundary=b"},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 422, r.text
    assert "run_type: 'agent'" in r.json()["error"]["message"]


def test_async_client_create_run_gets_the_422(live: Live) -> None:
    if live.mode != "batch":
        pytest.skip("AsyncClient.create_run posts /runs whatever /info advertises")
    project = f"ls-kind-async-{uuid.uuid4().hex[:6]}"

    async def scenario() -> None:
        async with langsmith.AsyncClient(api_url=live.endpoint, api_key=live.key) as client:
            with pytest.raises(langsmith.utils.LangSmithError, match="not a LangSmith run type"):
                await client.create_run("x", {"q": 1}, "agent", project_name=project)  # type: ignore[arg-type]
            await client.create_run("y", {"q": 1}, "tool", project_name=project)

    asyncio.run(scenario())
    assert len([r for r in live.seen if r[:2] == ("POST", "/langsmith/runs")]) == 2
    assert [r["kind"] for r in _project_runs(live, project)] == ["tool"]
