"""What the runs table shows beside the runs of one page, and what it does with selected runs.

Each read is bounded by the page (its run and trace ids) or by a cap, so the table costs the same
at any project size: the inputs and outputs of the listed runs (for previews), the latest score
per feedback key of each, the totals of the traces whose root runs are listed, and a capped
count of the runs that match the filter.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from goldloop.domain import filters
from goldloop.domain.errors import InvalidInput
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.run_queries import resolve_project
from goldloop.services.run_views import run_view
from goldloop.store import run_rows
from goldloop.store import run_table as store
from goldloop.store.run_filters import compile_filter
from goldloop.store.run_stats import all_of
from goldloop.store.run_table import LatestScore, TraceTotals

COUNT_CAP = 10_000
MAX_SELECTED = 500
# Sources whose scores are an evaluator's (an online evaluator, an LLM judge, a rule), shown
# apart from people's and applications' feedback.
EVALUATOR_SOURCES = frozenset({"online-evaluator", "model", "rule"})


@dataclass
class PageExtras:
    documents: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    trace_totals: dict[str, TraceTotals] = field(default_factory=dict)
    # {run id: {key: score}}, people's and apps' feedback apart from evaluators' scores
    feedback: dict[str, dict[str, LatestScore]] = field(default_factory=dict)
    evals: dict[str, dict[str, LatestScore]] = field(default_factory=dict)


def page_extras(
    ctx: ServiceContext,
    who: Principal,
    items: Sequence[dict[str, Any]],
    *,
    documents: bool = True,
    totals: bool = True,
    scores: bool = True,
) -> PageExtras:
    """Previews' documents, trace totals (for root runs) and latest scores of the listed runs,
    in one read transaction; only what is asked for is read."""
    run_ids = [r["id"] for r in items]
    roots = {r["trace_id"]: r["id"] for r in items if r.get("is_root")}
    ws = who.workspace_id

    def read(conn: Any) -> PageExtras:
        out = PageExtras()
        if documents:
            out.documents = store.documents(conn, ws, run_ids)
        if totals and roots:
            out.trace_totals = store.trace_totals(conn, ws, list(roots))
        if scores and run_ids:
            latest = store.latest_scores(conn, ws, run_ids, roots)
            for s in sorted(latest, key=lambda s: s.created_at):  # a later source wins
                target = out.evals if s.source in EVALUATOR_SOURCES else out.feedback
                target.setdefault(s.run_id, {})[s.key] = s
        return out

    return ctx.db.read(read) if run_ids else PageExtras()


# Filters counted on every page view: they read an index alone (the count of any other filter
# may scan the whole project, so the page counts it when asked).
CHEAP_COUNTS = ("", "root")


def count_is_cheap(filter: str | None) -> bool:
    return (filter or "").strip() in CHEAP_COUNTS


def count_runs(
    ctx: ServiceContext,
    who: Principal,
    project: str,
    *,
    filter: str | None,
    start: int | None = None,
    end: int | None = None,
    cap: int = COUNT_CAP,
) -> int:
    """How many of the project's runs match (``cap + 1`` means "more than ``cap``")."""
    project_id = resolve_project(ctx, who, project).id
    node = filters.parse(filter or "")
    condition = compile_filter(
        node, dialect=ctx.db.dialect, workspace_id=who.workspace_id, now=ctx.clock()
    )
    condition = all_of([condition, *store_time_range(start, end)])
    return ctx.db.read(lambda c: store.count_matching(c, project_id, condition, cap=cap))


def store_time_range(start: int | None, end: int | None) -> list[Any]:
    """The condition "started in [start, end)" (either end open), as a list to splice in."""
    return [] if start is None and end is None else [store.start_between(start, end)]


def selected_runs(
    ctx: ServiceContext, who: Principal, run_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The full views of the selected runs of the caller's workspace, in the order given (ids of
    other workspaces, or unknown ones, are left out)."""
    wanted = list(dict.fromkeys(run_ids))
    if not wanted:
        raise InvalidInput("select at least one run", details={"field": "run_id"})
    if len(wanted) > MAX_SELECTED:
        raise InvalidInput(f"at most {MAX_SELECTED} runs at a time", details={"field": "run_id"})
    rows = ctx.db.read(lambda c: run_rows.rows_by_ids(c, who.workspace_id, wanted))
    by_id = {r["id"]: run_view(r) for r in rows}
    return [by_id[i] for i in wanted if i in by_id]


def jsonl(views: Sequence[dict[str, Any]]) -> Iterator[bytes]:
    """One run view per line (the API's run JSON)."""
    for view in views:
        yield orjson.dumps(view, option=orjson.OPT_NON_STR_KEYS) + b"\n"


CSV_COLUMNS = (
    "id",
    "trace_id",
    "parent_id",
    "name",
    "kind",
    "status",
    "start_time_iso",
    "end_time_iso",
    "latency_ms",
    "model",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "session_id",
    "user_id",
    "tags",
    "metadata",
    "inputs",
    "outputs",
    "error",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell: documents as JSON; text a spreadsheet would run as a formula gets a leading
    apostrophe (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def csv_lines(views: Sequence[dict[str, Any]]) -> Iterator[bytes]:
    """A header, then one line per run: the columns above, documents as JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield _drain(buffer)
    for view in views:
        usage = view.get("usage") or {}
        row = {**view, **{k: usage.get(k) for k in ("input_tokens", "output_tokens")}}
        row["total_tokens"] = usage.get("total_tokens")
        writer.writerow([_cell(row.get(c)) for c in CSV_COLUMNS])
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data
