"""The Python API client and `goldloop datasets export|import` against a real server socket."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from goldloop.cli.main import cli
from goldloop.client import ApiError, Client
from goldloop.settings import Settings
from live_api import live_api


def test_the_refund_loop_through_the_client(settings: Settings) -> None:
    with live_api(settings) as live, Client(live.endpoint, live.key) as client:
        ingested = httpx.post(
            f"{live.endpoint}/api/v1/runs/batch",
            headers={"x-api-key": live.key},
            json={
                "project": "agent-support",
                "runs": [
                    {
                        "id": "run-1",
                        "trace_id": "trace-1",
                        "name": "agent",
                        "inputs": {"question": "Refundable?"},
                        "outputs": {"label": "refundable"},
                    }
                ],
            },
        )
        assert ingested.status_code == 202
        client.declare_feedback_key("correctness", "continuous", min=0, max=1)
        with pytest.raises(ApiError) as bad:
            client.create_feedback("run-1", key="correctness", score=True)
        assert bad.value.status == 400
        assert "must be a number, not a boolean" in bad.value.message
        fb = client.create_feedback(
            "run-1",
            key="correctness",
            score=0,
            correction={"label": "non-refundable"},
            source="human",
            feedback_id="fb-1",
        )
        assert (
            client.create_feedback(
                "run-1",
                key="correctness",
                score=0,
                correction={"label": "non-refundable"},
                source="human",
                feedback_id="fb-1",
            )
            == fb
        )
        assert fb["trace_id"] == "trace-1"
        assert [f["id"] for f in client.list_feedback(has_correction=True)] == ["fb-1"]
        assert client.update_feedback("fb-1", comment="ticket T-88")["comment"] == "ticket T-88"
        exported = client.export_feedback(key="correctness")
        assert [json.loads(x)["id"] for x in exported.splitlines()] == ["fb-1"]

        client.create_dataset("support-golden")
        seed = client.create_example("support-golden", {"question": "Pets?"}, {"label": "no"})
        assert seed["version"] == 1
        client.tag_version("support-golden", "baseline")
        added = client.add_runs_to_dataset("support-golden", ["run-1"], prefer_correction=True)
        assert added["version"] == 2
        [new] = added["added"]
        example = client.get_example("support-golden", new["example_id"])
        assert example["outputs"] == {"label": "non-refundable"}
        assert example["lineage"]["feedback_ids"] == ["fb-1"]
        baseline = list(client.list_examples("support-golden", as_of="baseline"))
        assert [e["id"] for e in baseline] == [seed["id"]]
        assert len(list(client.list_examples("support-golden", page_size=1))) == 2
        diff = client.diff_versions("support-golden", "baseline")
        assert diff["added"] == [new["example_id"]]
        versions = list(client.list_versions("support-golden"))
        assert [v["version"] for v in versions] == [2, 1, 0]
        assert client.list_tags("support-golden") == {"baseline": 1}

        data = client.export_dataset("support-golden", format="parquet")
        client.create_dataset("copy")
        result = client.import_dataset("copy", data, format="parquet")
        assert len(result["added"]) == 2
        with pytest.raises(ApiError) as missing:
            client.get_dataset("nope")
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        client.delete_feedback("fb-1")
        client.delete_dataset("copy")
        assert [d["name"] for d in client.list_datasets()] == ["support-golden"]


def test_cli_export_and_import(settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    with live_api(settings) as live, Client(live.endpoint, live.key) as client:
        client.create_dataset("golden")
        client.create_examples(
            "golden",
            [{"inputs": {"q": i}, "outputs": {"a": i}, "splits": ["test"]} for i in range(5)],
        )
        env = {"GOLDLOOP_ENDPOINT": live.endpoint, "GOLDLOOP_API_KEY": live.key}
        out = tmp_path / "golden.csv"
        r = runner.invoke(cli, ["datasets", "export", "golden", "-o", str(out)], env=env)
        assert r.exit_code == 0, r.output
        assert out.read_text().startswith("id,inputs,outputs,metadata,splits,lineage\n")

        r = runner.invoke(
            cli,
            [
                "datasets",
                "import",
                "golden-copy",
                str(out),
                "--create",
                "--message",
                "from csv",
                "--endpoint",
                live.endpoint,
                "--api-key",
                live.key,
            ],
        )
        assert r.exit_code == 0, r.output
        assert "golden-copy: version 1 (added 5, updated 0, unchanged 0)" in r.output
        assert next(client.list_versions("golden-copy"))["message"] == "from csv"

        r = runner.invoke(cli, ["datasets", "export", "golden-copy", "--as-of", "1"], env=env)
        lines = [json.loads(x) for x in io.StringIO(r.stdout).read().splitlines()]
        assert [x["inputs"] for x in lines] == [{"q": i} for i in range(5)]

        r = runner.invoke(cli, ["datasets", "list"], env=env)
        assert "golden-copy\tv1\t5 examples" in r.output

        r = runner.invoke(cli, ["datasets", "export", "nope"], env=env)
        assert r.exit_code == 1
        assert "error: no dataset with id or name 'nope' (404 not_found)" in r.output
        r = runner.invoke(
            cli, ["datasets", "export", "golden"], env={**env, "GOLDLOOP_API_KEY": "x"}
        )
        assert r.exit_code == 1
        assert "unknown or revoked API key" in r.output
        r = runner.invoke(
            cli, ["datasets", "export", "golden", "--endpoint", "http://127.0.0.1:9"], env=env
        )
        assert r.exit_code == 1
        assert "cannot reach the server" in r.output
