"""LangSmith's ``POST /runs/stats`` (``client.get_run_stats``): aggregates over the runs a
``/runs/query``-style body selects, in LangSmith's field names.

Times are LangSmith's: latencies in seconds, ``last_run_start_time`` as ISO-8601. Fields Goldloop
has no data for (time to first token, streaming) are ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from goldloop.domain import percentiles
from goldloop.domain.clock import to_iso
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.langsmith.run_reads import query_conditions
from goldloop.store import run_stats as store

P50, P99 = 500, 990


def _percentile(t: store.Totals, column: str, count: int, permille: int) -> float | None:
    return percentiles.interpolate(count, permille, t.ranks.get(column, {})) if count else None


def _seconds(us: float | None) -> float | None:
    return None if us is None else us / 1_000_000


def run_stats(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
    conditions = query_conditions(ctx, who, body)
    t = ctx.db.read(
        lambda c: store.totals(
            c, who.workspace_id, conditions, project_ids=None, permilles=(P50, P99)
        )
    )
    median_tokens = _percentile(t, "total_tokens", t.tokens_count, P50)
    return {
        "run_count": t.count,
        "latency_p50": _seconds(_percentile(t, "latency_us", t.latency_count, P50)),
        "latency_p99": _seconds(_percentile(t, "latency_us", t.latency_count, P99)),
        "first_token_p50": None,
        "first_token_p99": None,
        "total_tokens": t.total_tokens,
        "prompt_tokens": t.input_tokens,
        "completion_tokens": t.output_tokens,
        "median_tokens": None if median_tokens is None else round(median_tokens),
        "last_run_start_time": None if t.last_start is None else to_iso(t.last_start),
        "error_rate": t.errors / t.count if t.count else None,
        "streaming_rate": None,
        "total_cost": t.cost,
        "prompt_cost": t.input_cost,
        "completion_cost": t.output_cost,
        "feedback_stats": None,
        "run_facets": None,
    }


# What a session (project) carries with ``include_stats``: counts, latency and errors of its
# traces (root runs); tokens and costs of all its runs (a root run does not hold its trace's sum).
TRACE_STATS = ("run_count", "latency_p50", "latency_p99", "last_run_start_time", "error_rate")
USAGE_STATS = (
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "total_cost",
    "prompt_cost",
    "completion_cost",
)


def session_stats(ctx: ServiceContext, who: Principal, project_id: str) -> dict[str, Any]:
    """``read_project(..., include_stats=True)``: the project's statistics as LangSmith gives
    them on a session."""
    traces = run_stats(ctx, who, {"session": [project_id], "is_root": True})
    usage = run_stats(ctx, who, {"session": [project_id]})
    return {name: traces[name] for name in TRACE_STATS} | {
        name: usage[name] for name in USAGE_STATS
    }
