"""Scores stored many at a time (an online rule's batch, ``feedback_batch.create_batch``) make
their hours' rollups stale like one stored by ``feedback.create``: figures read with rollups
right after the batch, before the rollup worker runs again, are the figures of the runs."""

from __future__ import annotations

from typing import Any

from tests.test_rollups import HOUR, SPAN_H, T0, Traffic, _same_overview

from goldloop.services import feedback, feedback_batch, overview, projects
from goldloop.services.context import ServiceContext
from goldloop.services.rollups import RollupWorker
from run_rows import principal


def test_a_batch_of_scores_on_rolled_hours_reads_exactly(ctx: ServiceContext) -> None:
    who = principal(ctx)
    traffic = Traffic(ctx, who, 23)
    traffic.make_traces(40)
    traffic.send_all()
    worker = RollupWorker(ctx)
    while worker.tick():
        pass
    pid = projects.get_or_create(ctx, who, "alpha").id
    args: dict[str, Any] = {"start": T0, "end": T0 + SPAN_H * HOUR, "bucket_us": 3 * HOUR}

    def compare() -> overview.Overview:
        got = overview.project_overview(ctx, who, pid, **args)
        want = overview.project_overview(ctx, who, pid, rollups=False, **args)
        assert got.from_rollups
        _same_overview(got, want)
        return got

    before = compare()
    items = [feedback.NewFeedback(key="batched", run_id=rid, score=0.5) for rid in traffic.runs]
    items += [
        feedback.NewFeedback(key="batched_trace", trace_id=tid, score=1.0) for tid in traffic.traces
    ]
    results = feedback_batch.create_batch(ctx, [(who, items)])
    assert all(isinstance(r, feedback.Created) for r in results[0])
    after = compare()  # the worker has not run since: the marks keep the figures exact
    keys = {s.key for s in after.scores}
    assert {"batched", "batched_trace"} <= keys
    assert not {"batched", "batched_trace"} & {s.key for s in before.scores}
