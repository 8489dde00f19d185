"""A rule's action history, newest first, with the status filter and the ``before`` cursor: its
rows on SQLite and PostgreSQL, and on SQLite that the page is picked from the index alone
(Issue #23: sorting whole rows read all of a rule's 177,000 actions, ~0.3 s a rule page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store import rules
from goldloop.store.database import Database
from goldloop.store.schema import projects, rule_actions, workspaces
from goldloop.store.schema import rules as rules_table
from sqlite_plans import query_plans

STATUSES = ["done", "failed", "done", "skipped", "pending", "done", "failed", "done"]


def fill(conn: Connection, others: int = 1, repeat: int = 1) -> None:
    """Rule "rule"'s actions on runs 0-7 (``STATUSES``), interleaved with those of ``others``
    other rules, ``repeat`` times over (more objects)."""
    conn.execute(sa.insert(workspaces).values(id="ws", name="ws", created_at=1))
    conn.execute(sa.insert(projects).values(id="p", workspace_id="ws", name="p", created_at=1))
    rule_ids = ["rule", *(f"other-{n}" for n in range(others))]
    for rid in rule_ids:
        conn.execute(
            sa.insert(rules_table).values(
                id=rid,
                workspace_id="ws",
                project_id="p",
                name=rid,
                trigger="run",
                sample_rate=1.0,
                root_only=True,
                actions=[],
                enabled=True,
                created_at=1,
                updated_at=1,
            )
        )
    rows: list[dict[str, Any]] = []
    for i, status in enumerate(STATUSES * repeat):
        for rid in rule_ids:
            rows.append(
                {
                    "rule_id": rid,
                    "object_id": f"run-{i}",
                    "action_index": 0,
                    "action_type": "webhook",
                    "status": status,
                    "detail": {"n": i},
                    "attempts": 0,
                    "next_attempt_at": 0,
                    "created_at": i,
                    "updated_at": i,
                }
            )
    conn.execute(sa.insert(rule_actions), rows)


def test_history_pages_newest_first_by_status_and_cursor(db: Database) -> None:
    db.write(fill)

    def page(status: str | None, limit: int, before: int | None) -> list[dict[str, Any]]:
        return db.read(
            lambda c: rules.list_actions(c, "rule", status=status, limit=limit, before_pk=before)
        )

    everything = page(None, 100, None)
    assert [a["object_id"] for a in everything] == [f"run-{i}" for i in reversed(range(8))]
    assert {a["rule_id"] for a in everything} == {"rule"}
    assert everything[0]["detail"] == {"n": 7}
    first = page(None, 3, None)
    assert [a["object_id"] for a in first] == ["run-7", "run-6", "run-5"]
    second = page(None, 3, first[-1]["pk"])
    assert [a["object_id"] for a in second] == ["run-4", "run-3", "run-2"]
    done = page("done", 2, None)
    assert [a["object_id"] for a in done] == ["run-7", "run-5"]
    assert [a["object_id"] for a in page("done", 2, done[-1]["pk"])] == ["run-2", "run-0"]
    assert page("failed", 5, everything[-1]["pk"]) == []


def test_history_page_is_picked_from_the_index_then_read_by_key(tmp_path: Path) -> None:
    (plan,) = query_plans(
        tmp_path,
        lambda c: rules.list_actions(c, "rule", status=None, limit=51, before_pk=None),
        lambda c: fill(c, others=20, repeat=100),
    )
    scans = [s for s in plan if "rule_actions" in s and ("SCAN" in s or "SEARCH" in s)]
    assert any("COVERING INDEX ix_rule_actions_rule_due" in s for s in scans), plan
    assert any("INTEGER PRIMARY KEY" in s for s in scans), plan
