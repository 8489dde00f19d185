"""Issue 19: an incident pages once, stays firing while degraded and resolves after recovery.

The real app and worker loops on an injected clock, feedback scores in the store, and a live
webhook receiver on 127.0.0.1, on SQLite and PostgreSQL. The clock moves a minute at a time for
hours, with a minute of traffic added each time and the worker flushed every few minutes.
"""

from __future__ import annotations

import random
import uuid

import httpx
import pytest
import sqlalchemy as sa
from tests.receiver import Receiver

from fake_clock import FakeClock
from goldloop.services.context import ServiceContext
from goldloop.store.schema import feedback, runs
from goldloop.workers.service_loops import Workers
from run_rows import run_row

S = 1_000_000
T0 = 1_800_000_000 * S


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def scored_minutes(
    ctx: ServiceContext, ws: str, project_id: str, minutes: list[tuple[int, int]]
) -> None:
    """For each (minute start, passes): 6 root runs starting in that minute, ``passes`` of them
    scored 1 and the rest 0; one write."""
    run_rows, fb_rows = [], []
    n = 6
    for start, passed in minutes:
        add_minute(ws, project_id, start, n, passed, run_rows, fb_rows)

    def write(conn: sa.Connection) -> None:
        conn.execute(sa.insert(runs), run_rows)
        conn.execute(sa.insert(feedback), fb_rows)

    ctx.db.write(write)


def add_minute(
    ws: str,
    project_id: str,
    start: int,
    n: int,
    passed: int,
    run_rows: list[dict[str, object]],
    fb_rows: list[dict[str, object]],
) -> None:
    for i in range(n):
        rid = uuid.uuid4().hex
        t = start + i * (60 * S // n)
        run_rows.append(
            run_row(
                ws,
                project_id,
                rid,
                name="answer",
                start_time=t,
                latency_us=500,
                created_at=t,
                updated_at=t,
            )
        )
        fb_rows.append(
            {
                "id": str(uuid.uuid4()),
                "workspace_id": ws,
                "run_id": rid,
                "trace_id": rid,
                "key": "refund_policy_ok",
                "score": 1.0 if i < passed else 0.0,
                "score_is_bool": False,
                "has_correction": False,
                "source": "model",
                "request_hash": "0" * 64,
                "created_at": t,
                "updated_at": t,
            }
        )


async def test_a_drop_pages_once_stays_firing_and_resolves_after_recovery(
    client: httpx.AsyncClient, hook: Receiver, clock: FakeClock, workers: Workers
) -> None:
    ctx = workers.ctx
    project = (await client.post("/api/v1/projects", json={"name": "agent-support"})).json()
    channel = (
        await client.post(
            "/api/v1/channels", json={"name": "pager", "kind": "webhook", "url": hook.url}
        )
    ).json()
    made = await client.post(
        "/api/v1/alert-rules",
        json={
            "project_id": project["id"],
            "name": "refund answers got worse",
            "metric": {"kind": "feedback_pass_rate", "key": "refund_policy_ok"},
            "condition": {"type": "change", "resolve_after_s": 600},
            "window_s": 1800,
            "channel_ids": [channel["id"]],
        },
    )
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    assert made.json()["condition"]["false_page_days"] == 30
    ws = ctx.db.read(lambda c: c.exec_driver_sql("SELECT workspace_id FROM projects").scalar())
    rng = random.Random(19)

    def minutes(count: int, p: float, every: int = 1) -> list[str]:
        """``count`` minutes of 6 scored runs each (360 runs/h), evaluating every ``every``
        minutes (the detector reads every bucket since its last evaluation)."""
        pending: list[tuple[int, int]] = []
        for m in range(count):
            pending.append((clock.now, sum(rng.random() < p for _ in range(6))))
            clock.now += 60 * S
            if (m + 1) % every == 0:
                scored_minutes(ctx, ws, project["id"], pending)
                pending.clear()
                workers.flush()
        return [r.body["event"] for r in hook.requests]

    async def rule() -> dict[str, object]:
        return (await client.get(f"/api/v1/alert-rules/{rule_id}")).json()  # type: ignore[no-any-return]

    assert minutes(4 * 60, 0.92, every=30) == []  # four steady hours: no page
    assert (await rule())["state"] == "ok"

    assert minutes(45, 0.6, every=5) == ["fired"]  # the drop pages within 45 minutes
    fired = hook.requests[0].body
    assert fired["numbers"]["statistic"] >= fired["numbers"]["limit"] > 0
    assert fired["numbers"]["baseline"] > 0.85
    assert fired["worst_runs"]

    assert minutes(3 * 60, 0.6, every=30) == ["fired"]  # three more hours degraded: no "resolved"
    state = await rule()
    assert state["state"] == "firing"
    last = state["last_evaluation"]
    assert isinstance(last, dict)
    assert "frozen baseline" in last["reason"]
    assert last["baseline"] == fired["numbers"]["baseline"]  # never drifted to the incident

    assert minutes(90, 0.92, every=5) == ["fired", "resolved"]  # quality is back: resolved, once
    resolved = hook.requests[1].body
    assert resolved["numbers"]["value"] >= fired["numbers"]["baseline"] - 0.05
    events = (await client.get(f"/api/v1/alert-rules/{rule_id}/events")).json()
    assert [e["kind"] for e in events] == ["resolved", "fired"]
    assert (await rule())["state"] == "ok"
