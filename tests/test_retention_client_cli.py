"""Retention, trace deletion, erasure and the audit log through the Python client and the
`goldloop retention|traces delete|erase|audit` commands, against a real server socket."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from goldloop.cli.main import cli
from goldloop.client import ApiError, Client
from goldloop.settings import Settings
from live_api import live_api


def _runs(endpoint: str, key: str) -> None:
    items = [
        {
            "id": f"r{i}",
            "trace_id": f"t{i}",
            "name": "agent",
            "start_time": 1_790_000_000_000_000 + i,
            "end_time": 1_790_000_001_000_000 + i,
            "user_id": "alice" if i < 2 else "bob",
            "status": "error" if i % 2 else "success",
        }
        for i in range(6)
    ]
    r = httpx.post(
        f"{endpoint}/api/v1/runs/batch",
        headers={"x-api-key": key},
        json={"project": "support", "runs": items},
    )
    assert r.status_code == 202


def test_client_and_cli(settings: Settings) -> None:
    with live_api(settings) as live, Client(live.endpoint, live.key) as client:
        _runs(live.endpoint, live.key)
        args = ["--endpoint", live.endpoint, "--api-key", live.key]
        runner = CliRunner()

        policy = client.set_retention("support", 30, keep_with_feedback=True)
        assert policy["keep_days"] == 30
        assert client.get_retention("support")["keep_with_feedback"] is True
        out = runner.invoke(cli, ["retention", "set", "support", "--keep-days", "7", *args])
        assert out.exit_code == 0, out.output
        assert "keeps runs 7 days" in out.output
        shown = runner.invoke(cli, ["retention", "show", "support", *args])
        assert json.loads(shown.output)["keep_days"] == 7
        assert runner.invoke(cli, ["retention", "clear", "support", *args]).exit_code == 0
        with pytest.raises(ApiError) as missing:
            client.get_retention("support")
        assert missing.value.status == 404

        preview = client.delete_traces(filter='status = "error"', project="support", dry_run=True)
        assert (preview["traces"], preview["runs"]) == (3, 3)
        dry = runner.invoke(
            cli, ["traces", "delete", "--filter", 'status = "error"', "--dry-run", *args]
        )
        assert json.loads(dry.output)["runs"] == 3
        refused = runner.invoke(cli, ["traces", "delete", "--filter", 'status = "error"', *args])
        assert refused.exit_code != 0  # not a terminal and no --yes: nothing deleted
        assert "--yes" in refused.output
        assert client.delete_traces(["t1"], dry_run=True)["runs"] == 1
        done = runner.invoke(
            cli, ["traces", "delete", "--filter", 'status = "error"', "--yes", *args]
        )
        assert done.exit_code == 0, done.output
        assert "deleted 3 traces, 3 runs" in done.output
        bad = runner.invoke(cli, ["traces", "delete", "--filter", "status = ", *args])
        assert bad.exit_code == 1
        assert "position" in bad.output

        assert client.erase(user_id="alice", dry_run=True)["runs"] == 1  # r1 went above
        erased = runner.invoke(cli, ["erase", "--user-id", "alice", "--yes", *args])
        assert "erased 1 traces, 1 runs" in erased.output, erased.output
        assert client.erase(metadata={"nothing": "here"})["runs"] == 0

        log = runner.invoke(cli, ["audit", "--json", *args])
        actions = [json.loads(line)["action"] for line in log.output.splitlines()]
        assert actions[:4] == ["erasure", "erasure", "traces.deleted", "retention.removed"]
        assert [e["action"] for e in client.audit_log(action="erasure", page_size=1)] == [
            "erasure",
            "erasure",
        ]
