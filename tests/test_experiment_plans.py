"""SQLite's plans for experiments' run totals, aggregates and scores: the root runs by project,
each run's feedback by run id, whatever the statistics say. With one project much bigger than
the experiments (so the average runs per project, after ANALYZE, is far above an experiment's),
the old join read every feedback row of the workspace through ``ix_feedback_created``; and with
no statistics, a page of 50 experiments' run totals read the workspace's runs
(``ix_runs_trace``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store import experiments
from goldloop.store.database import Database
from goldloop.store.schema import feedback, projects, runs, workspaces
from postgres_plans import postgres_plans
from run_rows import feedback_row, run_row
from sqlite_plans import query_plans

BIG_RUNS = 4000
BIG_SCORED = 400  # fewer feedback rows in the workspace than runs in the average project
EXPERIMENT_RUNS = 5


def _feedback_row(n: int, run_id: str, key: str, score: float) -> dict[str, Any]:
    return feedback_row(
        "w", f"f{n}", key, run_id=run_id, trace_id=run_id, score=score, created_at=n
    )


def _skewed(conn: Connection) -> None:
    """One big project and two small experiments, e1 and e2, in workspace w."""
    conn.execute(sa.insert(workspaces).values(id="w", name="w", created_at=1))
    for pid in ("big", "e1", "e2"):
        conn.execute(sa.insert(projects).values(id=pid, workspace_id="w", name=pid, created_at=1))
    rows = [run_row("w", "big", f"big-{i}") for i in range(BIG_RUNS)]
    rows += [run_row("w", e, f"{e}-{i}") for e in ("e1", "e2") for i in range(EXPERIMENT_RUNS)]
    conn.execute(sa.insert(runs), rows)
    scored = [f"big-{i}" for i in range(BIG_SCORED)]
    scored += [f"{e}-{i}" for e in ("e1", "e2") for i in range(EXPERIMENT_RUNS)]
    given = [
        _feedback_row(n * 2 + k, run_id, key, 0.5)
        for n, run_id in enumerate(scored)
        for k, key in enumerate(("correct", "helpful"))
    ]
    conn.execute(sa.insert(feedback), given)


# a page of the experiments list: the two, and more that have no runs
PAGE = ["e1", "e2", *(f"none-{i}" for i in range(48))]


def _calls(conn: Connection) -> None:
    experiments.key_aggregates(conn, "w", ["e1", "e2"])
    experiments.scores_for_project(conn, "w", "e1")
    experiments.key_aggregates(conn, "w", PAGE)
    experiments.run_totals(conn, "w", PAGE)
    experiments.change_stamp(conn, "w", "e1")  # the project's runs, then their feedback


@pytest.mark.parametrize("statistics", ["skewed", "none"])
def test_experiment_queries_search_root_runs_by_project_and_feedback_by_run(
    tmp_path: Path, statistics: str
) -> None:
    fill = _skewed if statistics == "skewed" else None
    plans = query_plans(tmp_path, _calls, fill)
    assert len(plans) == 6
    for plan in plans:
        steps = " | ".join(plan)
        assert "SCAN runs" not in steps, steps
        found = re.findall(r"SEARCH runs USING (?:COVERING )?INDEX (\w+) \((\w+)=\?", steps)
        # every search of runs: by project, or one run by its (workspace_id, id) key
        assert all(
            column == "project_id" or index == "sqlite_autoindex_runs_1" for index, column in found
        ), steps
        assert any(column == "project_id" for _, column in found), steps
    for plan in [*plans[:3], plans[5]]:
        steps = " | ".join(plan)
        assert "ix_feedback_run_key (workspace_id=? AND run_id=?)" in steps, steps
        assert "ix_feedback_created" not in steps, steps
        assert "ix_feedback_key_created" not in steps, steps
        assert "SCAN feedback" not in steps, steps


def test_the_skewed_workspace_gives_the_expected_aggregates(tmp_path: Path) -> None:
    """The rows the plans above are taken on, aggregated: only the experiments' feedback."""
    seen: dict[str, Any] = {}

    def calls(conn: Connection) -> None:
        seen["aggregates"] = experiments.key_aggregates(conn, "w", PAGE)
        seen["scores"] = experiments.scores_for_project(conn, "w", "e2")
        seen["totals"] = experiments.run_totals(conn, "w", PAGE)

    query_plans(tmp_path, calls, _skewed)
    aggregates = seen["aggregates"]
    assert sorted(aggregates) == ["e1", "e2"]
    for project in ("e1", "e2"):
        assert [(a.key, a.count, a.n, a.mean) for a in aggregates[project]] == [
            ("correct", EXPERIMENT_RUNS, EXPERIMENT_RUNS, 0.5),
            ("helpful", EXPERIMENT_RUNS, EXPERIMENT_RUNS, 0.5),
        ]
    assert seen["totals"] == {
        "e1": experiments.RunTotals(EXPERIMENT_RUNS, 0),
        "e2": experiments.RunTotals(EXPERIMENT_RUNS, 0),
    }
    scores = seen["scores"]
    assert {s.run_id for s in scores} == {f"e2-{i}" for i in range(EXPERIMENT_RUNS)}
    assert len(scores) == 2 * EXPERIMENT_RUNS


def test_postgres_searches_each_root_runs_feedback_by_run_id(db: Database, backend: str) -> None:
    """PostgreSQL, on the skewed workspace after ANALYZE: each root run's feedback is searched
    by run id (an index condition), never a scan of the feedback table."""
    if backend != "postgres":
        pytest.skip("SQLite's plans are held by the tests above")
    with db.engine.begin() as conn:
        _skewed(conn)

    def call(conn: Connection) -> None:
        experiments.key_aggregates(conn, "w", PAGE)
        experiments.scores_for_project(conn, "w", "e1")
        experiments.change_stamp(conn, "w", "e1")

    plans = postgres_plans(db, call, analyze=["runs", "feedback"])
    assert len(plans) == 4
    assert "Seq Scan on runs" not in plans[2], plans[2]  # the stamp's runs: by project
    for plan in [*plans[:2], plans[3]]:
        assert re.search(r"Index Cond: .*\(run_id\)::text = \(runs\.id\)::text", plan), plan
        assert "Seq Scan on feedback" not in plan, plan
