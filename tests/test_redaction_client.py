"""Client-side redaction (the SDK hook and ``Client(redact=...)``) and the `goldloop redaction`
commands, against a real server socket whose own redaction is off: what the server stores was
redacted in the application."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

import goldloop
import sdk_state
from goldloop.cli.main import cli
from goldloop.client import ApiError, Client
from goldloop.sdk.redaction import RunRedactor
from goldloop.settings import Settings
from live_api import live_api

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
CONFIG = {"builtins": ["email", "card"], "rules": [{"name": "ticket", "pattern": r"TKT-\d+"}]}


@pytest.fixture
def sdk_off() -> Iterator[None]:
    sdk_state.reset_sdk(2.0)
    yield
    sdk_state.reset_sdk(2.0)


def test_the_sdk_redacts_before_sending(settings: Settings, sdk_off: None) -> None:
    redact = RunRedactor(CONFIG)
    with live_api(settings) as live, Client(live.endpoint, live.key, redact=CONFIG) as client:
        assert client.get_redaction()["active"] is False  # the server redacts nothing
        goldloop.configure(
            tracing=True, endpoint=live.endpoint, api_key=live.key, process_run=redact.run
        )

        @goldloop.traced
        def answer(question: str) -> str:
            return f"sent to {EMAIL} for TKT-991"

        with goldloop.trace("turn") as turn:
            answer(f"my card is {CARD}")
        assert goldloop.flush(30)
        trace = client.get_trace(turn.trace_id)
        sent = json.dumps(trace)
        assert EMAIL not in sent
        assert "4111" not in sent
        assert "TKT-991" not in sent
        (child,) = [r for r in trace["runs"] if r["name"] == "answer"]
        assert child["inputs"] == {"question": "my card is <CARD>"}
        assert child["outputs"] == {"output": "sent to <EMAIL> for <TICKET>"}
        assert dict(redact.counts.by_detector) == {"card": 1, "email": 1, "ticket": 1}

        run = {"id": "c-1", "trace_id": "c-1", "name": "x", "inputs": {"q": EMAIL}}
        assert client.ingest_runs([run], project="client") == 1
        assert client.get_run("c-1")["inputs"] == {"q": "<EMAIL>"}
        fb = client.create_feedback("c-1", "note", comment=f"card {CARD}", correction={"a": EMAIL})
        assert (fb["comment"], fb["correction"]) == ("card <CARD>", {"a": "<EMAIL>"})
        fb = client.update_feedback(fb["id"], comment=f"TKT-5 {EMAIL}")
        assert fb["comment"] == "<TICKET> <EMAIL>"
        client.create_dataset("golden")
        example = client.create_example(
            "golden", {"q": EMAIL}, {"a": CARD}, metadata={"t": "TKT-1"}
        )
        assert (example["inputs"], example["outputs"]) == ({"q": "<EMAIL>"}, {"a": "<CARD>"})
        assert example["metadata"] == {"t": "<TICKET>"}
        client.update_example("golden", example["id"], outputs={"a": EMAIL})
        assert client.get_example("golden", example["id"])["outputs"] == {"a": "<EMAIL>"}


def test_redaction_commands(settings: Settings) -> None:
    with live_api(settings) as live:
        args = ["--endpoint", live.endpoint, "--api-key", live.key]
        runner = CliRunner()
        out = runner.invoke(
            cli, ["redaction", "set", "--builtins", "email,ip", "--rule", r"order=ORD-\d+", *args]
        )
        assert out.exit_code == 0, out.output
        shown = json.loads(runner.invoke(cli, ["redaction", "show", *args]).output)
        assert shown["builtins"] == ["email", "ip"]
        assert shown["rules"] == [
            {"name": "order", "pattern": r"ORD-\d+", "placeholder": "<ORDER>"}
        ]
        preview = runner.invoke(cli, ["redaction", "preview", f"{EMAIL} ORD-7 10.0.0.1", *args])
        assert json.loads(preview.output)["value"] == "<EMAIL> <ORDER> <IP>"
        bad = runner.invoke(cli, ["redaction", "set", "--rule", "x=(a", *args])
        assert bad.exit_code != 0
        assert "invalid regular expression" in bad.output
        assert runner.invoke(cli, ["redaction", "set", "--rule", "nope", *args]).exit_code == 2
        done = runner.invoke(cli, ["redaction", "clear", *args])
        assert done.exit_code == 0, done.output
        with Client(live.endpoint, live.key) as client, pytest.raises(ApiError) as gone:
            client.delete_redaction(project="no-such-project")
        assert gone.value.status == 404
