"""Rules and alerts through the Python client and the `goldloop rules|alerts` CLI, against a
real server socket."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from goldloop.cli.main import cli
from goldloop.client import ApiError, Client
from goldloop.settings import Settings
from live_api import live_api


def _runs(endpoint: str, key: str, n: int) -> None:
    items = []
    for i in range(n):
        rid = uuid.uuid4().hex
        items.append(
            {
                "id": rid,
                "trace_id": rid,
                "name": "agent",
                "start_time": 1_790_000_000_000_000 + i,
                "end_time": 1_790_000_001_000_000 + i,
                "outputs": {"answer": "ok"},
            }
        )
    r = httpx.post(
        f"{endpoint}/api/v1/runs/batch",
        headers={"x-api-key": key},
        json={"project": "agent-support", "runs": items},
    )
    assert r.status_code == 202


def test_rules_and_alerts_through_the_client_and_cli(settings: Settings, tmp_path: Path) -> None:
    with live_api(settings) as live, Client(live.endpoint, live.key) as client:
        _runs(live.endpoint, live.key, 3)
        pid = httpx.get(
            f"{live.endpoint}/api/v1/projects",
            headers={"x-api-key": live.key},
            params={"name": "agent-support"},
        ).json()["items"][0]["id"]
        rule = client.create_rule(
            pid,
            "score everything",
            [
                {
                    "type": "evaluate",
                    "evaluators": [{"name": "regex", "config": {"key": "ok", "pattern": "ok"}}],
                }
            ],
        )
        assert client.get_rule(rule["id"])["name"] == "score everything"
        assert [r["id"] for r in client.list_rules(pid)] == [rule["id"]]
        assert client.set_rule_enabled(rule["id"], False)["enabled"] is False
        with pytest.raises(ApiError) as bad:
            client.create_rule(pid, "bad", [{"type": "evaluate", "evaluators": [{"name": "nope"}]}])
        assert bad.value.status == 400
        assert "unknown evaluator" in bad.value.message

        channel = client.create_channel("hook", "webhook", "http://127.0.0.1:9/hook")
        alert = client.create_alert_rule(
            pid,
            "errors",
            {"kind": "error_rate"},
            {"type": "threshold", "op": ">", "value": 0.1},
            channel_ids=[channel["id"]],
        )
        assert client.get_alert_rule(alert["id"])["state"] == "ok"
        assert client.alert_events(alert["id"]) == []
        with pytest.raises(ApiError) as not_firing:
            client.acknowledge_alert(alert["id"], "me")
        assert not_firing.value.status == 409

        runner = CliRunner()
        env = {"GOLDLOOP_ENDPOINT": live.endpoint, "GOLDLOOP_API_KEY": live.key}
        listed = runner.invoke(cli, ["rules", "list"], env=env)
        assert listed.exit_code == 0, listed.output
        assert "paused" in listed.output
        assert "score everything" in listed.output
        enabled = runner.invoke(cli, ["rules", "enable", rule["id"]], env=env)
        assert f"{rule['id']} enabled" in enabled.output
        spec = tmp_path / "rule.json"
        spec.write_text(
            json.dumps(
                {
                    "project_id": pid,
                    "name": "hook errors",
                    "filter": "error",
                    "actions": [{"type": "webhook", "url": "http://127.0.0.1:9/"}],
                }
            )
        )
        made = runner.invoke(cli, ["rules", "create", str(spec)], env=env)
        assert made.exit_code == 0, made.output
        new_id = made.stdout.strip()  # only the id on stdout, for scripts
        assert "webhook signing secret (shown once" in made.stderr
        assert "whsec_" in made.stderr
        shown = json.loads(runner.invoke(cli, ["rules", "show", new_id], env=env).output)
        assert shown["filter"] == "error"
        back = runner.invoke(
            cli,
            [
                "rules",
                "backfill",
                new_id,
                "--start",
                "2026-01-01T00:00:00Z",
                "--end",
                "2027-01-01T00:00:00Z",
            ],
            env=env,
        )
        assert back.output.strip() == "scanned 0 runs, queued 0"  # none of the three errored
        bad_filter = tmp_path / "bad.json"
        bad_filter.write_text(
            json.dumps(
                {
                    "project_id": pid,
                    "name": "x",
                    "filter": "latency >",
                    "actions": [{"type": "webhook", "url": "http://h/"}],
                }
            )
        )
        refused = runner.invoke(cli, ["rules", "create", str(bad_filter)], env=env)
        assert refused.exit_code == 1
        assert "invalid filter at position" in refused.output
        assert runner.invoke(cli, ["rules", "delete", new_id], env=env).exit_code == 0
        assert new_id not in runner.invoke(cli, ["rules", "list"], env=env).output
        alerts = runner.invoke(cli, ["alerts", "list"], env=env)
        assert "error_rate" in alerts.output
        assert "not evaluated yet" in alerts.output
        unknown = runner.invoke(cli, ["rules", "show", "nope"], env={**env})
        assert unknown.exit_code == 1
        assert "no rule with id 'nope'" in unknown.output
