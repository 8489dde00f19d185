"""The runs an alert names as its worst: for a pass rate, only runs that failed."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from fixture_runs import insert_run, project_id, workspace_id
from goldloop.store import alert_metrics

START = 1_764_150_816_000_000  # insert_run's start time


async def test_pass_rate_names_only_failed_runs_and_mean_names_the_lowest(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for i in range(10):
        insert_run(app, f"run-{i}")
    scores = {f"run-{i}": 0.0 if i in (3, 7) else 1.0 for i in range(10)}
    for run_id, score in scores.items():
        r = await client.post(
            "/api/v1/feedback", json={"run_id": run_id, "key": "policy_ok", "score": score}
        )
        assert r.status_code == 201, r.text
    ws = workspace_id(app)
    pid = project_id(app, ws, "agent-support")

    def metric(kind: str) -> dict[str, object]:
        return app.state.ctx.db.read(
            lambda conn: alert_metrics.feedback_metric(
                conn, kind, ws, pid, "policy_ok", START - 1, START + 1
            )
        )

    rate = metric("feedback_pass_rate")
    assert (rate["n"], rate["successes"]) == (10, 8)
    # Two failures: the alert names those two, not three passing runs to fill five slots.
    assert sorted(rate["worst"]) == ["run-3", "run-7"]  # type: ignore[call-overload]

    mean = metric("feedback_mean")
    worst = mean["worst"]
    assert isinstance(worst, list)
    assert len(worst) == alert_metrics.WORST
    assert sorted(worst[:2]) == ["run-3", "run-7"]  # the lowest scores first
