"""`goldloop feedback-keys ...` and the client's score-config and history calls against a real
server socket."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from goldloop.cli.main import cli
from goldloop.client import ApiError, Client
from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import live_server


def test_feedback_keys_commands_and_client_calls(settings: Settings) -> None:
    with live_server(settings) as live, Client(live.base, live.key) as client:
        runner = CliRunner()
        env = {"GOLDLOOP_ENDPOINT": live.base, "GOLDLOOP_API_KEY": live.key}
        declared = runner.invoke(
            cli,
            [
                *("feedback-keys", "declare", "tone", "--kind", "categorical"),
                *("--category", "rude=0", "--category", "warm=1"),
                *("--rubric", "warm: friendly", "--correction-expected"),
            ],
            env=env,
        )
        assert declared.exit_code == 0, declared.output
        assert declared.output.strip() == "tone  categorical  rude=0, warm=1"
        quality = runner.invoke(
            cli,
            ["feedback-keys", "declare", "quality", "--kind", "continuous", "--min", "0"],
            env=env,
        )
        assert quality.exit_code == 0, quality.output
        listed = runner.invoke(cli, ["feedback-keys", "list"], env=env)
        assert listed.output.splitlines() == [
            "quality  continuous  [0, inf]  ",
            "tone  categorical  rude=0, warm=1    correction expected",
        ]
        shown = json.loads(runner.invoke(cli, ["feedback-keys", "show", "tone"], env=env).output)
        assert shown["rubric"] == "warm: friendly"
        assert shown["categories"] == [
            {"label": "rude", "score": 0.0},
            {"label": "warm", "score": 1.0},
        ]
        bad = runner.invoke(
            cli,
            ["feedback-keys", "declare", "x", "--kind", "categorical", "--category", "a=high"],
            env=env,
        )
        assert bad.exit_code == 2
        assert "write LABEL or LABEL=SCORE with a number" in bad.output
        refused = runner.invoke(
            cli,
            ["feedback-keys", "declare", "x", "--kind", "continuous", "--min", "2", "--max", "1"],
            env=env,
        )
        assert refused.exit_code != 0
        assert "min (2.0) is greater than max (1.0)" in refused.output

        fb = client.create_feedback("run-1", key="tone", value="warm")
        assert fb["score"] == 1.0
        client.update_feedback(fb["id"], value="rude")
        client.delete_feedback(fb["id"])
        history = client.feedback_history(fb["id"])
        assert [(h["action"], h["old"]["value"]) for h in history] == [
            ("edited", "warm"),
            ("deleted", "rude"),
        ]

        ws = auth.workspace_by_name(live.app.state.ctx, auth.DEFAULT_WORKSPACE)
        member = auth.create_key(live.app.state.ctx, ws.id, "reviewer").secret
        as_member = runner.invoke(
            cli,
            ["feedback-keys", "delete", "tone"],
            env={**env, "GOLDLOOP_API_KEY": member},
        )
        assert as_member.exit_code != 0
        assert "admin API key" in as_member.output
        with Client(live.base, member) as reader, pytest.raises(ApiError) as denied:
            reader.declare_feedback_key("tone", "boolean")
        assert denied.value.status == 403
        gone = runner.invoke(cli, ["feedback-keys", "delete", "tone"], env=env)
        assert gone.output.strip() == "tone deleted"
        assert [k["key"] for k in client.list_feedback_keys()] == ["quality"]
