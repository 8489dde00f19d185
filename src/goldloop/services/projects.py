"""Projects: create, list, get, rename, delete (with their runs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.services import attachments, audit
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import erasure
from goldloop.store import projects as store
from goldloop.store.erasure import Removed
from goldloop.store.projects import ProjectRow

MAX_NAME = 200


@dataclass(frozen=True)
class ProjectPage:
    items: list[ProjectRow]
    next_cursor: str | None


def _clean_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput("project name must not be empty", details={"field": "name"})
    if len(cleaned) > MAX_NAME:
        raise InvalidInput(
            f"project name is longer than {MAX_NAME} characters", details={"field": "name"}
        )
    return cleaned


def create(
    ctx: ServiceContext,
    who: Principal,
    name: str,
    description: str | None = None,
    *,
    project_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> ProjectRow:
    """A new project; ``project_id`` lets a client choose the id (the LangSmith SDK does)."""
    if project_id is not None and not 1 <= len(project_id) <= 36:
        raise InvalidInput("a project id must be 1-36 characters", details={"field": "id"})
    row = ProjectRow(
        id=project_id or str(uuid.uuid4()),
        workspace_id=who.workspace_id,
        name=_clean_name(name),
        description=description,
        created_at=ctx.clock(),
        extra=extra,
    )

    def write(conn: Connection) -> None:
        if store.get_by_name(conn, who.workspace_id, row.name) is not None:
            raise Conflict(
                f"a project named {row.name!r} already exists", details={"field": "name"}
            )
        if project_id is not None and store.exists(conn, project_id):
            raise Conflict(f"a project with id {project_id!r} already exists")
        store.insert(conn, row)

    ctx.db.write(write)
    return row


def get_or_create(ctx: ServiceContext, who: Principal, name: str) -> ProjectRow:
    """The project with this name, created on first use (ingestion names projects freely)."""
    name = _clean_name(name)
    found = ctx.db.read(lambda c: store.get_by_name(c, who.workspace_id, name))
    if found is not None:
        return found

    def write(conn: Connection) -> ProjectRow:
        existing = store.get_by_name(conn, who.workspace_id, name)
        if existing is not None:  # created concurrently
            return existing
        row = ProjectRow(str(uuid.uuid4()), who.workspace_id, name, None, ctx.clock())
        store.insert(conn, row)
        return row

    return ctx.db.write(write)


def get(ctx: ServiceContext, who: Principal, project_id: str) -> ProjectRow:
    row = ctx.db.read(lambda c: store.get(c, who.workspace_id, project_id))
    if row is None:
        raise NotFound(f"no project with id {project_id!r}")
    return row


def get_by_name(ctx: ServiceContext, who: Principal, name: str) -> ProjectRow:
    row = ctx.db.read(lambda c: store.get_by_name(c, who.workspace_id, name))
    if row is None:
        raise NotFound(f"no project named {name!r}")
    return row


def list_projects(
    ctx: ServiceContext, who: Principal, *, limit: int = 100, cursor: str | None = None
) -> ProjectPage:
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", details={"field": "limit"})
    rows = ctx.db.read(
        lambda c: store.list_page(c, who.workspace_id, limit=limit + 1, after_name=cursor)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return ProjectPage(rows, rows[-1].name if more and rows else None)


def update(
    ctx: ServiceContext,
    who: Principal,
    project_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    extra: dict[str, Any] | None = None,
) -> ProjectRow:
    """Change what is given (None = unchanged); ``extra`` replaces the whole document."""
    new_name = _clean_name(name) if name is not None else None

    def write(conn: Connection) -> bool:
        if new_name is not None:
            clash = store.get_by_name(conn, who.workspace_id, new_name)
            if clash is not None and clash.id != project_id:
                raise Conflict(
                    f"a project named {new_name!r} already exists", details={"field": "name"}
                )
        return store.update(
            conn, who.workspace_id, project_id, name=new_name, description=description, extra=extra
        )

    if not ctx.db.write(write):
        raise NotFound(f"no project with id {project_id!r}")
    return get(ctx, who, project_id)


def delete(ctx: ServiceContext, who: Principal, project_id: str) -> int:
    """Delete a project, its runs and the feedback on them (in transactions of a few hundred
    traces, then the project). Dataset examples copied from its runs are kept: see
    docs/self-hosting.md ("What deleting a project removes")."""
    row = get(ctx, who, project_id)
    removed = Removed()
    while True:
        traces = ctx.db.read(lambda c: erasure.project_traces(c, row.id, 2000))
        if not traces:
            break
        for chunk in erasure.chunks(traces, 200):
            removed.add(
                ctx.db.write(
                    partial(
                        erasure.delete_traces,
                        workspace_id=who.workspace_id,
                        trace_ids=chunk,
                        project_id=row.id,
                    )
                )
            )
    now = ctx.clock()

    def finish(conn: Connection) -> int | None:
        last = store.delete(conn, who.workspace_id, row.id)  # runs that arrived meanwhile
        if last is not None:
            counts = {"runs": removed.runs + last, "feedback": removed.feedback}
            audit.entry(
                conn,
                now,
                who.workspace_id,
                who,
                "project.deleted",
                target_type="project",
                target_id=row.id,
                details={"name": row.name, **counts},
            )
        return last

    last = ctx.db.write(finish)
    if last is None:
        raise NotFound(f"no project with id {project_id!r}")
    attachments.sweep(ctx)  # the files of the deleted runs' attachments
    return removed.runs + last


def run_count(ctx: ServiceContext, project: ProjectRow) -> int:
    return ctx.db.read(lambda c: store.count_runs(c, project.id))
