"""The read client against the real server on a real socket (SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest

from goldloop.client_runs import ApiError, RunsClient
from goldloop.settings import Settings
from langsmith_live import live_server
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
