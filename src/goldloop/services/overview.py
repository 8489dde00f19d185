"""A project's overview over a time range: per-bucket and whole-range figures, counted by trace
(the default) or by run, for the runs a filter selects, and mean feedback scores by the start
time of the runs they are on.

Trace level: a trace is its root run, counted in the bucket of the root's start; its latency is
the root's; it is an error when any of its runs errored (see ``store.trace_stats``); tokens and
cost add up every run of the counted traces that started in the bucket. A filter selects the
traces holding a run that matches it (``root``, or no filter, selects every trace).

Run (span) level: every run matching the filter counts, as ``/projects/{id}/stats`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import filters
from goldloop.domain.errors import InvalidInput
from goldloop.services import rollup_reads
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.run_queries import MAX_BUCKETS, PERCENTILES, _bucket_view, resolve_project
from goldloop.store import run_queries as run_store
from goldloop.store import trace_stats as store
from goldloop.store.rollup_pieces import Piece
from goldloop.store.run_filters import Cond, compile_filter
from goldloop.store.run_stats import all_of
from goldloop.store.trace_stats import ScoreBucket

LEVELS = ("traces", "runs")
_ALL_TRACES = ("", "root")


@dataclass(frozen=True)
class Overview:
    level: str
    start: int
    end: int
    bucket_us: int
    buckets: list[dict[str, Any]]
    summary: dict[str, Any]
    scores: list[ScoreBucket]
    # True when whole hours were read from hourly rollups (percentiles within 0.5%)
    from_rollups: bool = False


def project_overview(
    ctx: ServiceContext,
    who: Principal,
    project: str,
    *,
    start: int,
    end: int,
    bucket_us: int,
    filter: str | None = None,
    level: str = "traces",
    rollups: bool = True,
) -> Overview:
    """The overview; ``rollups=False`` reads every run of the range (tests compare the two)."""
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}", details={"field": "level"})
    if end <= start:
        raise InvalidInput("end must be after start", details={"field": "end"})
    n_buckets = -(-(end - start) // bucket_us)
    if n_buckets > MAX_BUCKETS:
        raise InvalidInput(f"at most {MAX_BUCKETS} buckets", details={"field": "bucket"})
    text = (filter or "").strip()
    node = filters.parse(text)
    proj = resolve_project(ctx, who, project)
    ws = who.workspace_id
    compiled = compile_filter(node, dialect=ctx.db.dialect, workspace_id=ws, now=ctx.clock())
    if level == "runs":
        counted: Cond = compiled
        spend: Cond = compiled
    else:
        matching = (
            []
            if text in _ALL_TRACES
            else [store.traces_matching(ws, proj.id, compiled, start=start, end=end)]
        )
        counted = all_of([store.roots(), *matching])
        spend = all_of(matching)
    permilles = list(PERCENTILES.values())
    whole_us = end - start

    # Rollups hold every run: they serve the runs level without a filter and the trace level
    # without one (or with "root", which selects every trace); other filters read the runs.
    rolled = rollups and ((text in _ALL_TRACES) if level == "traces" else text == "")

    def read(conn: Connection) -> Overview:
        if rolled:
            found = _from_rollups(conn)
            if found is not None:
                return found
        return _live(conn)

    def _from_rollups(conn: Connection) -> Overview | None:
        pieces = rollup_reads.collect(
            conn,
            ws,
            [proj.id],
            start=start,
            end=end,
            origin=start,
            bucket_us=bucket_us,
            root_hist=level == "traces",
            run_hist=level == "runs",
        )
        if pieces is None:
            return None
        roots = level == "traces"
        by_bucket = {b: p for (_, b), p in pieces.items()}
        buckets = []
        whole = Piece()
        for b in range(start, start + n_buckets * bucket_us, bucket_us):
            piece = by_bucket.get(b)
            if piece is None:
                buckets.append(_bucket_view(b, None, {}))
                continue
            _, ranks = rollup_reads.latency_ranks(piece, roots=roots, permilles=permilles)
            buckets.append(_bucket_view(b, rollup_reads.totals(b, piece, roots=roots), ranks))
            whole.add(piece)
        _, ranks = rollup_reads.latency_ranks(whole, roots=roots, permilles=permilles)
        summary = _bucket_view(start, rollup_reads.totals(start, whole, roots=roots), ranks)
        scores = rollup_reads.scores(by_bucket)
        return Overview(level, start, end, bucket_us, buckets, summary, scores, True)

    def _live(conn: Connection) -> Overview:
        def totals(cond: Cond) -> list[run_store.BucketTotals]:
            return run_store.bucket_totals(
                conn, ws, proj.id, cond, start=start, end=end, bucket_us=bucket_us
            )

        def ranks(size: int) -> dict[int, dict[int, int]]:
            return run_store.latency_order_statistics(
                conn,
                ws,
                proj.id,
                counted,
                start=start,
                end=end,
                bucket_us=size,
                permilles=permilles,
            )

        if level == "traces":
            by_start = {
                t.bucket: t
                for t in store.trace_bucket_totals(
                    conn, ws, proj.id, spend, start=start, end=end, bucket_us=bucket_us
                )
            }
            errored = store.errored_traces(
                conn, ws, proj.id, counted, start=start, end=end, bucket_us=bucket_us
            )
            for b, t in list(by_start.items()):
                by_start[b] = replace(t, errors=errored.get(b, 0))
        else:
            by_start = {t.bucket: t for t in totals(counted)}
        bucket_ranks = ranks(bucket_us)
        whole_ranks = ranks(whole_us).get(start, {})
        buckets = [
            _bucket_view(b, by_start.get(b), bucket_ranks.get(b, {}))
            for b in range(start, start + n_buckets * bucket_us, bucket_us)
        ]
        summary = _bucket_view(start, _sum(start, list(by_start.values())), whole_ranks)
        scores = store.scores_by_run_start(
            conn,
            ws,
            proj.id,
            spend if level == "traces" else compiled,
            start=start,
            end=end,
            bucket_us=bucket_us,
        )
        return Overview(level, start, end, bucket_us, buckets, summary, scores)

    return ctx.db.read(read)


def _sum(start: int, items: list[run_store.BucketTotals]) -> run_store.BucketTotals | None:
    """The whole range's totals from its buckets' (latency mean weighted by count)."""
    if not items:
        return None
    latency_n = sum(t.latency_count for t in items)
    weighted = sum((t.latency_avg_us or 0.0) * t.latency_count for t in items)
    return run_store.BucketTotals(
        start,
        sum(t.count for t in items),
        sum(t.errors for t in items),
        sum(t.input_tokens for t in items),
        sum(t.output_tokens for t in items),
        sum(t.total_tokens for t in items),
        sum(t.cost for t in items),
        latency_n,
        weighted / latency_n if latency_n else None,
    )
