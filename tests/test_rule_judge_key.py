"""A rule's server-side judge never carries the server's judge key to a URL the rule chose.

Two real OpenAI-compatible fakes on 127.0.0.1: the configured judge endpoint (``judge_base_url``
with ``judge_api_key``) and another one a rule points its judge at. Each records the
Authorization header of every request.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from tests.fake_llm import FakeLLM, completion
from tests.test_rules_flow import post_runs, project_id, run_items

from goldloop.cli.main import cli
from goldloop.services.rule_evaluators import same_endpoint
from goldloop.settings import Settings, load_settings
from goldloop.workers.service_loops import Workers

CONFIGURED_KEY = "sk-configured-judge-key"
ENV_KEY = "sk-process-environment-key"


def _llm() -> FakeLLM:
    return FakeLLM(lambda body: (200, completion('{"reasoning": "fine", "score": 1}'), {}))


@pytest.fixture
def configured() -> Iterator[FakeLLM]:
    llm = _llm()
    yield llm
    llm.stop()


@pytest.fixture
def elsewhere() -> Iterator[FakeLLM]:
    llm = _llm()
    yield llm
    llm.stop()


@pytest.fixture
def settings(settings: Settings, configured: FakeLLM) -> Settings:
    return dataclasses.replace(
        settings,
        judge_base_url=configured.url,
        judge_model="judge-1",
        judge_api_key=CONFIGURED_KEY,
    )


@pytest.fixture
def workers(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    # The process environment holds keys too: a server-side judge must read neither.
    monkeypatch.setenv("GOLDLOOP_JUDGE_API_KEY", ENV_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    w = Workers(app.state.ctx)
    yield w
    w.stop()


def _rule(pid: str, judge_config: dict[str, object]) -> dict[str, object]:
    return {
        "project_id": pid,
        "name": "judge everything",
        "actions": [
            {
                "type": "evaluate",
                "evaluators": [{"name": "regex", "config": {"key": "ok", "pattern": "a"}}],
                "judge": {"name": "llm_judge", "config": {"cache": False, **judge_config}},
                "judge_mode": "always",
            }
        ],
    }


def _auth(llm: FakeLLM) -> list[str | None]:
    return [h.get("authorization") for h in llm.headers]


async def test_a_judge_pointed_elsewhere_never_gets_the_configured_key(
    client: httpx.AsyncClient, workers: Workers, configured: FakeLLM, elsewhere: FakeLLM
) -> None:
    pid = await project_id(client)
    config = {"base_url": elsewhere.url, "model": "m"}
    r = await client.post("/api/v1/rules", json=_rule(pid, config))
    assert r.status_code == 201, r.text
    await post_runs(client, run_items(2))
    workers.flush()
    assert elsewhere.calls == 2
    assert _auth(elsewhere) == [None, None]  # no key at all: not the configured, not the env one
    assert configured.calls == 0


async def test_a_judge_elsewhere_sends_only_its_own_key(
    client: httpx.AsyncClient, workers: Workers, elsewhere: FakeLLM
) -> None:
    pid = await project_id(client)
    config = {"base_url": elsewhere.url, "model": "m", "api_key": "sk-the-rules-own"}
    assert (await client.post("/api/v1/rules", json=_rule(pid, config))).status_code == 201
    await post_runs(client, run_items(1))
    workers.flush()
    assert _auth(elsewhere) == ["Bearer sk-the-rules-own"]


@pytest.mark.parametrize("how", ["no base_url", "same base_url"])
async def test_the_configured_endpoint_gets_the_configured_key(
    client: httpx.AsyncClient, workers: Workers, configured: FakeLLM, how: str
) -> None:
    pid = await project_id(client)
    config = {} if how == "no base_url" else {"base_url": configured.url + "/", "model": "j-2"}
    assert (await client.post("/api/v1/rules", json=_rule(pid, config))).status_code == 201
    await post_runs(client, run_items(1))
    workers.flush()
    assert _auth(configured) == [f"Bearer {CONFIGURED_KEY}"]
    history = (await client.get("/api/v1/feedback", params={"limit": 10})).json()["items"]
    assert {f["key"] for f in history} == {"ok", "correctness"}


async def test_rules_cannot_set_the_judge_environment_or_a_file_cache(
    client: httpx.AsyncClient,
) -> None:
    pid = await project_id(client)
    env = {"environ": {"GOLDLOOP_JUDGE_API_KEY": "x"}}
    r = await client.post("/api/v1/rules", json=_rule(pid, env))
    assert r.status_code == 400
    assert "'environ' is set by the server" in r.json()["error"]["message"]
    r = await client.post("/api/v1/rules", json=_rule(pid, {"cache": "/tmp/judge-cache.jsonl"}))
    assert r.status_code == 400
    assert "file cache" in r.json()["error"]["message"]


def test_same_endpoint_ignores_only_case_default_ports_and_a_trailing_slash() -> None:
    assert same_endpoint("HTTPS://Judge.example/v1/", "https://judge.example:443/v1")
    assert not same_endpoint("https://judge.example/v1", "http://judge.example/v1")
    assert not same_endpoint("https://judge.example/v1", "https://judge.example.evil/v1")
    assert not same_endpoint("https://judge.example/v1", "https://judge.example/v2")
    assert not same_endpoint("https://judge.example/v1", "https://judge.example:8443/v1")
    assert not same_endpoint("https://judge.example/v1", "https://x@judge.example/v1")


def test_the_judge_key_is_masked_everywhere_it_could_show() -> None:
    env = {"GOLDLOOP_JUDGE_API_KEY": CONFIGURED_KEY, "GOLDLOOP_JUDGE_BASE_URL": "http://j/v1"}
    s = load_settings({}, environ=env)
    assert s.judge_api_key == CONFIGURED_KEY
    assert CONFIGURED_KEY not in repr(s)
    assert s.shown("judge_api_key") == "***"
    out = CliRunner().invoke(cli, ["settings"], env=env)
    assert out.exit_code == 0, out.output
    assert "judge_api_key = ***" in out.output
    assert CONFIGURED_KEY not in out.output


def test_judge_results_are_cached_per_workspace(app: FastAPI, elsewhere: FakeLLM) -> None:
    """The same text judged again in one workspace is a cache hit; in another workspace it goes
    to the judge: one workspace's verdicts never answer another's."""
    from goldloop.evaluation import RunData
    from goldloop.services import rule_evaluators

    ctx = app.state.ctx
    spec = {"name": "llm_judge", "config": {"base_url": elsewhere.url, "model": "m"}}
    run = RunData(inputs={"q": "cancel?"}, outputs={"answer": "full refund"}, id="r1")
    a, b = (f"ws-{name}-{uuid.uuid4().hex}" for name in "ab")
    for workspace, calls_after in ((a, 1), (a, 1), (b, 2), (b, 2)):
        [result] = rule_evaluators.evaluate(ctx, spec, run, workspace)
        assert result.score == 1
        assert elsewhere.calls == calls_after, workspace
    off = {"name": "llm_judge", "config": {"base_url": elsewhere.url, "model": "m", "cache": False}}
    rule_evaluators.evaluate(ctx, off, run, a)
    assert elsewhere.calls == 3


def test_a_rule_judge_never_quotes_its_endpoints_answer(app: FastAPI) -> None:
    """A rule's judge URL is the rule author's choice and its errors land in rule history, so
    the server keeps the status, never the answer; a local judge still quotes it."""
    from goldloop.evaluation import RunData, build_evaluator, evaluate_run
    from goldloop.services import rule_evaluators

    inside = FakeLLM(lambda body: (403, {"internal": "db password hunter2"}, {}))
    try:
        run = RunData(inputs={"q": "x"}, outputs={"answer": "y"}, id="r1")
        config = {"base_url": inside.url, "model": "m", "cache": False}
        spec = {"name": "llm_judge", "config": config}
        [served] = rule_evaluators.evaluate(app.state.ctx, spec, run, f"ws-{uuid.uuid4().hex}")
        assert served.error is not None
        assert "answered 403" in served.error
        assert "hunter2" not in served.error
        [local] = evaluate_run(build_evaluator("llm_judge", config), run)
        assert local.error is not None
        assert "hunter2" in local.error
        assert inside.calls == 2
    finally:
        inside.stop()
