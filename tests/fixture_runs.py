"""Test helpers: store runs directly (the ingestion API lands separately) and add workspaces."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from goldloop.services import auth
from goldloop.services.context import ServiceContext
from goldloop.store.schema import projects, runs, workspaces

_seq = itertools.count(1)


def workspace_id(app: FastAPI, name: str = "default") -> str:
    ctx: ServiceContext = app.state.ctx
    found = ctx.db.read(
        lambda c: c.execute(sa.select(workspaces.c.id).where(workspaces.c.name == name)).scalar()
    )
    assert found is not None
    return str(found)


def project_id(app: FastAPI, ws: str, name: str) -> str:
    ctx: ServiceContext = app.state.ctx

    def write(conn: sa.Connection) -> str:
        query = sa.select(projects.c.id).where(
            projects.c.workspace_id == ws, projects.c.name == name
        )
        found = conn.execute(query).scalar()
        if found:
            return str(found)
        new_id = f"p-{name}-{ws[:8]}"
        conn.execute(
            sa.insert(projects).values(id=new_id, workspace_id=ws, name=name, created_at=1)
        )
        return new_id

    return ctx.db.write(write)


def insert_run(
    app: FastAPI,
    run_id: str,
    *,
    trace_id: str | None = None,
    parent_id: str | None = None,
    inputs: Any = None,
    outputs: Any = None,
    project: str = "agent-support",
    workspace: str = "default",
) -> None:
    ctx: ServiceContext = app.state.ctx
    ws = workspace_id(app, workspace)
    pid = project_id(app, ws, project)
    seq = next(_seq)

    def write(conn: sa.Connection) -> None:
        conn.execute(
            sa.insert(runs).values(
                workspace_id=ws,
                project_id=pid,
                id=run_id,
                trace_id=trace_id or run_id,
                parent_id=parent_id,
                seq=seq,
                is_root=parent_id is None,
                name="answer",
                kind="chain",
                status="success",
                inputs=inputs,
                outputs=outputs,
                start_time=1_764_150_816_000_000,
                created_at=1,
                updated_at=1,
            )
        )

    ctx.db.write(write)


async def other_workspace_client(app: FastAPI, name: str = "other") -> httpx.AsyncClient:
    """A client with an admin key of a second workspace (close it after use)."""
    ctx: ServiceContext = app.state.ctx
    ws = auth.create_workspace(ctx, name)
    key = auth.create_key(ctx, ws.id, "test", role="admin")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://goldloop.test",
        headers={"x-api-key": key.secret},
    )


class StepClock:
    """A clock that moves only when told: ``clock.now`` µs, advanced by ``step`` on every read."""

    def __init__(self, start: int = 1_764_150_816_000_000, step: int = 1000) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now
