"""Reading a range from hourly rollups: whole clean hours from ``run_rollups``, everything else
(the partial hours at the edges of the range, the current hour, hours touched since the rollup
worker's last tick or marked stale) computed from the runs, all in the caller's snapshot.

Counts and sums are the same as the runs give. A latency percentile of a bucket that holds a
rolled hour comes from merged histograms, within ``latency_histogram.RELATIVE_ERROR`` (0.5%);
a bucket computed wholly from the runs keeps the exact value. ``collect`` returns None (the
caller reads the runs as before) when no whole clean hour falls in the range, or when the worker
is too far behind (more than ``TAIL_LIMIT`` runs past its cursor).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sqlalchemy.engine import Connection

from goldloop.domain import latency_histogram as lh
from goldloop.domain import percentiles
from goldloop.store import rollups as store
from goldloop.store.rollup_pieces import HOUR, Piece, compute
from goldloop.store.run_queries import BucketTotals, _finite, _whole
from goldloop.store.trace_stats import ScoreBucket

TAIL_LIMIT = 50_000
# shown on the pages that read rollups
PERCENTILE_NOTE = f"p50/p95 of whole hours from hourly histograms, within {lh.RELATIVE_ERROR:.1%}"


def collect(
    conn: Connection,
    workspace_id: str,
    project_ids: Sequence[str],
    *,
    start: int,
    end: int,
    origin: int,
    bucket_us: int,
    root_hist: bool,
    run_hist: bool,
) -> dict[tuple[str, int], Piece] | None:
    """{(project id, bucket start): its figures} over ``[start, end)`` in buckets of
    ``bucket_us`` from ``origin``; None when rollups cannot help (see the module doc)."""
    ids = list(project_ids)
    first = -(-start // HOUR) * HOUR
    last = end - end % HOUR
    if not ids or last - first < HOUR:
        return None
    cursor, _ = store.state(conn)
    if cursor == 0:
        return None
    tail = store.tail_hours(conn, ids, cursor, TAIL_LIMIT)
    if tail is None:
        return None
    stale = {h for _, h in tail | store.marked_hours(conn, ids, first, last)}

    def bucket_of(us: int) -> int:
        return origin + (us - origin) // bucket_us * bucket_us

    clean = [
        h
        for h in range(first, last, HOUR)
        if h not in stale and bucket_of(h) == bucket_of(h + HOUR - 1)
    ]
    if not clean:
        return None
    out: dict[tuple[str, int], Piece] = {}

    def into(pid: str, bucket: int, piece: Piece) -> None:
        found = out.get((pid, bucket))
        if found is None:
            out[(pid, bucket)] = piece
        else:
            found.add(piece)

    clean_set = set(clean)
    rolled = store.read(
        conn, ids, clean[0], clean[-1] + HOUR, root_hist=root_hist, run_hist=run_hist
    )
    for (pid, hour), piece in rolled.items():
        if hour in clean_set:
            into(pid, bucket_of(hour), piece)
    # the rest of the range, computed from the runs in as few spans as it takes
    cuts = [start, *sorted(clean_set | {h + HOUR for h in clean}), end]
    edges = sorted(set(cuts))
    spans: list[tuple[int, int]] = []
    for lo, hi in itertools.pairwise(edges):
        if lo in clean_set or hi <= start or lo >= end:
            continue
        if spans and spans[-1][1] == lo:
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    for lo, hi in spans:
        found = compute(
            conn,
            ids,
            start=lo,
            end=hi,
            origin=origin,
            bucket_us=bucket_us,
            workspace_id=workspace_id,
        )
        for (_, pid, bucket, _), piece in found.items():
            into(pid, bucket, piece)
    return out


def latency_ranks(
    piece: Piece, *, roots: bool, permilles: Sequence[int]
) -> tuple[int, dict[int, float]]:
    """(how many latencies, {rank: value} for the permilles): exact when the piece holds only
    values computed from the runs, else from its histogram (the piece's stored histograms are
    added up into it on the way)."""
    values = piece.root_values if roots else piece.run_values
    encoded = piece.root_encoded if roots else piece.run_encoded
    hist = piece.root_hist if roots else piece.run_hist
    if encoded:  # added up once, here, and kept: the piece may be merged into another next
        for flat in encoded:
            lh.add_encoded(hist, flat)
        encoded.clear()
    n = len(values) + sum(hist.values())
    if n == 0:
        return 0, {}
    wanted = set()
    for p in permilles:
        lo = percentiles.low_rank(n, p)
        wanted |= {lo, min(lo + 1, n - 1)}
    if not hist:
        ordered = sorted(values)
        return n, {r: float(ordered[r]) for r in wanted}
    merged = dict(hist)
    lh.add_values(merged, values)
    return n, lh.rank_values(merged, wanted)


def totals(bucket: int, piece: Piece, *, roots: bool) -> BucketTotals:
    """A piece as the overview's bucket totals: traces (roots) or runs."""
    n = piece.root_n if roots else piece.run_n
    latency_sum = piece.root_sum if roots else piece.run_sum
    return BucketTotals(
        bucket,
        piece.traces if roots else piece.runs,
        piece.errored if roots else piece.run_errors,
        _whole(piece.input_tokens),
        _whole(piece.output_tokens),
        _whole(piece.total_tokens),
        _finite(piece.cost),
        n,
        latency_sum / n if n else None,
    )


def scores(pieces: dict[int, Piece]) -> list[ScoreBucket]:
    rows = [
        ScoreBucket(key, bucket, n, total)
        for bucket, piece in pieces.items()
        for key, (n, total) in piece.scores.items()
        if n
    ]
    return sorted(rows, key=lambda s: (s.key, s.bucket_start))
