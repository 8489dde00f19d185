"""The loop, step by step, against a real embedded server over its HTTP API.

Each step prints what happened in plain words with a link into the dashboard, waits for the
server's workers with a bounded timeout, and records its outcome in ``DATA_DIR/demo.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

import goldloop
from goldloop.demo import agent
from goldloop.demo.embedded import DemoError, EmbeddedServer, WebhookReceiver
from goldloop.settings import Settings, load_settings

T = TypeVar("T")
PROJECT = "agent-support"
DATASET = "support-golden"
GATE_MIN_MEAN = {"refund_policy_ok": 1.0, "correct": 1.0}


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path
    port: int = 8700
    seed: int = 7
    requests: int = 60
    timeout_s: float = 180.0  # the longest any one step may wait for the workers


def demo_settings(opts: DemoOptions) -> Settings:
    """SQLite in the data dir, workers in the server polling often; the environment is ignored
    so the demo is the same everywhere."""
    settings = load_settings(
        {
            "data_dir": str(opts.data_dir),
            "database_url": "",
            "host": "127.0.0.1",
            "port": opts.port or 8700,
            "workers_in_process": True,
            "worker_poll_s": 0.2,
            "log_level": "warning",
        },
        environ={},
    )
    # port 0: the system picks a free port when the server binds (EmbeddedServer reads it back)
    return settings if opts.port else dataclasses.replace(settings, port=0)


def wait_for(check: Callable[[], T | None], what: str, timeout_s: float) -> T:
    """Poll ``check`` until it returns something truthy; DemoError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


class Demo:
    def __init__(
        self,
        opts: DemoOptions,
        server: EmbeddedServer,
        pager: WebhookReceiver,
        say: Callable[[str], None],
    ) -> None:
        self.opts, self.server, self.pager, self.say = opts, server, pager, say
        self.base = server.base_url
        self.key = server.settings.admin_key_path.read_text().strip()
        self.api = httpx.Client(base_url=self.base, headers={"x-api-key": self.key}, timeout=60)
        self.summary: dict[str, Any] = {"base_url": self.base, "seed": opts.seed}

    def link(self, path: str) -> str:
        return f"{self.base}{path}"

    def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.api.request(method, path, **kw)
        if resp.status_code >= 400:
            raise DemoError(f"{method} {path} answered {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else None

    # -- set-up ------------------------------------------------------------------------------

    def setup(self) -> None:
        project = self.call("POST", "/api/v1/projects", json={"name": PROJECT})
        pid = project["id"]
        dataset = self.call("POST", "/api/v1/datasets", json={"name": DATASET})
        self.call(
            "POST",
            f"/api/v1/datasets/{DATASET}/examples",
            json={"examples": agent.golden_seed(), "message": "cases the team wrote by hand"},
        )
        check = self.call(
            "POST",
            "/api/v1/rules",
            json={
                "project_id": pid,
                "name": "refund policy check",
                "actions": [
                    {
                        "type": "evaluate",
                        "evaluators": [{"name": "regex", "config": agent.POLICY_CHECK}],
                    }
                ],
            },
        )
        to_golden = self.call(
            "POST",
            "/api/v1/rules",
            json={
                "project_id": pid,
                "name": "corrections become golden examples",
                "trigger": "feedback",
                "feedback_match": {"has_correction": True},
                "actions": [
                    {"type": "add_to_dataset", "dataset": DATASET, "prefer_correction": True}
                ],
            },
        )
        channel = self.call(
            "POST",
            "/api/v1/channels",
            json={"name": "demo pager", "kind": "webhook", "url": self.pager.url},
        )
        alert = self.call(
            "POST",
            "/api/v1/alert-rules",
            json={
                "project_id": pid,
                "name": "refund answers are wrong",
                "metric": {"kind": "feedback_pass_rate", "key": "refund_policy_ok"},
                # decided once every answer of the demo's traffic is scored: fires exactly once
                "condition": {
                    "type": "threshold",
                    "op": "<",
                    "value": 0.9,
                    "min_samples": self.opts.requests,
                },
                "window_s": 3600,
                "every_s": 1,
                "cooldown_s": 3600,
                "channel_ids": [channel["id"]],
            },
        )
        self.summary.update(
            project_id=pid,
            dataset_id=dataset["id"],
            check_rule_id=check["id"],
            golden_rule_id=to_golden["id"],
            alert_rule_id=alert["id"],
            channel_id=channel["id"],
        )
        self.say(
            "0. Set-up. A project for the support agent, the golden dataset "
            f"'{DATASET}' (version 1: {len(agent.golden_seed())} cases the team wrote), an online "
            "rule that checks every answer, a rule that turns corrections into golden examples, "
            "and an alert that posts to a local webhook receiver.\n"
            f"   Dashboard: {self.link('/login')}  (sign in with the admin key: {self.key})"
        )

    # -- (a) traffic ---------------------------------------------------------------------------

    def serve_traffic(self) -> None:
        goldloop.configure(tracing=True, endpoint=self.base, api_key=self.key, project=PROJECT)
        requests = agent.guest_requests(self.opts.seed, self.opts.requests)
        for req in requests:
            agent.support_agent_v1(req.question, req.booking_id)
        goldloop.flush()
        pid = self.summary["project_id"]

        def stored() -> int | None:
            page = self.call(
                "GET",
                "/api/v1/runs",
                params={"project": pid, "filter": "root", "limit": 1000, "select": "light"},
            )
            n = len(page["items"])
            return n if n >= len(requests) else None

        n = wait_for(stored, "the traced runs to be stored", self.opts.timeout_s)
        self.summary["runs"] = n
        self.say(
            f"1. Traffic. Support agent v1 answered {n} guests, traced with the Goldloop SDK "
            "(each answer is a trace: the agent and its booking lookup).\n"
            f"   Runs: {self.link(f'/projects/{pid}/runs')}"
        )

    # -- (b) online evaluation ----------------------------------------------------------------

    def online_scores(self) -> list[dict[str, Any]]:
        page = self.call(
            "GET",
            "/api/v1/feedback",
            params={"key": "refund_policy_ok", "source": "online-evaluator", "limit": 1000},
        )
        return list(page["items"])

    def wait_scored(self) -> None:
        want = self.summary["runs"]
        scores = wait_for(
            lambda: (s := self.online_scores()) and len(s) >= want and s,
            f"the online check to score all {want} answers",
            self.opts.timeout_s,
        )
        failed = sorted((f for f in scores if f["score"] == 0), key=lambda f: f["run_id"])
        self.summary.update(scored=len(scores), failed_runs=[f["run_id"] for f in failed])
        example = failed[0]["run_id"] if failed else None
        self.say(
            f"2. Online evaluation. The rule 'refund policy check' scored all {len(scores)} "
            f"answers with the regex evaluator: {len(failed)} told a guest on a non-refundable "
            "rate that they would get a full refund.\n"
            + (f"   A wrong answer: {self.link(f'/runs/{example}')}" if example else "")
        )

    # -- (c) alert ----------------------------------------------------------------------------

    def wait_alert(self) -> None:
        bodies = self.pager.wait(1, self.opts.timeout_s)
        fired = [b for b in bodies if isinstance(b, dict) and b.get("event") == "fired"]
        if not fired:
            raise DemoError(f"the receiver got {bodies!r} instead of a fired alert")
        body = fired[0]
        numbers = body.get("numbers") or {}
        self.summary["alert"] = {"event": body["event"], "numbers": numbers}
        worst = ", ".join(w["id"] for w in (body.get("worst_runs") or [])[:3])
        self.say(
            f"3. Alert. The alert '{body['alert']['name']}' fired once and the local receiver "
            f"({self.pager.url}) got: event={body['event']}, pass rate="
            f"{numbers.get('value', float('nan')):.2f} over {numbers.get('samples')} answers "
            f"(threshold 0.90); reason: {body.get('reason')}; worst runs: {worst}.\n"
            f"   Alert: {self.link('/alerts/' + self.summary['alert_rule_id'])}"
        )

    # -- (d) correction -----------------------------------------------------------------------

    def correct_one(self) -> None:
        run_id = self.summary["failed_runs"][0]
        run = self.call("GET", f"/api/v1/runs/{run_id}")
        correction = agent.corrected_answer(run["inputs"])
        fb = self.call(
            "POST",
            "/api/v1/feedback",
            json={
                "run_id": run_id,
                "key": "correctness",
                "score": 0,
                "correction": correction,
                "comment": "Summer Deal is non-refundable; offer a date change instead.",
                "source": "human",
            },
        )
        self.summary.update(corrected_run=run_id, correction_id=fb["id"], correction=correction)
        trace = f"/traces/{run['trace_id']}?run={run_id}"
        self.say(
            "4. Correction. A support lead marked one wrong answer incorrect and wrote what the "
            f"agent should have said:\n   {correction['answer']!r}\n"
            f"   Trace: {self.link(trace)}"
        )

    # -- (e) golden dataset -------------------------------------------------------------------

    def wait_golden(self) -> None:
        run_id = self.summary["corrected_run"]

        def added() -> dict[str, Any] | None:
            page = self.call("GET", f"/api/v1/datasets/{DATASET}/examples", params={"limit": 1000})
            for ex in page["items"]:
                if (ex.get("lineage") or {}).get("run_id") == run_id:
                    return {"example": ex, "version": page["version"]}
            return None

        found = wait_for(added, "the correction to reach the golden dataset", self.opts.timeout_s)
        diff = f"/datasets/{self.summary['dataset_id']}/diff?from=1&to={found['version']}"
        self.summary.update(
            golden_example_id=found["example"]["id"], golden_version=found["version"]
        )
        self.say(
            f"5. Golden dataset. The rule 'corrections become golden examples' added the run to "
            f"'{DATASET}' as version {found['version']}, with the correction as its reference "
            "answer and lineage back to the run, its trace and the feedback.\n"
            f"   What changed: {self.link(diff)}"
        )

    # -- (f) gate -----------------------------------------------------------------------------

    def gate(self) -> None:
        from goldloop.evaluation import build_evaluator
        from goldloop.evaluation._gate import run_gate_checks

        worded_by_model = agent.chat_model() is not None
        correct = (
            agent.refund_promise_matches
            if worded_by_model
            else build_evaluator("exact_match", {"field": "answer", "key": "correct"})
        )
        evaluators = [build_evaluator("regex", dict(agent.POLICY_CHECK)), correct]
        plans = [
            ("support-agent-v1", agent.support_agent_v1, 1, "v1 against version 1"),
            ("support-agent-v1", agent.support_agent_v1, self.summary["golden_version"], "v1"),
            ("support-agent-v2", agent.support_agent_v2, self.summary["golden_version"], "v2"),
        ]
        verdicts: list[dict[str, Any]] = []
        for prefix, target, version, label in plans:
            results = goldloop.evaluate(
                target,
                data=DATASET,
                evaluators=evaluators,
                experiment_prefix=prefix,
                as_of=version,
                max_concurrency=4,
                progress=False,
            )
            report = run_gate_checks(results, min_mean=GATE_MIN_MEAN, max_failures=0)
            verdicts.append(
                {
                    "label": label,
                    "agent": prefix,
                    "dataset_version": results.dataset_version,
                    "experiment": results.experiment,
                    "passed": report.passed,
                    "means": {k: v["mean"] for k, v in report.summary.items()},
                }
            )
        self.summary["gate"] = verdicts
        pair = {"baseline": verdicts[1]["experiment"], "candidate": verdicts[2]["experiment"]}
        self.summary["comparison_path"] = f"/experiments/compare?{urlencode(pair)}"
        lines = [
            f"   {'PASS' if v['passed'] else 'FAIL'}  {v['agent']} on {DATASET} version "
            f"{v['dataset_version']}: "
            + ", ".join(f"{k} {m:.2f}" for k, m in sorted(v["means"].items()))
            for v in verdicts
        ]
        second = (
            "a check that each answer promises a full refund exactly when the reference does"
            if worded_by_model
            else "an exact match on the reference answer"
        )
        self.say(
            "6. Gate. The experiment runner replayed each agent over the golden dataset with "
            f"the same check plus {second}, and the gate required a mean of 1.0 for both:\n"
            + "\n".join(lines)
            + "\n   Version 1 let the bug ship; the corrected example catches it, and only the "
            "fix passes. In CI: goldloop gate --target goldloop.demo.agent:support_agent_v2 "
            f'--data {DATASET} --evaluator \'exact_match={{"field": "answer", "key": '
            '"correct"}\' --min-mean correct=1.0\n'
            f"   Experiments: {self.link('/datasets/' + DATASET + '/experiments')}\n"
            f"   v1 against v2 on version {verdicts[2]['dataset_version']}, side by side: "
            f"{self.link(self.summary['comparison_path'])}"
        )

    def play(self) -> dict[str, Any]:
        try:
            self.setup()
            self.serve_traffic()
            self.wait_scored()
            self.wait_alert()
            self.correct_one()
            self.wait_golden()
            self.gate()
        finally:
            goldloop.flush()
            (self.opts.data_dir / "demo.json").write_text(json.dumps(self.summary, indent=2))
        return self.summary

    def close(self) -> None:
        self.api.close()
