"""Issue 10's acceptance: `goldloop demo --exit` closes the whole loop, and every step's outcome
is then read back through the API of a server restarted on the demo's data dir."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fake_llm import FakeLLM, completion, user_text
from tests.test_serve import SRC, start_server

from goldloop.demo import agent

pytestmark = pytest.mark.slow


def test_demo_closes_the_loop(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "goldloop", "demo", "--exit", "--port", "0"),
            *("--data-dir", str(data_dir), "--seed", "11", "--timeout", "300"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("1. Traffic", "2. Online evaluation", "3. Alert", "4. Correction", "6. Gate"):
        assert step in done.stdout
    assert "http://127.0.0.1:" in done.stdout
    summary = json.loads((data_dir / "demo.json").read_text())

    requests = agent.guest_requests(11, 60)
    wrong = [r for r in requests if agent.BOOKINGS[r.booking_id]["rate"] == "SUMMER"]
    wrong = [r for r in wrong if "cancel" in r.question.lower() or "refund" in r.question.lower()]

    server, base = start_server(data_dir, "--no-workers")
    try:
        key = (data_dir / "admin-key").read_text().strip()
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=60) as api:
            # (a) the traffic is stored: one root run per guest request
            runs = api.get(
                "/api/v1/runs",
                params={"project": "agent-support", "filter": "root", "limit": 1000},
            ).json()["items"]
            assert len(runs) == len(requests) == 60

            # (b) the online check scored every answer once, failing exactly the wrong ones
            scores = api.get(
                "/api/v1/feedback",
                params={"key": "refund_policy_ok", "source": "online-evaluator", "limit": 1000},
            ).json()["items"]
            assert sorted(f["run_id"] for f in scores) == sorted(r["id"] for r in runs)
            failed = {f["run_id"] for f in scores if f["score"] == 0}
            assert len(failed) == len(wrong) > 0
            full_refund = {r["id"] for r in runs if "full refund" in r["outputs"]["answer"]}
            on_summer = {
                r["id"] for r in runs if r["inputs"]["booking_id"] in {"B-1003", "B-1004", "B-1007"}
            }
            assert failed == full_refund & on_summer

            # (c) the alert fired once and its one notification was delivered
            events = api.get(f"/api/v1/alert-rules/{summary['alert_rule_id']}/events").json()
            assert [e["kind"] for e in events] == ["fired"]
            deliveries = api.get("/api/v1/deliveries").json()
            assert [d["status"] for d in deliveries] == ["sent"]
            assert summary["alert"]["event"] == "fired"
            assert summary["alert"]["numbers"]["samples"] == 60

            # (d) the human correction is stored on a wrong run
            corrected = summary["corrected_run"]
            assert corrected in failed
            fb = api.get(f"/api/v1/feedback/{summary['correction_id']}").json()
            assert fb["run_id"] == corrected
            assert fb["source"] == "human"
            assert fb["correction"] == summary["correction"]

            # (e) the rule wrote it into the golden dataset as version 2, with lineage
            versions = api.get("/api/v1/datasets/support-golden/versions").json()["items"]
            assert sorted(v["version"] for v in versions) == [0, 1, 2]  # created, seeded, rule
            examples = api.get("/api/v1/datasets/support-golden/examples").json()
            assert examples["version"] == 2
            added = [e for e in examples["items"] if (e.get("lineage") or {}).get("run_id")]
            assert len(added) == 1
            assert added[0]["id"] == summary["golden_example_id"]
            assert added[0]["outputs"] == summary["correction"]
            assert added[0]["lineage"]["trace_id"] == next(
                r["trace_id"] for r in runs if r["id"] == corrected
            )
            v1 = api.get("/api/v1/datasets/support-golden/examples", params={"as_of": 1}).json()
            assert len(v1["items"]) == len(examples["items"]) - 1

            # (f) the gate: v1 passed the old dataset, fails the new one; the fix passes
            verdicts = [(g["agent"], g["dataset_version"], g["passed"]) for g in summary["gate"]]
            assert verdicts == [
                ("support-agent-v1", 1, True),
                ("support-agent-v1", 2, False),
                ("support-agent-v2", 2, True),
            ]
            # ... and each experiment's scores are stored as feedback on its own runs
            for g in summary["gate"]:
                exp_runs = api.get(
                    "/api/v1/runs",
                    params={"project": g["experiment"], "filter": "root", "limit": 100},
                ).json()["items"]
                assert len(exp_runs) == len(v1["items"]) + (g["dataset_version"] - 1)
                stored = []
                for r in exp_runs:
                    stored += api.get(
                        "/api/v1/feedback", params={"run_id": r["id"], "key": "correct"}
                    ).json()["items"]
                assert len(stored) == len(exp_runs)
                mean = sum(f["score"] for f in stored) / len(stored)
                assert mean == pytest.approx(g["means"]["correct"])
                assert (mean == 1.0) == g["passed"]

            # the comparison page the demo links: v2 fixes the corrected example, breaks none
            assert summary["comparison_path"] in done.stdout
            with httpx.Client(base_url=base, timeout=60) as browser:
                login = browser.get("/login")
                token = re.search(r'name="csrf" value="([^"]+)"', login.text)
                assert token
                signed = browser.post("/login", data={"csrf": token.group(1), "api_key": key})
                assert signed.status_code == 303
                page = browser.get(summary["comparison_path"])
            assert page.status_code == 200, page.text[:500]
            outcomes = re.findall(r'data-outcome="([a-z]+)"', page.text)
            assert outcomes[0] == "improved"
            assert "regressed" not in outcomes

            # the gate commands docs/demo.md gives: v1 fails the corrected dataset, v2 passes
            for target, code in (("support_agent_v1", 1), ("support_agent_v2", 0)):
                gate = subprocess.run(
                    [
                        *(sys.executable, "-m", "goldloop", "gate"),
                        *("--target", f"goldloop.demo.agent:{target}", "--data", "support-golden"),
                        *("--evaluator", 'exact_match={"field": "answer", "key": "correct"}'),
                        *("--min-mean", "correct=1.0"),
                    ],
                    capture_output=True,
                    text=True,
                    env={
                        **os.environ,
                        "PYTHONPATH": SRC,
                        "GOLDLOOP_ENDPOINT": base,
                        "GOLDLOOP_API_KEY": key,
                    },
                    timeout=300,
                    check=False,
                )
                assert gate.returncode == code, gate.stdout + gate.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)


def _writer(body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """A model that words the decision its own way, keeping its meaning as the prompt asks."""
    decision = user_text(body).split("Decision: ", 1)[1]
    if "full refund" in decision:
        words = "Yes! Cancel whenever you like and you will receive a full refund."
    elif "will not return the payment" in decision:
        words = "Sorry, this payment cannot be returned, though we can move your stay at no cost."
    else:
        words = f"Happy to help. {decision}"
    return 200, completion(words, prompt_tokens=90, completion_tokens=20), {}


def test_demo_with_a_model_wording_the_replies(tmp_path: Path) -> None:
    """`goldloop demo --llm-base-url ... --llm-model ...`: a real HTTP model words every reply,
    each call is traced as an llm run with its tokens, and the loop still closes."""
    writer = FakeLLM(_writer)
    data_dir = tmp_path / "demo"
    try:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "goldloop", "demo", "--exit", "--port", "0"),
                *("--data-dir", str(data_dir), "--seed", "11", "--timeout", "300"),
                *("--llm-base-url", writer.url, "--llm-model", "writer-1"),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": SRC, "GOLDLOOP_DEMO_LLM_API_KEY": "sk-demo-test"},
            timeout=900,
            check=False,
        )
    finally:
        writer.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"worded by writer-1 at {writer.url}" in done.stdout
    assert "promises a full refund exactly when the reference does" in done.stdout
    # 60 live requests plus the gate's three experiments each called the model once per answer.
    assert writer.calls >= 60
    assert {h.get("authorization") for h in writer.headers} == {"Bearer sk-demo-test"}
    assert all(r["model"] == "writer-1" and r["temperature"] == 0 for r in writer.requests)
    summary = json.loads((data_dir / "demo.json").read_text())
    verdicts = [(g["agent"], g["dataset_version"], g["passed"]) for g in summary["gate"]]
    assert verdicts == [
        ("support-agent-v1", 1, True),
        ("support-agent-v1", 2, False),
        ("support-agent-v2", 2, True),
    ]

    server, base = start_server(data_dir, "--no-workers")
    try:
        key = (data_dir / "admin-key").read_text().strip()
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=60) as api:
            llm_runs = api.get(
                "/api/v1/runs",
                params={"project": "agent-support", "filter": 'kind = "llm"', "limit": 1000},
            ).json()["items"]
            assert len(llm_runs) == 60
            assert {r["model"] for r in llm_runs} == {"writer-1"}
            assert all(r["usage"]["total_tokens"] == 110 for r in llm_runs)
            roots = api.get(
                "/api/v1/runs",
                params={"project": "agent-support", "filter": "root", "limit": 1000},
            ).json()["items"]
            # The replies carry the model's words, and the online check still caught v1's bug.
            assert any("Cancel whenever you like" in r["outputs"]["answer"] for r in roots)
            assert summary["alert"]["event"] == "fired"
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
