"""LangSmith's thread views (``client.threads.query``, ``.list_traces``, ``.stats``) over
Goldloop's conversation threads.

A thread is the runs of a project that share a thread id (see ``goldloop.store.threads``); a
turn is one of its traces, shown by the trace's root run. These views answer what the SDK's
generated thread resource reads: a page of threads with their turn counts, first and last
trace, previews, tokens, cost and latency; one thread's traces in order; one thread's totals.
Filters on these calls (``filter``, ``thread_filter``, ``trace_filter``, ``tree_filter``, AI and
semantic search) are refused with a 400 naming the parameter rather than ignored, so a caller
never reads an unfiltered list as a filtered one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import orjson

from goldloop.domain import percentiles
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.services import threads as native
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.langsmith.run_reads import error_text
from goldloop.services.run_queries import parse_time, resolve_project
from goldloop.services.run_views import iso
from goldloop.store import threads as store

DEFAULT_PAGE = 20
MAX_PAGE = 100
PREVIEW_CHARS = 250
DEFAULT_WINDOW = timedelta(days=1)  # the SDK's documented default: threads active in the last day
UNSUPPORTED_FILTERS = (
    "filter",
    "thread_filter",
    "trace_filter",
    "tree_filter",
    "ai_search",
    "sem_filter",
)
TRACE_FIELDS = frozenset(
    {
        "THREAD_ID",
        "TRACE_ID",
        "NAME",
        "START_TIME",
        "END_TIME",
        "LATENCY",
        "INPUTS",
        "OUTPUTS",
        "INPUTS_PREVIEW",
        "OUTPUTS_PREVIEW",
        "ERROR",
        "ERROR_PREVIEW",
        "PROMPT_TOKENS",
        "COMPLETION_TOKENS",
        "TOTAL_TOKENS",
        "TOTAL_COST",
        "TURN_NUMBER",
    }
)
STATS_FIELDS = frozenset(
    {
        "TURNS",
        "FIRST_START_TIME",
        "LAST_START_TIME",
        "LAST_END_TIME",
        "LATENCY_P50",
        "LATENCY_P99",
        "PROMPT_TOKENS",
        "COMPLETION_TOKENS",
        "TOTAL_TOKENS",
        "TOTAL_COST",
    }
)


def refuse_filters(given: Mapping[str, Any]) -> None:
    for name in UNSUPPORTED_FILTERS:
        if given.get(name) not in (None, ""):
            raise InvalidInput(
                f"{name} is not supported on Goldloop's thread views: list the project's runs "
                "with POST /runs/query and a filter instead",
                details={"field": name},
            )


def _page_size(value: Any) -> int:
    if value is None:
        return DEFAULT_PAGE
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if isinstance(value, bool) or not 1 <= size <= MAX_PAGE:
        raise InvalidInput(
            f"page_size must be an integer between 1 and {MAX_PAGE}, not {value!r}",
            details={"field": "page_size"},
        )
    return size


def _selected(values: Sequence[str], allowed: frozenset[str], field: str) -> set[str]:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise InvalidInput(
            f"{field}: Goldloop does not compute {', '.join(unknown)}; it can give "
            f"{', '.join(sorted(allowed))}",
            details={"field": field},
        )
    return set(values)


def _preview(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _seconds(us: float | None) -> float | None:
    return None if us is None else us / 1_000_000


def _percentile(values: list[int], permille: int) -> float | None:
    ordered = sorted(values)
    return percentiles.interpolate(len(ordered), permille, dict(enumerate(ordered)))


def _sum(values: Sequence[float | int | None]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _time(text: Any, field: str) -> int | None:
    if text in (None, ""):
        return None
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be an RFC 3339 time", details={"field": field})
    return parse_time(text, field)


def query_threads(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /api/v2/threads/query``: the project's threads active in the window, most recent
    first, as the SDK's ``Thread`` items, with the opaque ``next_cursor``."""
    refuse_filters(body)
    project_id = body.get("project_id")
    if not isinstance(project_id, str) or not project_id:
        raise InvalidInput("project_id (the tracing project's id) is required")
    size = _page_size(body.get("page_size"))
    now = ctx.clock()
    end = _time(body.get("max_start_time"), "max_start_time") or now
    start = _time(body.get("min_start_time"), "min_start_time")
    if start is None:
        start = end - int(DEFAULT_WINDOW.total_seconds() * 1_000_000)
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidInput("cursor must be the next_cursor string of the previous page")
    page = native.list_threads(
        ctx, who, project_id, start=str(start), end=str(end), limit=size, cursor=cursor
    )
    ids = [item["thread_id"] for item in page["items"]]

    def read(conn: Any) -> tuple[list[store.TurnRow], dict[str, tuple[Any, Any, str | None]]]:
        turns = store.turn_rows(
            conn, who.workspace_id, page["project_id"], ids, start=start, end=end
        )
        wanted: list[str] = []
        for thread_turns in _by_thread(turns).values():
            wanted += [thread_turns[0].run_id, thread_turns[-1].run_id]
            wanted += [t.run_id for t in thread_turns if t.status == "error"][-1:]
        return turns, store.run_payloads(conn, who.workspace_id, wanted)

    turns, payloads = ctx.db.read(read)
    grouped = _by_thread(turns)
    items = [
        _thread_item(item["thread_id"], grouped.get(item["thread_id"], []), payloads)
        for item in page["items"]
    ]
    return {"items": items, "next_cursor": page["next_cursor"]}


def _by_thread(turns: list[store.TurnRow]) -> dict[str, list[store.TurnRow]]:
    grouped: dict[str, list[store.TurnRow]] = {}
    for turn in turns:
        grouped.setdefault(turn.thread_id, []).append(turn)
    return grouped


def _thread_item(
    thread_id: str,
    turns: list[store.TurnRow],
    payloads: Mapping[str, tuple[Any, Any, str | None]],
) -> dict[str, Any]:
    if not turns:  # the thread's runs are in the window, but none of its traces' roots are
        return {"thread_id": thread_id, "count": 0}
    first, last = turns[0], turns[-1]
    errored = [t for t in turns if t.status == "error"]
    last_error = payloads.get(errored[-1].run_id, (None, None, None))[2] if errored else None
    latencies = [t.latency_us for t in turns if t.latency_us is not None]
    starts = [t.start for t in turns if t.start is not None]
    return {
        "thread_id": thread_id,
        "count": len(turns),
        "first_trace_id": first.trace_id,
        "last_trace_id": last.trace_id,
        "trace_id": last.trace_id,
        "first_inputs": _preview(payloads.get(first.run_id, (None, None, None))[0]),
        "last_outputs": _preview(payloads.get(last.run_id, (None, None, None))[1]),
        "last_error": _preview(error_text(last_error)),
        "num_errored_turns": len(errored),
        "start_time": iso(min(starts)) if starts else None,
        "min_start_time": iso(min(starts)) if starts else None,
        "max_start_time": iso(max(starts)) if starts else None,
        "total_tokens": _sum([t.total_tokens for t in turns]),
        "total_cost": _sum([t.cost for t in turns]),
        "latency_p50": _seconds(_percentile(latencies, 500)),
        "latency_p99": _seconds(_percentile(latencies, 990)),
    }


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode().rstrip("=")


def _decode_offset(cursor: str) -> int:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = value["offset"]
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInput(
            "cursor is not one this list returned (pass next_cursor unchanged)",
            details={"field": "cursor"},
        )
    return offset


def list_traces(
    ctx: ServiceContext,
    who: Principal,
    thread_id: str,
    *,
    project_id: str | None,
    page_size: str | None,
    cursor: str | None,
    selects: Sequence[str],
    filters: Mapping[str, Any],
) -> dict[str, Any]:
    """``GET /api/v2/threads/{thread_id}/traces``: the thread's traces in start order, each with
    ``trace_id`` and the fields named in ``selects``."""
    refuse_filters(filters)
    if not project_id:
        raise InvalidInput("project_id (the tracing project's id) is required")
    fields = _selected(selects, TRACE_FIELDS, "selects")
    size = _page_size(page_size)
    offset = _decode_offset(cursor) if cursor else 0
    thread = native.get_thread(ctx, who, project_id, thread_id, offset=offset, limit=size + 1)
    turns = thread["turns"]
    items = [
        _trace_item(thread_id, turn, offset + number, fields)
        for number, turn in enumerate(turns[:size], 1)
    ]
    more = len(turns) > size
    return {"items": items, "next_cursor": _encode_offset(offset + size) if more else None}


def _trace_item(
    thread_id: str, turn: Mapping[str, Any], number: int, fields: set[str]
) -> dict[str, Any]:
    usage = turn["usage"]
    latency_ms = turn["latency_ms"]
    values: dict[str, Any] = {
        "THREAD_ID": thread_id,
        "NAME": turn["name"],
        "START_TIME": turn["start_time_iso"],
        "END_TIME": turn["end_time_iso"],
        "LATENCY": None if latency_ms is None else latency_ms / 1000,
        "INPUTS": turn["inputs"],
        "OUTPUTS": turn["outputs"],
        "INPUTS_PREVIEW": _preview(turn["inputs"]),
        "OUTPUTS_PREVIEW": _preview(turn["outputs"]),
        "ERROR": error_text(turn["error"]),
        "ERROR_PREVIEW": _preview(error_text(turn["error"])),
        "PROMPT_TOKENS": usage["input_tokens"],
        "COMPLETION_TOKENS": usage["output_tokens"],
        "TOTAL_TOKENS": usage["total_tokens"],
        "TOTAL_COST": turn["cost"],
        "TURN_NUMBER": number,
    }
    item = {"trace_id": turn["trace_id"]}
    item.update({name.lower(): values[name] for name in sorted(fields) if name != "TRACE_ID"})
    return item


def thread_stats(
    ctx: ServiceContext,
    who: Principal,
    thread_id: str,
    *,
    project_id: str | None,
    selects: Sequence[str],
    filters: Mapping[str, Any],
) -> dict[str, Any]:
    """``GET /api/v2/threads/{thread_id}/stats``: the thread's totals named in ``selects``."""
    refuse_filters(filters)
    if not project_id:
        raise InvalidInput("session_id (the tracing project's id) is required")
    if not selects:
        raise InvalidInput("selects: name at least one statistic", details={"field": "selects"})
    fields = _selected(selects, STATS_FIELDS, "selects")
    project = resolve_project(ctx, who, project_id)
    turns = ctx.db.read(lambda c: store.turn_rows(c, who.workspace_id, project.id, [thread_id]))
    if not turns:
        raise NotFound(f"no thread {thread_id!r} in project {project.name!r}")
    latencies = [t.latency_us for t in turns if t.latency_us is not None]
    starts = [t.start for t in turns if t.start is not None]
    ends = [t.end for t in turns if t.end is not None]
    values: dict[str, Any] = {
        "TURNS": len(turns),
        "FIRST_START_TIME": iso(min(starts)) if starts else None,
        "LAST_START_TIME": iso(max(starts)) if starts else None,
        "LAST_END_TIME": iso(max(ends)) if ends else None,
        "LATENCY_P50": _seconds(_percentile(latencies, 500)),
        "LATENCY_P99": _seconds(_percentile(latencies, 990)),
        "PROMPT_TOKENS": _sum([t.input_tokens for t in turns]),
        "COMPLETION_TOKENS": _sum([t.output_tokens for t in turns]),
        "TOTAL_TOKENS": _sum([t.total_tokens for t in turns]),
        "TOTAL_COST": _sum([t.cost for t in turns]),
    }
    return {name.lower(): values[name] for name in sorted(fields)}
