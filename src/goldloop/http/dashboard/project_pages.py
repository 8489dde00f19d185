"""Projects: the list and one project's overview with its charts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.http.dashboard import charts, formatting, web
from goldloop.services import feedback, projects, run_queries
from goldloop.store.feedback import StatsBucket

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

# The overview's time ranges: (label, length, bucket); about 24-48 buckets each.
RANGES = {
    "1h": ("Last hour", "1h", "2m"),
    "24h": ("Last 24 hours", "24h", "1h"),
    "7d": ("Last 7 days", "7d", "6h"),
    "30d": ("Last 30 days", "30d", "1d"),
}
DEFAULT_RANGE = "24h"


@router.get("/")
def home(session: web.SignedIn) -> Response:
    return web.redirect("/projects")


@router.get("/projects")
def project_list(request: Request, session: web.SignedIn, after: str | None = None) -> Response:
    ctx = web.ctx_of(request)
    page = projects.list_projects(ctx, session.principal, limit=100, cursor=after)
    rows = [(p, projects.run_count(ctx, p)) for p in page.items]
    next_url = web.query("/projects", {"after": page.next_cursor}) if page.next_cursor else None
    return web.render(request, "projects.html", rows=rows, next_url=next_url)


def _charts(buckets: list[dict[str, Any]]) -> list[charts.Chart]:
    starts = [b["start"] for b in buckets]
    counts = [float(b["count"]) for b in buckets]
    errors = [float(b["errors"]) for b in buckets]
    return [
        charts.bar_chart(
            "Runs",
            starts,
            [
                ("ok", "s-ok", [c - e for c, e in zip(counts, errors, strict=True)]),
                ("errors", "s-err", errors),
            ],
            formatting.number,
        ),
        charts.line_chart(
            "Error rate",
            starts,
            [("error rate", "s-err", [b["error_rate"] for b in buckets])],
            formatting.percent,
        ),
        charts.line_chart(
            "Latency",
            starts,
            [
                ("p50", "s-a", [b["latency_ms"]["p50"] for b in buckets]),
                ("p95", "s-b", [b["latency_ms"]["p95"] for b in buckets]),
            ],
            formatting.duration_ms,
        ),
        charts.bar_chart(
            "Tokens",
            starts,
            [
                ("input", "s-a", [float(b["tokens"]["input"] or 0) for b in buckets]),
                ("output", "s-b", [float(b["tokens"]["output"] or 0) for b in buckets]),
            ],
            formatting.number,
        ),
        charts.bar_chart(
            "Cost",
            starts,
            [("cost", "s-cost", [float(b["cost"] or 0.0) for b in buckets])],
            formatting.cost,
        ),
    ]


FEEDBACK_SERIES = ("s-a", "s-b", "s-c", "s-d")


def _feedback_chart(rows: list[StatsBucket], start: int, end: int, bucket_us: int) -> charts.Chart:
    """Mean score per feedback key over time (the four keys with most feedback)."""
    first = start // bucket_us * bucket_us
    starts = list(range(first, end, bucket_us))
    index = {s: i for i, s in enumerate(starts)}
    volume: dict[str, int] = {}
    for row in rows:
        volume[row.key] = volume.get(row.key, 0) + row.scored
    keys = sorted((k for k, n in volume.items() if n), key=lambda k: (-volume[k], k))[:4]
    series = []
    for css, key in zip(FEEDBACK_SERIES, keys, strict=False):
        values: list[float | None] = [None] * len(starts)
        for row in rows:
            if row.key == key and row.bucket_start in index and row.mean_score is not None:
                values[index[row.bucket_start]] = float(row.mean_score)
        series.append((key, css, values))
    return charts.line_chart("Feedback: mean score", starts, series, formatting.number)


@router.get("/projects/{project_id}")
def project_overview(
    request: Request, project_id: str, session: web.SignedIn, range: str = DEFAULT_RANGE
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    key = range if range in RANGES else DEFAULT_RANGE
    _, length, bucket = RANGES[key]
    end = ctx.clock()
    start = end - run_queries.parse_bucket(length)
    series = run_queries.project_stats(
        ctx, who, project.id, bucket=bucket, start=str(start), end=str(end)
    )
    whole = run_queries.project_stats(
        ctx, who, project.id, bucket=length, start=str(start), end=str(end)
    )["buckets"][0]
    bucket_us = run_queries.parse_bucket(bucket)
    scores = feedback.project_stats(
        ctx, who, project.id, bucket=bucket, since=start - bucket_us, until=end
    )
    return web.render(
        request,
        "project.html",
        project=project,
        run_count=projects.run_count(ctx, project),
        ranges=[(k, label, k == key) for k, (label, _, _) in RANGES.items()],
        range_label=RANGES[key][0],
        summary=whole,
        charts=[*_charts(series["buckets"]), _feedback_chart(scores, start, end, bucket_us)],
    )
