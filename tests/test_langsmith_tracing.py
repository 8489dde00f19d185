"""The unmodified ``langsmith`` SDK traces into Goldloop, over a socket, on both ingestion paths.

Each test checks what Goldloop stored through Goldloop's own API.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import langsmith as ls
import orjson
import pytest
import zstandard
from langsmith import traceable
from langsmith.run_trees import RunTree

from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, INGEST_MODES, Live, live_server, sdk_client, sdk_env

pytestmark = pytest.mark.slow


@pytest.fixture(params=INGEST_MODES)
def live(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Live]:
    with live_server(settings, str(request.param)) as server:
        yield server


def _runs_of_trace(live: Live, trace_id: str) -> dict[str, dict[str, Any]]:
    """The trace as Goldloop's own API returns it."""
    with live.api() as api:
        r = api.get(f"/traces/{trace_id}")
        assert r.status_code == 200, r.text
        return {run["id"]: run for run in r.json()["runs"]}


def test_info_selects_the_advertised_path(live: Live) -> None:
    info = httpx.get(timeout=HTTP_TIMEOUT, url=live.endpoint + "/info").json()
    config = info["batch_ingest_config"]
    # Every key the SDK's tracing thread reads must be there (a partial object kills tracing).
    for key in ("size_limit", "scale_up_qsize_trigger", "scale_up_nthreads_limit"):
        assert isinstance(config[key], int)
    assert isinstance(config["scale_down_nempty_trigger"], int)
    with sdk_client(live) as client:
        assert client.info.batch_ingest_config == config
    same = httpx.get(timeout=HTTP_TIMEOUT, url=live.endpoint + "/api/v1/info").json()
    assert same == info


def test_nested_traceable_with_an_exception(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    project = f"ls-trace-{uuid.uuid4().hex[:6]}"
    sdk_env(monkeypatch, live, project)
    seen: dict[str, RunTree] = {}

    @traceable(run_type="tool", tags=["t1"], metadata={"m": 1})
    def child(x: int) -> int:
        run = ls.get_current_run_tree()
        assert run is not None
        seen[f"child{x}"] = run
        if x < 0:
            raise ValueError("boom")
        return x * 2

    @traceable(name="parent", metadata={"thread_id": "conv-7"})
    def parent(x: int) -> dict[str, int]:
        run = ls.get_current_run_tree()
        assert run is not None
        seen["parent"] = run
        doubled = child(x)
        with contextlib.suppress(ValueError):
            child(-1)
        return {"answer": doubled}

    with sdk_client(live) as client:
        with ls.tracing_context(client=client, project_name=project, enabled=True):
            assert parent(5) == {"answer": 10}
        client.flush()

    root = seen["parent"]
    if live.mode == "batch":
        assert live.paths("/langsmith/runs/batch")
        assert not live.paths("/runs/multipart")
    else:
        assert live.paths("/langsmith/runs/multipart")
        encodings = {enc for _, _, enc in live.paths("/runs/multipart")}
        assert encodings == ({"zstd"} if live.mode == "multipart-zstd" else {""})
        assert not live.paths("/runs/batch")
    runs = _runs_of_trace(live, str(root.id))
    assert set(runs) == {str(seen[k].id) for k in ("parent", "child5", "child-1")}
    top = runs[str(root.id)]
    assert top["parent_id"] is None
    assert top["name"] == "parent"
    assert top["kind"] == "chain"
    assert top["status"] == "success"
    assert top["inputs"] == {"x": 5}
    assert top["outputs"] == {"answer": 10}
    assert top["session_id"] == "conv-7"
    assert top["end_time"] >= top["start_time"] > 0
    ok = runs[str(seen["child5"].id)]
    assert ok["parent_id"] == str(root.id)
    assert ok["trace_id"] == str(root.id)
    assert (ok["kind"], ok["tags"], ok["metadata"]["m"]) == ("tool", ["t1"], 1)
    assert ok["outputs"] == {"output": 10}
    failed = runs[str(seen["child-1"].id)]
    assert failed["status"] == "error"
    assert failed["error"]["type"] == "ValueError"
    assert failed["error"]["message"] == "boom"
    assert failed["error"]["stacktrace"].startswith("Traceback (most recent call last):")
    assert failed["extra"]["langsmith"]["dotted_order"].startswith(root.dotted_order + ".")
    with live.api() as api:
        found = api.get("/projects", params={"name": project}).json()["items"]
    assert [p["id"] for p in found] == [top["project_id"]]


def test_manual_runs_without_trace_ids(live: Live) -> None:
    """``create_run`` without trace id / dotted order -> ``POST /runs``; ``update_run`` ->
    ``PATCH /runs/{id}`` with explicit nulls that must not clear anything."""
    project = f"ls-manual-{uuid.uuid4().hex[:6]}"
    root_id, child_id = str(uuid.uuid4()), str(uuid.uuid4())
    start = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
    with sdk_client(live) as client:
        client.create_run(
            "manual", {"q": "hi"}, "chain", id=root_id, project_name=project, start_time=start
        )
        client.create_run(
            "step",
            {"a": 1},
            "llm",
            id=child_id,
            parent_run_id=root_id,
            project_name=project,
            start_time=start,
        )
        client.update_run(child_id, outputs={"b": 2}, end_time=start)
        client.update_run(root_id, outputs={"answer": "x"}, error="RuntimeError('late')")
        client.flush()
    runs = _runs_of_trace(live, root_id)
    assert set(runs) == {root_id, child_id}
    assert runs[child_id]["trace_id"] == root_id
    assert runs[child_id]["inputs"] == {"a": 1}  # the patch's nulls kept it
    assert runs[child_id]["outputs"] == {"b": 2}
    assert runs[child_id]["name"] == "step"
    assert runs[child_id]["status"] == "success"
    assert runs[root_id]["error"]["type"] == "RuntimeError"
    assert runs[root_id]["status"] == "error"
    assert runs[root_id]["extra"]["langsmith"]["dotted_order"] == (
        f"20261126T100000123456Z{root_id}"
    )


def test_a_patch_before_its_post_and_duplicates_converge(live: Live) -> None:
    run_id = str(uuid.uuid4())
    dotted = f"20261126T100000000000Z{run_id}"
    post = {
        "id": run_id,
        "trace_id": run_id,
        "dotted_order": dotted,
        "session_name": "ooo",
        "name": "r",
        "run_type": "chain",
        "start_time": "2026-11-26T10:00:00+00:00",
        "inputs": {"q": 1},
        "outputs": {},
        "events": [],
    }
    patch = {
        "id": run_id,
        "trace_id": run_id,
        "dotted_order": dotted,
        "parent_run_id": None,
        "session_name": "ooo",
        "end_time": "2026-11-26T10:00:01+00:00",
        "outputs": {"a": 2},
        "session_id": None,
    }
    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        for body in ({"patch": [patch]}, {"post": [post]}, {"post": [post], "patch": [patch]}):
            r = raw.post("/runs/batch", json=body)
            assert (r.status_code, r.json()) == (202, {})
        assert raw.post("/runs/batch", json={"post": [{"name": "no id"}]}).status_code == 400
        assert (
            httpx.post(timeout=HTTP_TIMEOUT, url=live.endpoint + "/runs/batch", json={}).status_code
            == 401
        )
        bad = raw.post("/runs/batch", json={}, headers={"x-api-key": "gl_wrong"})
        assert bad.status_code == 401
    stored = _runs_of_trace(live, run_id)[run_id]
    assert stored["inputs"] == {"q": 1}
    assert stored["outputs"] == {"a": 2}
    assert stored["latency_ms"] == 1000
    assert stored["status"] == "success"


def _part(name: str, data: bytes, boundary: str) -> bytes:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
    return (head + "Content-Type: application/json\r\n\r\n").encode() + data + b"\r\n"


def test_raw_zstd_multipart_with_feedback_and_attachment(live: Live) -> None:
    """What the zstd path sends: post, then patch of the same run, a feedback part and an
    attachment (dropped), one zstd frame without a content size."""
    run_id, feedback_id = str(uuid.uuid4()), str(uuid.uuid4())
    boundary = uuid.uuid4().hex
    post = {
        "trace_id": run_id,
        "dotted_order": f"20261126T100000000000Z{run_id}",
        "session_name": "zstd-raw",
        "name": "r",
        "run_type": "llm",
        "start_time": "2026-11-26T10:00:00+00:00",
    }
    body = (
        b"".join(
            [
                _part(f"post.{run_id}", orjson.dumps(post), boundary),
                _part(f"post.{run_id}.inputs", b'{"q": "hi"}', boundary),
                _part(f"attachment.{run_id}.img", b"\x89PNG", boundary),
                _part(
                    f"patch.{run_id}",
                    orjson.dumps({**post, "end_time": "2026-11-26T10:00:02Z"}),
                    boundary,
                ),
                _part(f"patch.{run_id}.outputs", b'{"a": "yo"}', boundary),
                _part(
                    f"feedback.{feedback_id}",
                    orjson.dumps(
                        {
                            "id": feedback_id,
                            "run_id": run_id,
                            "trace_id": run_id,
                            "key": "k",
                            "score": 1,
                            "feedback_source": {"type": "api", "metadata": {}},
                        }
                    ),
                    boundary,
                ),
            ]
        )
        + f"--{boundary}--\r\n".encode()
    )
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    frame = compressor.compress(body) + compressor.flush()
    headers = {
        "x-api-key": live.key,
        "content-type": f"multipart/form-data; boundary={boundary}",
        "content-encoding": "zstd",
    }
    r = httpx.post(
        timeout=HTTP_TIMEOUT, url=live.endpoint + "/runs/multipart", content=frame, headers=headers
    )
    assert (r.status_code, r.json()) == (202, {})
    stored = _runs_of_trace(live, run_id)[run_id]
    assert (stored["inputs"], stored["outputs"], stored["kind"]) == (
        {"q": "hi"},
        {"a": "yo"},
        "llm",
    )
    assert stored["latency_ms"] == 2000
    with live.api() as api:
        assert api.get(f"/feedback/{feedback_id}").json()["run_id"] == run_id
    broken = httpx.post(
        timeout=HTTP_TIMEOUT,
        url=live.endpoint + "/runs/multipart",
        content=b"--x\r\n",
        headers={"x-api-key": live.key, "content-type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 400
    assert "multipart" in broken.json()["error"]["message"]


def test_runs_naming_their_project_by_id(live: Live) -> None:
    with sdk_client(live) as client:
        project = client.create_project(f"by-id-{uuid.uuid4().hex[:6]}")
    run_id = str(uuid.uuid4())
    post = {
        "id": run_id,
        "trace_id": run_id,
        "session_id": str(project.id),
        "name": "r",
        "dotted_order": f"20261126T100000000000Z{run_id}",
        "start_time": "2026-11-26T10:00:00+00:00",
    }
    headers = {"x-api-key": live.key}
    r = httpx.post(
        timeout=HTTP_TIMEOUT,
        url=live.endpoint + "/runs/batch",
        json={"post": [post]},
        headers=headers,
    )
    assert r.status_code == 202
    assert _runs_of_trace(live, run_id)[run_id]["project_id"] == str(project.id)


async def test_a_default_server_advertises_the_multipart_path(client: httpx.AsyncClient) -> None:
    """The SDK sends run attachments only on /runs/multipart (on /runs/batch it drops them
    before sending), so an unconfigured server must advertise multipart."""
    info = (await client.get("/langsmith/info")).json()
    assert info["batch_ingest_config"]["use_multipart_endpoint"] is True
