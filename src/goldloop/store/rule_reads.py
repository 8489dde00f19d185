"""Reads the rule workers need across workspaces (they act for every workspace)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.domain.clock import to_iso
from goldloop.store.schema import feedback, rules, runs

_SUMMARY = (
    runs.c.id,
    runs.c.trace_id,
    runs.c.parent_id,
    runs.c.project_id,
    runs.c.name,
    runs.c.kind,
    runs.c.status,
    runs.c.start_time,
    runs.c.end_time,
    runs.c.latency_us,
    runs.c.error,
    runs.c.inputs,
    runs.c.outputs,
    runs.c.model,
    runs.c.total_tokens,
    runs.c.cost,
    runs.c.tags,
    runs.c.metadata,
    runs.c.session_id,
    runs.c.user_id,
)


def rule_by_id(conn: Connection, rule_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(rules).where(rules.c.id == rule_id)).first()
    return dict(row._mapping) if row else None


def run_summary(conn: Connection, workspace_id: str, run_id: str) -> dict[str, Any] | None:
    """A run as webhook receivers see it (times as ISO strings, latency in ms)."""
    row = conn.execute(
        sa.select(*_SUMMARY).where(runs.c.workspace_id == workspace_id, runs.c.id == run_id)
    ).first()
    if row is None:
        return None
    doc = dict(row._mapping)
    doc["start_time"] = to_iso(doc["start_time"])
    doc["end_time"] = to_iso(doc["end_time"])
    latency = doc.pop("latency_us")
    doc["latency_ms"] = None if latency is None else latency / 1000.0
    return doc


def trace_runs(conn: Connection, workspace_id: str, trace_id: str) -> list[dict[str, Any]]:
    """Every run of a trace, as evaluators need them (times in µs)."""
    return traces_runs(conn, workspace_id, [trace_id]).get(trace_id, [])


def traces_runs(
    conn: Connection, workspace_id: str, trace_ids: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every run of each of these traces (one query), by trace id; a trace without runs is
    absent."""
    wanted = sorted(set(trace_ids))
    where = runs.c.trace_id == wanted[0] if len(wanted) == 1 else runs.c.trace_id.in_(wanted)
    q = sa.select(*_SUMMARY).where(runs.c.workspace_id == workspace_id, where)
    out: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(q):
        doc = dict(row._mapping)
        doc["usage"] = {"total_tokens": doc.pop("total_tokens")}
        out.setdefault(doc["trace_id"], []).append(doc)
    return out


def feedback_target(
    conn: Connection, workspace_id: str, feedback_id: str
) -> tuple[str, str] | None:
    """(run id, trace id) of a feedback: its run, or the root run of its trace."""
    fb = conn.execute(
        sa.select(feedback.c.run_id, feedback.c.trace_id).where(
            feedback.c.workspace_id == workspace_id, feedback.c.id == feedback_id
        )
    ).first()
    if fb is None:
        return None
    if fb.run_id is not None:
        q = sa.select(runs.c.id, runs.c.trace_id).where(
            runs.c.workspace_id == workspace_id, runs.c.id == fb.run_id
        )
    else:
        q = sa.select(runs.c.id, runs.c.trace_id).where(
            runs.c.workspace_id == workspace_id,
            runs.c.trace_id == fb.trace_id,
            runs.c.is_root.is_(True),
        )
    found = conn.execute(q.limit(1)).first()
    return (str(found.id), str(found.trace_id)) if found else None
