"""Helpers shared by the ingestion tests: read back stored runs without the query API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from goldloop.services import auth
from goldloop.services.context import ServiceContext
from goldloop.store import run_rows

# Bookkeeping that legitimately differs between two deliveries of the same data.
VOLATILE = ("pk", "seq", "created_at", "updated_at", "project_id")


def app_ctx(app: FastAPI) -> ServiceContext:
    ctx: ServiceContext = app.state.ctx
    return ctx


def workspace_of(app: FastAPI, key: str) -> str:
    return auth.authenticate(app_ctx(app), key).workspace_id


def trace_rows(app: FastAPI, key: str, trace_id: str) -> list[dict[str, Any]]:
    ws = workspace_of(app, key)
    return app_ctx(app).db.read(lambda c: run_rows.rows_by_trace(c, ws, trace_id))


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the bookkeeping columns, for comparing stored traces."""
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]
