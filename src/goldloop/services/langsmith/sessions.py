"""LangSmith "sessions" are Goldloop projects (experiments are projects too).

Every call maps onto ``services.projects``; nothing about a session is stored twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.langsmith.runs import WireError, to_micros
from goldloop.services import projects
from goldloop.services.context import Principal, ServiceContext
from goldloop.store.projects import ProjectRow

MAX_PAGE = 100


@dataclass(frozen=True)
class Session:
    project: ProjectRow
    reference_dataset_id: str | None = None
    extra: dict[str, Any] | None = None
    end_time: int | None = None


def _session(ctx: ServiceContext, who: Principal, row: ProjectRow) -> Session:
    extra = row.extra or {}
    metadata = extra.get("metadata")
    end_time = extra.get("end_time")
    return Session(
        row,
        reference_dataset_id=extra.get("reference_dataset_id"),
        extra={"metadata": metadata} if metadata is not None else None,
        end_time=end_time if isinstance(end_time, int) else None,
    )


def _extra_of(body: Mapping[str, Any], current: dict[str, Any] | None) -> dict[str, Any] | None:
    """The project's ``extra`` after this body (null fields = unchanged); None if no change."""
    doc = dict(current or {})
    changed = False
    given = body.get("extra")
    if isinstance(given, Mapping) and given.get("metadata") is not None:
        if not isinstance(given["metadata"], Mapping):
            raise InvalidInput("'extra.metadata' must be an object", details={"field": "extra"})
        doc["metadata"] = dict(given["metadata"])
        changed = True
    if body.get("reference_dataset_id") is not None:
        doc["reference_dataset_id"] = str(body["reference_dataset_id"])
        changed = True
    if body.get("end_time") is not None:
        try:
            doc["end_time"] = to_micros(body["end_time"], "end_time")
        except WireError as exc:
            raise InvalidInput(str(exc), details={"field": "end_time"}) from None
        changed = True
    return doc if changed else None


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"'{key}' must be a string", details={"field": key})
    return value


def create(
    ctx: ServiceContext, who: Principal, body: Mapping[str, Any], *, upsert: bool = False
) -> Session:
    name = _text(body, "name")
    if not name:
        raise InvalidInput("a session needs a 'name'", details={"field": "name"})
    project_id = _text(body, "id")
    try:
        row = projects.create(
            ctx,
            who,
            name,
            _text(body, "description"),
            project_id=project_id or None,
            extra=_extra_of(body, None),
        )
    except Conflict:
        if not upsert:
            raise
        row = projects.get_by_name(ctx, who, name)
    return _session(ctx, who, row)


def get(ctx: ServiceContext, who: Principal, session_id: str) -> Session:
    return _session(ctx, who, projects.get(ctx, who, session_id))


def _all_projects(ctx: ServiceContext, who: Principal) -> list[ProjectRow]:
    rows: list[ProjectRow] = []
    cursor: str | None = None
    while True:
        page = projects.list_projects(ctx, who, limit=1000, cursor=cursor)
        rows += page.items
        cursor = page.next_cursor
        if cursor is None:
            return rows


def list_sessions(
    ctx: ServiceContext,
    who: Principal,
    *,
    ids: list[str] | None = None,
    name: str | None = None,
    name_contains: str | None = None,
    reference_dataset: list[str] | None = None,
    reference_free: bool | None = None,
    offset: int = 0,
    limit: int = MAX_PAGE,
) -> list[Session]:
    """Offset-paged, as the SDK pages (a page shorter than ``limit`` ends its iteration)."""
    if name is not None:
        try:
            rows = [projects.get_by_name(ctx, who, name)]
        except NotFound:
            rows = []
    else:
        rows = _all_projects(ctx, who)
    if ids:
        wanted = set(ids)
        rows = [r for r in rows if r.id in wanted]
    if name_contains:
        needle = name_contains.lower()
        rows = [r for r in rows if needle in r.name.lower()]
    sessions = [_session(ctx, who, r) for r in rows]
    if reference_dataset:
        refs = set(reference_dataset)
        sessions = [s for s in sessions if s.reference_dataset_id in refs]
    if reference_free is not None:
        sessions = [s for s in sessions if (s.reference_dataset_id is None) == reference_free]
    return sessions[offset : offset + max(0, min(limit, MAX_PAGE))]


def update(
    ctx: ServiceContext, who: Principal, session_id: str, body: Mapping[str, Any]
) -> Session:
    """``PATCH /sessions/{id}``: a null field means unchanged."""
    current = projects.get(ctx, who, session_id)
    row = projects.update(
        ctx,
        who,
        session_id,
        name=_text(body, "name"),
        description=_text(body, "description"),
        extra=_extra_of(body, current.extra),
    )
    return _session(ctx, who, row)


def delete(ctx: ServiceContext, who: Principal, session_id: str) -> None:
    projects.delete(ctx, who, session_id)
