"""Reading runs: get one, get a trace as a tree, list with filter/sort/keyset pages, statistics."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from goldloop.domain import filters, percentiles, trace_tree
from goldloop.domain.clock import from_iso, to_iso
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.run_views import GCPaused, run_view, tree_views
from goldloop.store import projects as project_store
from goldloop.store import run_queries as store
from goldloop.store import run_table as run_table_store
from goldloop.store import trace_rows as trace_store
from goldloop.store.projects import ProjectRow
from goldloop.store.run_filters import Cond, compile_filter
from goldloop.store.run_stats import all_of

SORTS = tuple(store.SORT_COLUMNS)
MAX_LIMIT = 1000
MAX_BUCKETS = 2000
PERCENTILES = {"p50": 500, "p95": 950, "p99": 990}


def get_run(ctx: ServiceContext, who: Principal, run_id: str) -> dict[str, Any]:
    row = ctx.db.read(lambda c: store.get(c, who.workspace_id, run_id))
    if row is None:
        raise NotFound(f"no run with id {run_id!r}")
    return run_view(row)


def get_trace(
    ctx: ServiceContext, who: Principal, trace_id: str, *, light: bool = False
) -> dict[str, Any]:
    """The runs of a trace as a flat tree (pre-order, with depth and children ids).

    A trace can hold 10,000 runs, so this reads lean rows (``store.trace_rows``) and builds each
    view in one step (``run_views.tree_views``) rather than going through ``run_view``, with the
    cyclic garbage collector paused (``run_views.GCPaused``)."""
    with GCPaused():
        rows = ctx.db.read(
            lambda c: trace_store.trace_rows(c, who.workspace_id, trace_id, light=light)
        )
        if not rows:
            raise NotFound(f"no trace with id {trace_id!r}")
        return _trace_view(trace_id, rows, light)


def _trace_view(trace_id: str, rows: list[Sequence[Any]], light: bool) -> dict[str, Any]:
    ids = [row[_ID] for row in rows]
    starts = [row[_START] for row in rows]
    nodes = trace_tree.build_columns(ids, [row[_PARENT] for row in rows], starts)
    known_starts = [s for s in starts if s is not None]
    known_ends = [row[_END] for row in rows if row[_END] is not None]
    return {
        "trace_id": trace_id,
        "run_count": len(nodes),
        "root_ids": [ids[i] for i, depth, _, _ in nodes if depth == 0],
        "start_time": min(known_starts) if known_starts else None,
        "end_time": max(known_ends) if known_ends else None,
        "runs": tree_views(rows, nodes, trace_id, light=light),
    }


_ID, _PARENT, _START, _END = (
    trace_store.TRACE_COLUMNS.index(name) for name in ("id", "parent_id", "start_time", "end_time")
)


def resolve_project(ctx: ServiceContext, who: Principal, ref: str) -> ProjectRow:
    """A project of the caller's workspace by id, else by name."""

    def find(conn: Any) -> ProjectRow | None:
        return project_store.get(conn, who.workspace_id, ref) or project_store.get_by_name(
            conn, who.workspace_id, ref
        )

    row = ctx.db.read(find)
    if row is None:
        raise NotFound(f"no project with id or name {ref!r}")
    return row


def list_runs(
    ctx: ServiceContext,
    who: Principal,
    *,
    project: str | None = None,
    filter: str | None = None,
    sort: str = "start_time",
    order: str = "desc",
    limit: int = 50,
    cursor: str | None = None,
    light: bool = False,
    conditions: Sequence[Cond] = (),
    start: int | None = None,
    end: int | None = None,
    scan: int | None = None,
) -> dict[str, Any]:
    """One page of runs matching ``filter`` (and the already-compiled ``conditions``), started
    in ``[start, end)`` when those are given.

    With ``scan`` and a substring search in the filter (``~`` or ``!~`` on any field: ``text
    ~``, ``name ~``, ...; a scan no index serves), the search reads at most ``scan``
    candidate runs (those meeting the rest of the filter, in list order from the cursor). When
    it stops there with the page not full, ``searched_to`` is the sort value of the last run it
    read and ``next_cursor`` continues the search after it; every match is still found, over
    several requests. Without ``scan`` (the API) a search is exact in one request, however long
    it reads."""
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", details={"field": "sort"})
    if order not in ("asc", "desc"):
        raise InvalidInput("order must be asc or desc", details={"field": "order"})
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    node = filters.parse(filter or "")
    after = _decode_cursor(cursor, sort, order) if cursor else None
    project_id = resolve_project(ctx, who, project).id if project else _project_in(ctx, who, node)
    condition = compile_filter(
        node, dialect=ctx.db.dialect, workspace_id=who.workspace_id, now=ctx.clock()
    )
    if start is not None or end is not None:
        conditions = [*conditions, run_table_store.start_between(start, end)]
    if conditions:
        condition = all_of([condition, *conditions])
    bounded = scan is not None and has_text_search(node)
    candidates = condition
    if bounded:
        rest = compile_filter(
            without_text_search(node),
            dialect=ctx.db.dialect,
            workspace_id=who.workspace_id,
            now=ctx.clock(),
        )
        candidates = all_of([rest, *conditions]) if conditions else rest

    def page_of(c: Any, start: tuple[Any, int] | None, n: int, until: Any) -> store.Page:
        return store.list_page(
            c,
            who.workspace_id,
            project_id=project_id,
            condition=condition,
            sort=sort,
            descending=order == "desc",
            after=start,
            limit=n,
            light=light,
            until=until,
            candidates=candidates if bounded else None,
        )

    def read(c: Any) -> tuple[store.Page, tuple[Any, int] | None]:
        """The page, and the run the bounded search stopped at (None: not stopped early)."""
        if not bounded:
            return page_of(c, after, limit, None), None
        assert scan is not None
        rows: list[dict[str, Any]] = []
        start = after
        # a tenth of the candidates first, then the rest: a common needle fills its page from
        # the first window without the cost of finding the whole scan's last candidate
        for window in (max(1, scan // 10), scan - max(1, scan // 10)):
            until = store.scan_bound(
                c,
                who.workspace_id,
                project_id=project_id,
                condition=candidates,
                sort=sort,
                descending=order == "desc",
                after=start,
                scan=window,
            )
            page = page_of(c, start, limit - len(rows), until)
            rows += page.rows
            if page.more or until is None:
                return store.Page(rows, page.more), None
            start = until
        return store.Page(rows, False), start

    page, until = ctx.db.read(read)
    next_cursor = None
    if page.more and page.rows:
        last = page.rows[-1]
        value = last[store.SORT_COLUMNS[sort].name]
        next_cursor = _encode_cursor(sort, order, value, last["pk"])
    out: dict[str, Any] = {
        "items": [run_view(r, light=light) for r in page.rows],
        "next_cursor": next_cursor,
    }
    if bounded:
        out["searched_to"] = None
        if until is not None:  # stopped at the scan's last candidate, the page not full
            out["searched_to"] = {"value": until[0], "sort": sort}
            out["next_cursor"] = _encode_cursor(sort, order, until[0], until[1])
    return out


def has_text_search(node: filters.Node | None) -> bool:
    """Whether the filter holds a substring search (``~``, ``!~``) anywhere: of the runs'
    documents (``text``, ``inputs``, ``outputs``, ``error``), a name, metadata, a comment..."""
    if node is None:
        return False
    if isinstance(node, filters.And | filters.Or):
        return any(has_text_search(i) for i in node.items)
    if isinstance(node, filters.Not):
        return has_text_search(node.item)
    return isinstance(node, filters.Compare) and node.op in filters.TEXT_OPS


def without_text_search(node: filters.Node | None) -> filters.Node | None:
    """The top-level conjuncts of the filter that hold no text search (None: every run): what a
    run must meet to be a candidate of the search, so every match is among the candidates."""
    items = node.items if isinstance(node, filters.And) else (node,)
    kept = tuple(i for i in items if i is not None and not has_text_search(i))
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else filters.And(kept)


def _project_in(ctx: ServiceContext, who: Principal, node: filters.Node | None) -> str | None:
    """The project a filter pins with a top-level ``project = "x"`` conjunct, so the list can
    walk that project's indexes (the filter still applies as written)."""
    items = node.items if isinstance(node, filters.And) else (node,)
    for item in items:
        if (
            isinstance(item, filters.Compare)
            and item.field.name == "project"
            and item.op == "="
            and isinstance(item.value, filters.Str)
        ):
            try:
                return resolve_project(ctx, who, item.value.value).id
            except NotFound:
                return None
    return None


def _encode_cursor(sort: str, order: str, value: Any, pk: int) -> str:
    raw = orjson.dumps([sort, order, value, pk])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, order: str) -> tuple[Any, int]:
    bad = InvalidInput(
        "cursor is not one this list returned (it is opaque; pass next_cursor unchanged)",
        details={"field": "cursor"},
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        c_sort, c_order, value, pk = orjson.loads(raw)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(pk, int) or not (value is None or isinstance(value, int | float)):
        raise bad
    if (c_sort, c_order) != (sort, order):
        raise InvalidInput(
            f"cursor belongs to a list sorted by {c_sort} {c_order}; keep sort and order the "
            "same while paging",
            details={"field": "cursor"},
        )
    return value, pk


def parse_time(text: str, field: str) -> int:
    """Integer microseconds since the epoch, or an ISO-8601 string."""
    text = text.strip()
    try:
        return int(text) if text.lstrip("-").isdigit() else from_iso(text)
    except ValueError:
        raise InvalidInput(
            f"{field} must be an ISO-8601 time or integer microseconds, not {text!r}",
            details={"field": field},
        ) from None


def parse_bucket(text: str) -> int:
    try:
        us = filters.parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"field": "bucket"}) from None
    if us < 1_000_000:
        raise InvalidInput("bucket must be at least 1s", details={"field": "bucket"})
    return us


def project_stats(
    ctx: ServiceContext,
    who: Principal,
    project: str,
    *,
    bucket: str = "1h",
    start: str | None = None,
    end: str | None = None,
    filter: str | None = None,
) -> dict[str, Any]:
    """Per time bucket (by run start time): count, errors, error rate, latency percentiles,
    tokens and cost of the project's runs that match the filter."""
    bucket_us = parse_bucket(bucket)
    end_us = parse_time(end, "end") if end else ctx.clock()
    start_us = parse_time(start, "start") if start else end_us - 24 * 3_600_000_000
    if end_us <= start_us:
        raise InvalidInput("end must be after start", details={"field": "end"})
    n_buckets = -(-(end_us - start_us) // bucket_us)
    if n_buckets > MAX_BUCKETS:
        raise InvalidInput(
            f"{n_buckets} buckets requested; at most {MAX_BUCKETS}: use a larger bucket",
            details={"field": "bucket"},
        )
    node = filters.parse(filter or "")
    proj = resolve_project(ctx, who, project)
    condition = compile_filter(
        node, dialect=ctx.db.dialect, workspace_id=who.workspace_id, now=ctx.clock()
    )
    ws = who.workspace_id

    def read(conn: Any) -> tuple[list[store.BucketTotals], dict[int, dict[int, int]]]:
        totals = store.bucket_totals(
            conn, ws, proj.id, condition, start=start_us, end=end_us, bucket_us=bucket_us
        )
        ranks = store.latency_order_statistics(
            conn,
            ws,
            proj.id,
            condition,
            start=start_us,
            end=end_us,
            bucket_us=bucket_us,
            permilles=list(PERCENTILES.values()),
        )
        return totals, ranks

    totals, ranks = ctx.db.read(read)
    by_start = {t.bucket: t for t in totals}
    buckets = []
    for i in range(n_buckets):
        b_start = start_us + i * bucket_us
        t = by_start.get(b_start)
        buckets.append(_bucket_view(b_start, t, ranks.get(b_start, {})))
    return {
        "project_id": proj.id,
        "start": start_us,
        "end": end_us,
        "start_iso": to_iso(start_us),
        "end_iso": to_iso(end_us),
        "bucket_us": bucket_us,
        "filter": filter or "",
        "buckets": buckets,
    }


def _bucket_view(
    b_start: int, t: store.BucketTotals | None, ranks: Mapping[int, float]
) -> dict[str, Any]:
    count = t.count if t else 0
    latency: dict[str, float | None] = {}
    n = t.latency_count if t else 0
    for label, permille in PERCENTILES.items():
        value = percentiles.interpolate(n, permille, ranks) if n else None
        latency[label] = None if value is None else value / 1000
    latency["avg"] = None if not t or t.latency_avg_us is None else t.latency_avg_us / 1000
    return {
        "start": b_start,
        "start_iso": to_iso(b_start),
        "count": count,
        "errors": t.errors if t else 0,
        "error_rate": (t.errors / count) if t and count else None,
        "latency_ms": latency,
        "tokens": {
            "input": t.input_tokens if t else 0,
            "output": t.output_tokens if t else 0,
            "total": t.total_tokens if t else 0,
        },
        "cost": t.cost if t else 0.0,
    }
