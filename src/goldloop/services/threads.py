"""Conversation threads of a project: the list (by last activity) and one thread read as a
conversation, its turns in order (see ``goldloop.store.threads`` for what a turn is)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.run_queries import parse_time, resolve_project
from goldloop.services.run_views import iso
from goldloop.store import threads as store

MAX_LIMIT = 1000
MAX_TURNS = 1000


def _thread_view(row: store.ThreadRow) -> dict[str, Any]:
    return {
        "thread_id": row.thread_id,
        "run_count": row.run_count,
        "turn_count": row.turn_count,
        "error_count": row.error_count,
        "first_time": row.first_start,
        "last_time": row.last_start,
        "first_time_iso": iso(row.first_start),
        "last_time_iso": iso(row.last_start),
    }


def _encode(row: store.ThreadRow) -> str:
    raw = orjson.dumps([row.last_start if row.last_start is not None else -1, row.thread_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        last, thread_id = orjson.loads(raw)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        last, thread_id = None, None
    if not isinstance(last, int) or isinstance(last, bool) or not isinstance(thread_id, str):
        raise InvalidInput(
            "cursor is not one this list returned (it is opaque; pass next_cursor unchanged)",
            details={"field": "cursor"},
        )
    return last, thread_id


def list_threads(
    ctx: ServiceContext,
    who: Principal,
    project: str,
    *,
    start: str | None = None,
    end: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The project's threads, most recently active first: run and turn counts, first and last
    run start time. ``start``/``end`` keep only the runs that started in that range."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    start_us = parse_time(start, "start") if start else None
    end_us = parse_time(end, "end") if end else None
    after = _decode(cursor) if cursor else None
    proj = resolve_project(ctx, who, project)
    rows, more = ctx.db.read(
        lambda c: store.list_threads(
            c, who.workspace_id, proj.id, start=start_us, end=end_us, after=after, limit=limit
        )
    )
    return {
        "project_id": proj.id,
        "items": [_thread_view(r) for r in rows],
        "next_cursor": _encode(rows[-1]) if more and rows else None,
    }


def _turn_view(row: dict[str, Any]) -> dict[str, Any]:
    latency = row.pop("latency_us")
    return {
        "trace_id": row["trace_id"],
        "run_id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "status": row["status"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "start_time_iso": iso(row["start_time"]),
        "end_time_iso": iso(row["end_time"]),
        "latency_ms": None if latency is None else latency / 1000,
        "inputs": row["inputs"],
        "outputs": row["outputs"],
        "error": row["error"],
        "usage": {
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "total_tokens": row["total_tokens"],
        },
        "cost": row["cost"],
        "user_id": row["user_id"],
    }


def get_thread(
    ctx: ServiceContext,
    who: Principal,
    project: str,
    thread_id: str,
    *,
    offset: int = 0,
    limit: int = 200,
) -> dict[str, Any]:
    """One thread as a conversation: its summary and its turns (the root runs of its traces)
    in start order, each with its trace id, inputs and outputs."""
    if not 1 <= limit <= MAX_TURNS:
        raise InvalidInput(f"limit must be between 1 and {MAX_TURNS}", details={"field": "limit"})
    if offset < 0:
        raise InvalidInput("offset must not be negative", details={"field": "offset"})
    proj = resolve_project(ctx, who, project)

    def read(conn: Any) -> tuple[store.ThreadRow | None, list[dict[str, Any]]]:
        summary = store.thread_summary(conn, who.workspace_id, proj.id, thread_id)
        if summary is None:
            return None, []
        turns = store.thread_turns(
            conn, who.workspace_id, proj.id, thread_id, offset=offset, limit=limit
        )
        return summary, turns

    summary, turns = ctx.db.read(read)
    if summary is None:
        raise NotFound(f"no thread {thread_id!r} in project {proj.name!r}")
    return {
        "project_id": proj.id,
        **_thread_view(summary),
        "offset": offset,
        "turns": [_turn_view(t) for t in turns],
    }


def first_inputs(
    ctx: ServiceContext, who: Principal, project_id: str, thread_ids: list[str]
) -> dict[str, Any]:
    """The inputs of each listed thread's first turn (for a preview), by thread id. The
    project must be the caller's (``list_threads`` resolved it)."""
    if not thread_ids:
        return {}
    return ctx.db.read(
        lambda c: store.first_turn_inputs(c, who.workspace_id, project_id, thread_ids)
    )


def _user_view(row: store.UserRow) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "run_count": row.run_count,
        "trace_count": row.trace_count,
        "error_count": row.error_count,
        "first_time": row.first_start,
        "last_time": row.last_start,
        "first_time_iso": iso(row.first_start),
        "last_time_iso": iso(row.last_start),
    }


def _encode_user(row: store.UserRow) -> str:
    raw = orjson.dumps([row.last_start if row.last_start is not None else -1, row.user_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def list_users(
    ctx: ServiceContext,
    who: Principal,
    project: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The project's end users (runs' ``user_id``), most recently active first, with run,
    trace and error counts and first/last run start time."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    after = _decode(cursor) if cursor else None
    proj = resolve_project(ctx, who, project)
    rows, more = ctx.db.read(
        lambda c: store.list_users(c, who.workspace_id, proj.id, after=after, limit=limit)
    )
    return {
        "project_id": proj.id,
        "items": [_user_view(r) for r in rows],
        "next_cursor": _encode_user(rows[-1]) if more and rows else None,
    }
