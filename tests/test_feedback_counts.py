"""How much feedback each run of a trace has (the trace page's per-row counts), on both
backends: right for thousands of runs, and on PostgreSQL sent as one array parameter, since
planning a 10,000-item IN list took 42 ms of a 10,000-run trace page (8 ms to run it)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from goldloop.store.database import Database
from goldloop.store.feedback_history import feedback_counts
from goldloop.store.schema import feedback, workspaces
from run_rows import feedback_row


def test_counts_for_ten_thousand_runs_in_one_parameter(db: Database, backend: str) -> None:
    run_ids = [f"run-{i}" for i in range(10_000)]
    rows = [
        feedback_row("w", f"f-{i}-{k}", "correct", run_id=run_ids[i], score=1.0)
        for i in range(0, 10_000, 7)
        for k in range(1 + i % 3)
    ]
    rows.append(feedback_row("other", "f-other", "correct", run_id="run-7", score=0.0))
    with db.engine.begin() as conn:
        conn.execute(
            sa.insert(workspaces), [{"id": w, "name": w, "created_at": 1} for w in ("w", "other")]
        )
        conn.execute(sa.insert(feedback), rows)
    sent: list[Any] = []
    with db.engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", lambda *a: sent.append(a[3]))
        counts = feedback_counts(conn, "w", run_ids)
    assert counts == {run_ids[i]: 1 + i % 3 for i in range(0, 10_000, 7)}
    (params,) = sent
    if backend == "postgres":
        assert len(params) == 2, "the ids go as one array, beside the workspace"
