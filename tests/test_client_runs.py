"""The read client against the real server on a real socket (SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest

from goldloop.client import Client
from goldloop.client_runs import ApiError, RunsClient
from goldloop.sdk.client_runs import RETRIES_WHEN_FULL
from goldloop.settings import Settings
from langsmith_live import live_server
from receiver import receiver
from run_rows import T0, batch_item, run_row


def test_read_client_round_trip(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    with live_server(settings) as live:
        capsys.readouterr()  # the bootstrap banner
        rows = [run_row("", "p", f"r{i}", start_time=T0 + i, kind="llm") for i in range(7)]
        rows.append(run_row("", "p", "child", trace_id="r0", parent_id="r0", start_time=T0))
        with live.api() as api:
            body = {"project": "client", "runs": [batch_item(r) for r in rows]}
            assert api.post("/runs/batch", json=body).status_code == 202
            project_id = api.get("/projects", params={"name": "client"}).json()["items"][0]["id"]

        with RunsClient(live.base, api_key=live.key) as gl:
            assert gl.get_run("r3")["start_time"] == T0 + 3
            page = gl.list_runs(project="client", filter="root", limit=2, light=True)
            assert [r["id"] for r in page["items"]] == ["r6", "r5"]
            assert "inputs" not in page["items"][0]
            every = [r["id"] for r in gl.iter_runs(project="client", filter="root", page_size=3)]
            assert every == [f"r{i}" for i in range(6, -1, -1)]
            tree = gl.get_trace("r0")
            assert [(r["id"], r["depth"]) for r in tree["runs"]] == [("r0", 0), ("child", 1)]
            stats = gl.project_stats(project_id, bucket="1d", start=T0, end=T0 + 86_400_000_000)
            assert stats["buckets"][0]["count"] == 8

            with pytest.raises(ApiError) as bad:
                gl.list_runs(filter="latency > 2")
            assert bad.value.status == 400
            assert bad.value.details["position"] == 10
            with pytest.raises(ApiError) as missing:
                gl.get_run("nope")
            assert missing.value.code == "not_found"


def test_a_non_json_error_still_raises_api_error() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(502, text="bad gateway"))
    with (
        RunsClient("http://x", api_key="k", transport=transport) as gl,
        pytest.raises(ApiError) as err,
    ):
        gl.get_run("r")
    assert err.value.status == 502
    assert "bad gateway" in err.value.message


def test_client_ingests_exports_and_imports(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """``Client``: native ingestion in chunks, a filtered whole-trace export, the project
    deleted, and the import give the same runs (ids, fields) back."""
    runs = [
        {"id": f"t{t}-{i}", "trace_id": f"t{t}-0", "parent_id": None if i == 0 else f"t{t}-0",
         "name": f"step {i}", "kind": "llm" if i else "chain", "start_time": T0 + 10 * t + i,
         "end_time": T0 + 10 * t + 5, "inputs": {"q": t}, "tags": ["prod"] if t % 2 else []}
        for t in range(4) for i in range(3)
    ]  # fmt: skip
    runs[4]["error"] = {"message": "boom"}  # a step of trace t1
    with live_server(settings) as live:
        capsys.readouterr()
        with Client(live.base, live.key) as gl:
            assert gl.ingest_runs(runs[:7], project="src") == 7
            assert gl.ingest_runs(runs[7:], project="src") == 5
            assert gl.find_project("src") is not None
            assert gl.find_project("nope") is None
            lines = list(gl.export_traces("src", filter='status = "error"', whole_traces=True))
            ids = ["t1-0", "t1-1", "t1-2"]
            before = [gl.get_run(i) for i in ids]
            project = gl.find_project("src")
            assert project is not None
            assert gl.delete_project(project["id"])["runs_deleted"] == 12
            result = gl.import_traces(lines)  # into the project each line names: "src"
            assert (result.batches, result.rejected_spans) == (1, 0)
            assert sorted(r["id"] for r in gl.iter_runs(project="src")) == ids
            volatile = {"project_id", "seq", "created_at", "updated_at"}
            after = [gl.get_run(i) for i in ids]
            assert [{k: v for k, v in r.items() if k not in volatile} for r in after] == [
                {k: v for k, v in r.items() if k not in volatile} for r in before
            ]
            with pytest.raises(ApiError) as bad:
                list(gl.export_traces("src", filter="latency >"))
            assert bad.value.status == 400
            with pytest.raises(ApiError) as unknown:
                next(gl.export_traces("nope"))
            assert unknown.value.status == 404
            with pytest.raises(ApiError) as invalid:
                gl.ingest_runs([{"id": "x", "trace_id": "x", "start_time": "soon"}])
            assert invalid.value.status == 400
            assert "start_time" in invalid.value.message


def test_bulk_calls_wait_out_a_full_server() -> None:
    """503 + Retry-After twice, then the answer: ``ingest_runs`` sends the chunk three times
    and counts it once; after ``RETRIES_WHEN_FULL`` refusals it raises."""
    with receiver() as rx:
        rx.script = [(503, {"Retry-After": "0"}), (503, {"Retry-After": "0"})]
        rx.reply = b'{"accepted": 2}'
        with Client(rx.url, "k") as gl:
            path = httpx.URL(rx.url).path.rstrip("/")
            assert gl.ingest_runs([{"id": "a", "trace_id": "a"}, {"id": "b", "trace_id": "a"}]) == 2
            assert [r.path for r in rx.requests] == [f"{path}/api/v1/runs/batch"] * 3
            rx.script = [(503, {"Retry-After": "0"})] * (RETRIES_WHEN_FULL + 1)
            with pytest.raises(ApiError) as full:
                gl.import_traces([b'{"resourceSpans": []}'])
            assert full.value.status == 503
            assert rx.requests[-1].path == f"{path}/v1/traces"
            assert len(rx.requests) == 3 + RETRIES_WHEN_FULL + 1
