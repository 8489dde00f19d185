"""Judge alignment through the API on SQLite and PostgreSQL: a seeded judge against seeded human
labels, per judge identity, one rule's scores, the corrected pass rate, isolation and bad input."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from typing import Any

import httpx
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi import FastAPI

from goldloop.cli.main import cli
from goldloop.client import Client
from goldloop.services import auth
from goldloop.settings import Settings
from goldloop.store.schema import workspaces
from live_api import live_api

T0 = int(time.time() * 1_000_000) - 3_600_000_000
PROJECT = "judge-align"


def _runs(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"ja-{i}",
            "trace_id": f"ja-{i}",
            "name": "answer",
            "kind": "chain",
            "start_time": T0 + i * 1_000_000,
            "end_time": T0 + i * 1_000_000 + 500_000,
            "inputs": {"q": i},
            "outputs": {"a": i},
        }
        for i in range(n)
    ]


async def _feedback(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
    async def post(item: dict[str, Any]) -> None:
        r = await client.post("/api/v1/feedback", json=item)
        assert r.status_code in (200, 201), r.text

    for start in range(0, len(items), 25):  # in order across chunks: newest is last
        await asyncio.gather(*(post(item) for item in items[start : start + 25]))


async def _seed(client: httpx.AsyncClient) -> dict[str, Any]:
    """100 labelled runs (truth 70% pass) and 100 judged-only runs; the judge has TPR 0.9 and
    TNR 0.8; runs 0-49 were judged by model m1, 50-99 by m2; a second rule scores run 0 too."""
    r = await client.post("/api/v1/runs/batch", json={"project": PROJECT, "runs": _runs(200)})
    assert r.status_code == 202, r.text
    rng = random.Random(42)
    truth = [rng.random() < 0.7 for _ in range(200)]
    judge = [rng.random() < (0.9 if t else 0.2) for t in truth]
    items = []
    for i in range(200):
        info = {"rule_id": "rule-a", "evaluator": "llm_judge", "prompt_hash": "p1"}
        info["model"] = "m1" if i < 50 or i >= 100 else "m2"
        items.append(
            {
                "run_id": f"ja-{i}",
                "key": "refund_policy",
                "score": judge[i],
                "source": "online-evaluator",
                "source_info": info,
            }
        )
        if i < 100:
            items.append(
                {"run_id": f"ja-{i}", "key": "refund_policy", "score": truth[i], "source": "human"}
            )
    # Another rule's judge disagrees with everything on run 0; an API script labels run 1.
    items.append(
        {
            "run_id": "ja-0",
            "key": "refund_policy",
            "score": not judge[0],
            "source": "online-evaluator",
            "source_info": {"rule_id": "rule-b", "evaluator": "other", "model": "x"},
        }
    )
    items.append({"run_id": "ja-1", "key": "refund_policy", "score": not truth[1], "source": "api"})
    await _feedback(client, items)
    return {"truth": truth, "judge": judge}


async def test_a_seeded_judge_against_human_labels(app: FastAPI, client: httpx.AsyncClient) -> None:
    seeded = await _seed(client)
    truth, judge = seeded["truth"], seeded["judge"]
    r = await client.get(
        "/api/v1/judge-alignment", params={"judge_key": "refund_policy", "rule_id": "rule-a"}
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["n"] == 100
    assert doc["kind"] == "binary"
    assert doc["judged_runs"] == 200
    assert doc["labelled_runs"] == 100  # the api-sourced label is not a person's by default
    pp = sum(1 for i in range(100) if judge[i] and truth[i])
    fp = sum(1 for i in range(100) if not judge[i] and truth[i])
    pf = sum(1 for i in range(100) if judge[i] and not truth[i])
    ff = sum(1 for i in range(100) if not judge[i] and not truth[i])
    figures = doc["alignment"]
    assert figures["confusion"] == {
        "judge_pass_human_pass": pp,
        "judge_fail_human_pass": fp,
        "judge_pass_human_fail": pf,
        "judge_fail_human_fail": ff,
    }
    assert figures["tpr"]["value"] == pp / (pp + fp)
    assert figures["tpr"]["n"] == pp + fp
    assert figures["tnr"]["value"] == ff / (ff + pf)
    for name in ("tpr", "tnr", "kappa", "accuracy"):
        est = figures[name]
        assert est["low"] <= est["value"] <= est["high"], name
    assert doc["disagreements_total"] == fp + pf
    first = doc["disagreements"][0]
    assert first["run_id"].startswith("ja-")
    assert first["trace_id"] == first["run_id"]
    # one entry per judge identity, m1 and m2, each with its own n
    models = {j["model"]: j["alignment"]["n"] for j in doc["by_judge"]}
    assert models == {"m1": 50, "m2": 50}
    # the judge's raw pass rate on all 200 judged runs, and the corrected one beside it
    rate = doc["pass_rate"]
    assert rate["raw"]["value"] == sum(judge) / 200
    assert rate["corrected"]["value"] is not None
    assert rate["corrected"]["low"] <= rate["corrected"]["value"] <= rate["corrected"]["high"]
    assert abs(rate["corrected"]["value"] - sum(truth) / 200) < abs(
        rate["raw"]["value"] - sum(truth) / 200
    )

    # Without the rule filter, run 0's newest judge score is rule-b's opposite one.
    every = await client.get("/api/v1/judge-alignment", params={"judge_key": "refund_policy"})
    assert every.json()["disagreements_total"] == fp + pf + (1 if judge[0] == truth[0] else -1)
    with_api = await client.get(
        "/api/v1/judge-alignment",
        params={"judge_key": "refund_policy", "rule_id": "rule-a", "include_api": "true"},
    )
    assert with_api.json()["labelled_runs"] == 100  # run 1: the newer api label replaces it
    project = await client.get("/api/v1/projects", params={"name": PROJECT})
    pid = project.json()["items"][0]["id"]
    scoped = await client.get(
        "/api/v1/judge-alignment",
        params={"judge_key": "refund_policy", "rule_id": "rule-a", "project_id": pid},
    )
    assert scoped.json()["n"] == 100


async def test_alignment_is_per_workspace_and_refuses_bad_input(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _seed(client)
    ctx = app.state.ctx
    other = auth.create_key(ctx, auth.create_workspace(ctx, "other").id, "k").secret
    member = auth.create_key(ctx, ctx.db.read(lambda c: _default_ws(c)), "m", role="member")
    params = {"judge_key": "refund_policy"}
    theirs = await client.get(
        "/api/v1/judge-alignment", params=params, headers={"x-api-key": other}
    )
    assert theirs.status_code == 200
    assert theirs.json()["n"] == 0
    assert theirs.json()["alignment"] is None
    read = await client.get(
        "/api/v1/judge-alignment", params=params, headers={"x-api-key": member.secret}
    )
    assert read.status_code == 200
    assert read.json()["n"] == 100
    anonymous = await client.get(
        "/api/v1/judge-alignment", params=params, headers={"x-api-key": "gl_nope"}
    )
    assert anonymous.status_code == 401
    for bad in (
        {},
        {"judge_key": "k", "confidence": "2"},
        {"judge_key": "k", "threshold": "high"},
        {"judge_key": "k", "since": "yesterday"},
        {"judge_key": "k", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    ):
        r = await client.get("/api/v1/judge-alignment", params=bad)
        assert 400 <= r.status_code < 500, (bad, r.status_code)
    missing = await client.get(
        "/api/v1/judge-alignment", params={"judge_key": "k", "project_id": "nope"}
    )
    assert missing.status_code == 404


def _default_ws(conn: Any) -> str:
    return str(
        conn.execute(sa.select(workspaces.c.id).where(workspaces.c.name == "default")).scalar_one()
    )


def test_the_cli_and_client_report_alignment(settings: Settings) -> None:
    with live_api(settings) as live, Client(live.endpoint, live.key) as client:
        runs = _runs(12)
        assert client.ingest_runs(runs, project=PROJECT) == 12
        with httpx.Client(base_url=live.endpoint, headers={"x-api-key": live.key}) as api:
            for i in range(12):
                human = i % 3 != 0  # 8 pass, 4 fail
                judge = human if i not in (1, 2) else not human  # two false fails
                for score, source in ((judge, "online-evaluator"), (human, "human")):
                    r = api.post(
                        "/api/v1/feedback",
                        json={
                            "run_id": f"ja-{i}",
                            "key": "policy",
                            "score": score,
                            "source": source,
                            "source_info": {"model": "judge-1"},
                        },
                    )
                    assert r.status_code in (200, 201), r.text
        doc = client.judge_alignment("policy")
        assert doc["n"] == 12
        assert doc["alignment"]["tpr"]["value"] == 6 / 8
        assert doc["alignment"]["tnr"]["value"] == 1.0

        def run_cli(*extra: str) -> Any:
            base = ["judge-alignment", "--endpoint", live.endpoint, "--api-key", live.key]
            return CliRunner().invoke(cli, [*base, "--judge-key", "policy", *extra])

        out = run_cli()
        assert out.exit_code == 0, out.output
        assert "12 runs scored by both" in out.output
        assert "TPR       75.0% [" in out.output
        assert "2 disagreement(s)" in out.output
        as_json = run_cli("--json")
        assert json.loads(as_json.output)["alignment"]["confusion"]["judge_fail_human_pass"] == 2
        missing = run_cli("--project-id", "nope")
        assert missing.exit_code != 0
        assert "no project" in missing.output


async def test_an_experiments_llm_judge_shows_its_alignment_on_the_experiment_page(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """The experiment page carries the alignment card of each key an LLM judge scored in it
    (agreement over every run both the judge and people scored), and none for a code
    evaluator's key."""
    await _seed(client)  # people and the judge on refund_policy, in production
    made = await client.post("/api/v1/experiments", json={"name": "judge-exp"})
    assert made.status_code == 201, made.text
    exp_id = made.json()["id"]
    runs = [{**run, "project": "judge-exp"} for run in _runs(1)]
    runs[0]["id"] = runs[0]["trace_id"] = "exp-run-0"
    r = await client.post("/api/v1/runs/batch", json={"runs": runs})
    assert r.status_code == 202, r.text
    judged = {"evaluator": "llm_judge", "judge_model": "m1", "prompt_hash": "p1"}
    await _feedback(
        client,
        [
            {
                "run_id": "exp-run-0",
                "key": "refund_policy",
                "score": True,
                "source": "model",
                "source_info": judged,
            },
            {
                "run_id": "exp-run-0",
                "key": "exact_match",
                "score": 1.0,
                "source": "model",
                "source_info": {"evaluator": "exact_match"},
            },
        ],
    )
    page = await browser.get(f"/experiments/{exp_id}")
    assert page.status_code == 200, page.text
    cards = re.findall(r'<h2>Judge alignment · <span class="mono">([^<]+)</span>', page.text)
    assert cards == ["refund_policy"]  # exact_match is a code evaluator: no card
    # the card's figures are the API's for the judge key, over every run both scored
    doc = (
        await client.get("/api/v1/judge-alignment", params={"judge_key": "refund_policy"})
    ).json()
    assert doc["n"] == 100
    assert "100 runs scored by both the judge and people" in page.text
    shown = f"{doc['alignment']['kappa']['value']:.4g}"  # as the dashboard writes a score
    assert f"<th>Cohen's kappa</th><td>{shown} " in page.text, shown
