"""Runs read as the source of dataset examples (the query helper owns the run read models)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import runs


@dataclass(frozen=True, slots=True)
class RunSource:
    id: str
    trace_id: str
    project_id: str
    inputs: Any
    outputs: Any


def by_ids(conn: Connection, workspace_id: str, run_ids: list[str]) -> dict[str, RunSource]:
    found: dict[str, RunSource] = {}
    for i in range(0, len(run_ids), 500):
        query = sa.select(
            runs.c.id, runs.c.trace_id, runs.c.project_id, runs.c.inputs, runs.c.outputs
        ).where(runs.c.workspace_id == workspace_id, runs.c.id.in_(run_ids[i : i + 500]))
        for r in conn.execute(query):
            found[r.id] = RunSource(r.id, r.trace_id, r.project_id, r.inputs, r.outputs)
    return found
