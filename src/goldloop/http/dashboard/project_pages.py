"""Projects: the list and one project's overview with its charts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from goldloop.domain import latency_histogram as lh
from goldloop.domain.errors import InvalidInput
from goldloop.http.dashboard import charts, formatting, time_range, web
from goldloop.services import overview, project_summaries, projects, rollup_reads, run_queries
from goldloop.store.trace_stats import ScoreBucket

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

DEFAULT_RANGE = "24h"


@router.get("/")
def home(session: web.SignedIn) -> Response:
    return web.redirect("/projects")


@router.get("/projects")
def project_list(
    request: Request,
    session: web.SignedIn,
    after: str | None = None,
    range: str | None = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    span = time_range.choose(ctx.clock(), range, start, end, default=DEFAULT_RANGE)
    page = projects.list_projects(ctx, who, limit=100, cursor=after)
    figures = project_summaries.summaries(
        ctx, who, page.items, start=span.start or 0, end=span.end or ctx.clock()
    )
    production = [p for p in page.items if not project_summaries.is_experiment(p)]
    experiments = [p for p in page.items if project_summaries.is_experiment(p)]
    next_url = (
        web.query("/projects", {"after": page.next_cursor, **span.params()})
        if page.next_cursor
        else None
    )

    def preset_url(key: str) -> str:
        return web.query("/projects", {"range": key})

    return web.render(
        request,
        "projects.html",
        sections=[
            ("Projects", "production", production),
            ("Experiments", "experiments", experiments),
        ],
        any_projects=bool(page.items),
        figures=figures,
        span=span,
        links={
            p.id: web.query(
                f"/projects/{web.seg(p.id)}", {} if span.key == DEFAULT_RANGE else span.params()
            )
            for p in page.items
        },
        presets=[(k, label, preset_url(k)) for k, (label, _) in time_range.PRESETS.items()],
        from_value=time_range.input_value(span.start) if span.key == "custom" else "",
        to_value=time_range.input_value(span.end) if span.key == "custom" else "",
        next_url=next_url,
        percentile_bound=f"{lh.RELATIVE_ERROR:.1%}",
    )


def _charts(buckets: list[dict[str, Any]], level: str) -> list[charts.Chart]:
    starts = [b["start"] for b in buckets]
    counts = [float(b["count"]) for b in buckets]
    errors = [float(b["errors"]) for b in buckets]
    return [
        charts.bar_chart(
            "Traces" if level == "traces" else "Runs",
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


def _feedback_chart(rows: list[ScoreBucket], starts: list[int]) -> charts.Chart:
    """Mean score per feedback key, by the start time of the runs scored (the four keys with
    most scores)."""
    index = {s: i for i, s in enumerate(starts)}
    volume: dict[str, int] = {}
    for row in rows:
        volume[row.key] = volume.get(row.key, 0) + row.scored
    keys = sorted((k for k, n in volume.items() if n), key=lambda k: (-volume[k], k))[:4]
    series = []
    for css, key in zip(FEEDBACK_SERIES, keys, strict=False):
        values: list[float | None] = [None] * len(starts)
        for row in rows:
            if row.key == key and row.bucket_start in index and row.scored:
                values[index[row.bucket_start]] = row.score_sum / row.scored
        series.append((key, css, values))
    return charts.line_chart("Feedback: mean score", starts, series, formatting.number)


@router.get("/projects/{project_id}")
def project_overview(
    request: Request,
    project_id: str,
    session: web.SignedIn,
    range: str | None = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    filter: str = "",
    level: str = "traces",
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    span = time_range.choose(ctx.clock(), range, start, end, default=DEFAULT_RANGE)
    if span.start is None or span.end is None:  # not reached: a default range is always set
        raise InvalidInput("no time range")
    level = level if level in overview.LEVELS else "traces"
    start_us = span.start
    if span.end - span.start >= time_range.DAY:
        # a day or more: buckets of whole hours from the hour the range starts in, so every
        # whole hour of it is read from the hourly rollups (services.rollup_reads)
        start_us -= start_us % time_range.HOUR
        bucket = time_range.hour_bucket_for(span.end - start_us)
    else:
        bucket = time_range.bucket_for(span.end - span.start)
    bucket_us = run_queries.parse_bucket(bucket)
    base = f"/projects/{web.seg(project.id)}"
    problem: dict[str, Any] | None = None
    try:
        view = overview.project_overview(
            ctx,
            who,
            project.id,
            start=start_us,
            end=span.end,
            bucket_us=bucket_us,
            filter=filter,
            level=level,
        )
    except InvalidInput as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        position = details.get("position")
        problem = {
            "message": exc.message,
            "position": position if isinstance(position, int) else None,
        }
        view = overview.project_overview(
            ctx, who, project.id, start=start_us, end=span.end, bucket_us=bucket_us, level=level
        )
    shown_filter = "" if problem else filter

    def url(**changes: Any) -> str:
        params = {**span.params(), "filter": shown_filter, "level": level, **changes}
        if params["level"] == "traces":
            params.pop("level")
        return web.query(base, params)

    def preset_url(key: str) -> str:
        return url(range=key, **{"from": None, "to": None})

    starts = [b["start"] for b in view.buckets]
    runs_params = {"filter": shown_filter or ("root" if level == "traces" else ""), **span.params()}
    return web.render(
        request,
        "project.html",
        project=project,
        run_count=projects.run_count(ctx, project),
        span=span,
        range_start=start_us,
        presets=[(k, label, preset_url(k)) for k, (label, _) in time_range.PRESETS.items()],
        from_value=time_range.input_value(span.start) if span.key == "custom" else "",
        to_value=time_range.input_value(span.end) if span.key == "custom" else "",
        level=level,
        level_urls={lv: url(level=lv) for lv in overview.LEVELS},
        filter_text=filter,
        problem=problem,
        bucket=bucket,
        summary=view.summary,
        percentile_note=rollup_reads.PERCENTILE_NOTE if view.from_rollups else None,
        runs_url=web.query_keep_empty(f"{base}/runs", runs_params, keep=("filter",)),
        charts=[*_charts(view.buckets, level), _feedback_chart(view.scores, starts)],
    )
