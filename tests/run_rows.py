"""Test helpers: runs rows with defaults, stored straight into the runs table (store-level tests)
or through ``POST /api/v1/runs/batch`` (API tests); workspaces and projects for isolation tests."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import sqlalchemy as sa

from goldloop.services import auth
from goldloop.services import projects as project_svc
from goldloop.services.context import Principal, ServiceContext
from goldloop.store.database import Database
from goldloop.store.schema import runs

_seq = itertools.count(1)
T0 = 1_764_150_000_000_000  # 2025-11-26T09:40:00Z, µs


def run_row(workspace_id: str, project_id: str, run_id: str, **kw: Any) -> dict[str, Any]:
    """A complete runs row with sensible defaults; keyword arguments override columns."""
    start = kw.pop("start_time", T0)
    latency = kw.pop("latency_us", 1_000_000)
    row: dict[str, Any] = {
        "workspace_id": workspace_id,
        "project_id": project_id,
        "id": run_id,
        "trace_id": run_id,
        "parent_id": None,
        "seq": next(_seq),
        "name": "step",
        "kind": "chain",
        "status": "success",
        "start_time": start,
        "end_time": None if start is None or latency is None else start + latency,
        "latency_us": latency,
        "error": None,
        "inputs": {"question": "q"},
        "outputs": {"answer": "a"},
        "model": None,
        "provider": None,
        "input_tokens": None,
        "output_tokens": None,
        "total_tokens": None,
        "cost": None,
        "session_id": None,
        "user_id": None,
        "tags": [],
        "metadata": {},
        "extra": None,
        "reference_example_id": None,
        "created_at": T0,
        "updated_at": T0,
    }
    row.update(kw)
    if "is_root" not in kw:
        row["is_root"] = row["parent_id"] is None
    return row


def feedback_row(workspace_id: str, feedback_id: str, key: str, **kw: Any) -> dict[str, Any]:
    """A complete feedback row (no run, no trace, a score of none) with sensible defaults;
    keyword arguments override columns."""
    created = kw.pop("created_at", T0)
    row: dict[str, Any] = {
        "workspace_id": workspace_id,
        "id": feedback_id,
        "run_id": None,
        "trace_id": None,
        "project_id": None,
        "key": key,
        "score": None,
        "score_is_bool": False,
        "value": None,
        "comment": None,
        "correction": None,
        "has_correction": False,
        "source": "api",
        "source_info": None,
        "request_hash": "h",
        "created_at": created,
        "updated_at": created,
    }
    row.update(kw)
    return row


def insert(db: Database, rows: list[dict[str, Any]]) -> None:
    def write(conn: sa.Connection) -> None:
        for i in range(0, len(rows), 1000):
            conn.execute(sa.insert(runs), rows[i : i + 1000])

    db.write(write)


def principal(ctx: ServiceContext, name: str = "ws") -> Principal:
    ws = auth.create_workspace(ctx, name)
    return Principal(workspace_id=ws.id, key_id="test", role="admin")


def project_id(ctx: ServiceContext, who: Principal, name: str = "p") -> str:
    return project_svc.get_or_create(ctx, who, name).id


_ITEM_FIELDS = (
    "id",
    "trace_id",
    "parent_id",
    "name",
    "kind",
    "status",
    "start_time",
    "end_time",
    "error",
    "inputs",
    "outputs",
    "model",
    "provider",
    "cost",
    "tags",
    "metadata",
    "session_id",
    "user_id",
)


def batch_item(row: dict[str, Any]) -> dict[str, Any]:
    """A runs row (as ``run_row`` makes it) as an item of ``POST /api/v1/runs/batch``."""
    item = {k: row[k] for k in _ITEM_FIELDS if row.get(k) is not None}
    usage = {
        k: row[k]
        for k in ("input_tokens", "output_tokens", "total_tokens")
        if row.get(k) is not None
    }
    if usage:
        item["usage"] = usage
    return item


async def post_runs(
    client: httpx.AsyncClient, project: str, rows: list[dict[str, Any]], chunk: int = 2000
) -> None:
    """Store runs through the real ingestion API."""
    for i in range(0, len(rows), chunk):
        body = {"project": project, "runs": [batch_item(r) for r in rows[i : i + chunk]]}
        r = await client.post("/api/v1/runs/batch", json=body)
        assert r.status_code == 202, r.text
