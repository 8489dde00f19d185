"""Hourly rollups (Issue #23): the projects list and the overview read from rollups give the same
figures as reading every run (counts, sums, errors, tokens, scores exact; costs and means to
float rounding; latency percentiles within the histogram's stated bound), whatever the rollup
worker has seen: run at random points, not at all, or lagging behind the writes."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import pytest

from goldloop.domain import latency_histogram as lh
from goldloop.services import erasure, feedback, ingest, overview, project_summaries, projects
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.retention import RetentionWorker, set_policy
from goldloop.services.rollups import RollupWorker
from run_rows import principal

HOUR = 3_600_000_000
DAY = 24 * HOUR
T0 = 1_780_000_000 * 1_000_000 // HOUR * HOUR  # on the hour
SPAN_H = 30  # hours of traffic
BOUND = lh.RELATIVE_ERROR + 1e-9


def _close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


class Traffic:
    """Seeded random traces in two projects: roots and steps sent in random order, steps that
    start up to half an hour before their root, errors and end times sent later as patches."""

    def __init__(self, ctx: ServiceContext, who: Principal, seed: int) -> None:
        self.ctx, self.who, self.rng = ctx, who, random.Random(seed)
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.later: list[tuple[str, dict[str, Any]]] = []
        self.runs: list[str] = []
        self.traces: list[str] = []
        self.feedback: list[str] = []
        self.n = 0

    def make_traces(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            self.n += 1
            tid = f"t{self.n}"
            project = rng.choice(["alpha", "beta"])
            start = T0 + rng.randrange(SPAN_H * HOUR)
            self.traces.append(tid)
            items = [self._run(project, tid, f"{tid}-0", None, start)]
            for i in range(1, rng.randrange(1, 5)):
                at = start + rng.randrange(-HOUR // 2, HOUR)  # near its root: clock skew too
                items.append(self._run(project, tid, f"{tid}-{i}", f"{tid}-0", at))
            for item in items:
                self.runs.append(item[1]["id"])
                self.pending.append(item)

    def _run(
        self, project: str, tid: str, rid: str, parent: str | None, start: int
    ) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        item: dict[str, Any] = {
            "id": rid,
            "trace_id": tid,
            "name": "step" if parent else "agent",
            "kind": "llm" if parent else "chain",
            "start_time": start,
        }
        if parent:
            item["parent_id"] = parent
        if rng.random() < 0.6:
            item["usage"] = {"input_tokens": rng.randrange(50), "output_tokens": rng.randrange(9)}
            item["cost"] = rng.randrange(1, 1000) / 997
        end = start + int(rng.lognormvariate(12, 1.2))
        patch: dict[str, Any] = {"id": rid, "trace_id": tid}
        if rng.random() < 0.15:
            patch["error"] = "boom"
        if rng.random() < 0.5:  # the end (and any error) arrives later, as a patch
            patch["end_time"] = end
            self.later.append((project, patch))
        elif rng.random() < 0.9:
            item.update(patch, end_time=end)
        return project, item

    def send_some(self) -> None:
        rng = self.rng
        rng.shuffle(self.pending)
        rng.shuffle(self.later)
        take = self.pending[: rng.randrange(len(self.pending) + 1)]
        self.pending = self.pending[len(take) :]
        if rng.random() < 0.5:
            patches = rng.randrange(len(self.later) + 1)
            take += self.later[:patches]
            self.later = self.later[patches:]
        by_project: dict[str, list[dict[str, Any]]] = {}
        for project, item in take:
            by_project.setdefault(project, []).append(item)
        for project, items in by_project.items():
            ingest.ingest_native(self.ctx, self.who, {"project": project, "runs": items})

    def send_all(self) -> None:
        for project, item in [*self.pending, *self.later]:
            ingest.ingest_native(self.ctx, self.who, {"project": project, "runs": [item]})
        self.pending, self.later = [], []

    def feedback_changes(self) -> None:
        rng = self.rng
        for _ in range(rng.randrange(6)):
            if self.feedback and rng.random() < 0.4:
                fid = rng.choice(self.feedback)
                try:
                    if rng.random() < 0.5:
                        feedback.update(self.ctx, self.who, fid, {"score": rng.randrange(5) / 4})
                    else:
                        feedback.delete(self.ctx, self.who, fid)
                        self.feedback.remove(fid)
                except Exception:
                    pass
                continue
            key = rng.choice(["correct", "quality"])
            if rng.random() < 0.7 and self.runs:
                new = feedback.NewFeedback(key=key, run_id=rng.choice(self.runs), score=1)
            else:
                new = feedback.NewFeedback(key=key, trace_id=rng.choice(self.traces), score=0.5)
            self.feedback.append(feedback.create(self.ctx, self.who, new).feedback.id)


def _worker_at_random(rng: random.Random, worker: RollupWorker) -> None:
    roll = rng.random()
    if roll < 0.3:
        worker.tick()
    elif roll < 0.5:
        while worker.tick():
            pass


def _ranges(rng: random.Random) -> list[tuple[int, int, int]]:
    """(start, end, bucket): whole hours, ragged edges, buckets that cut hours."""
    ragged = T0 + rng.randrange(4 * HOUR)
    return [
        (T0, T0 + SPAN_H * HOUR, 6 * HOUR),
        (T0 - 2 * HOUR, T0 + (SPAN_H + 3) * HOUR, HOUR),
        (ragged, ragged + 20 * HOUR + rng.randrange(HOUR), 3 * HOUR),
        (ragged, ragged + 26 * HOUR, 90 * 60_000_000),
        (T0 + 5 * HOUR + 7, T0 + 9 * HOUR, 4 * HOUR),
    ]


def _same_overview(a: overview.Overview, b: overview.Overview) -> None:
    assert len(a.buckets) == len(b.buckets)
    for got, want in [*zip(a.buckets, b.buckets, strict=True), (a.summary, b.summary)]:
        where = f"bucket {got['start']}"
        assert got["start"] == want["start"], where
        assert got["count"] == want["count"], where
        assert got["errors"] == want["errors"], where
        assert got["tokens"] == want["tokens"], where
        assert _close(got["cost"], want["cost"]), where
        assert _close(got["latency_ms"]["avg"], want["latency_ms"]["avg"]), where
        for label in ("p50", "p95", "p99"):
            g, w = got["latency_ms"][label], want["latency_ms"][label]
            assert (g is None) == (w is None), where
            if g is not None and w is not None:
                assert abs(g - w) <= BOUND * abs(w) + 1e-9, (where, label, g, w)
    assert [(s.key, s.bucket_start, s.scored) for s in a.scores] == [
        (s.key, s.bucket_start, s.scored) for s in b.scores
    ]
    for s, t in zip(a.scores, b.scores, strict=True):
        assert _close(s.score_sum, t.score_sum)


def _check(ctx: ServiceContext, who: Principal, rng: random.Random) -> int:
    """Compare every figure with rollups and without; returns how many reads used rollups."""
    used = 0
    ids = {p.id: p for p in projects.list_projects(ctx, who, limit=100).items}
    for start, end, bucket in _ranges(rng):
        for pid in ids:
            for level in overview.LEVELS:
                for text in ("", "root") if level == "traces" else ("",):
                    args: dict[str, Any] = {
                        "start": start,
                        "end": end,
                        "bucket_us": bucket,
                        "level": level,
                        "filter": text,
                    }
                    got = overview.project_overview(ctx, who, pid, **args)
                    want = overview.project_overview(ctx, who, pid, rollups=False, **args)
                    assert not want.from_rollups
                    used += got.from_rollups
                    _same_overview(got, want)
        page = list(ids.values())
        got_list = project_summaries.summaries(ctx, who, page, start=start, end=end)
        want_list = project_summaries.summaries(ctx, who, page, start=start, end=end, rollups=False)
        for pid, want_fig in want_list.items():
            got_fig = got_list[pid]
            assert got_fig["traces"] == want_fig["traces"]
            assert got_fig["error_rate"] == want_fig["error_rate"]
            assert got_fig["last_start"] == want_fig["last_start"]
            assert got_fig["feedback_more"] == want_fig["feedback_more"]
            assert _close(got_fig["cost"], want_fig["cost"])
            for g, w in zip(got_fig["feedback"], want_fig["feedback"], strict=True):
                assert (g["key"], g["n"]) == (w["key"], w["n"])
                assert _close(g["mean"], w["mean"])
            for label, w in want_fig["latency_ms"].items():
                g = got_fig["latency_ms"][label]
                assert (g is None) == (w is None)
                if g is not None and w is not None:
                    assert abs(g - w) <= BOUND * abs(w) + 1e-9
    return used


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_give_the_figures_of_the_runs(ctx: ServiceContext, seed: int) -> None:
    who = principal(ctx)
    rng = random.Random(seed * 7919)
    traffic = Traffic(ctx, who, seed)
    worker = RollupWorker(ctx)
    used = 0
    for step in range(6):
        traffic.make_traces(25)
        traffic.send_some()
        _worker_at_random(rng, worker)
        traffic.feedback_changes()
        if rng.random() < 0.3:
            worker = RollupWorker(ctx)  # a restarted worker keeps the stored cursor
        _worker_at_random(rng, worker)
        if step % 2:
            used += _check(ctx, who, rng)
    traffic.send_all()
    traffic.feedback_changes()
    erasure.delete_traces(ctx, who, trace_ids=rng.sample(traffic.traces, 5))
    used += _check(ctx, who, rng)  # the worker has not seen the last writes
    # retention: beta keeps a day, the clock two days after the first traffic hour + 5 h
    set_policy(ctx, who, "beta", keep_days=1)
    later = replace(ctx, clock=lambda: T0 + DAY + 5 * HOUR)
    retention = RetentionWorker(later)
    while retention.tick():
        pass
    used += _check(ctx, who, rng)
    while worker.tick():
        pass
    used += _check(ctx, who, rng)
    assert used > 0  # rollups were read, not only the runs


def test_a_lagging_worker_still_gives_exact_figures(ctx: ServiceContext) -> None:
    who = principal(ctx)
    traffic = Traffic(ctx, who, 11)
    traffic.make_traces(40)
    traffic.send_all()
    at = {"known": T0 + 12 * HOUR + 300_000_000, "scored": T0 + 20 * HOUR + 300_000_000}
    for tid, start in at.items():
        runs = [
            {"id": f"{tid}-0", "trace_id": tid, "name": "a", "start_time": start},
            {"id": f"{tid}-1", "trace_id": tid, "parent_id": f"{tid}-0", "name": "b"},
        ]
        runs[1]["start_time"] = start + 1_000_000
        for run in runs:
            run["end_time"] = run["start_time"] + 2_000_000
        ingest.ingest_native(ctx, who, {"project": "alpha", "runs": runs})
    worker = RollupWorker(ctx)
    while worker.tick():
        pass
    pid = projects.get_or_create(ctx, who, "alpha").id
    args: dict[str, Any] = {"start": T0, "end": T0 + SPAN_H * HOUR, "bucket_us": HOUR}

    def compare() -> overview.Overview:
        got = overview.project_overview(ctx, who, pid, **args)
        want = overview.project_overview(ctx, who, pid, rollups=False, **args)
        assert got.from_rollups
        _same_overview(got, want)
        return got

    before = compare()
    # after the worker's last tick: a new trace in a rolled hour, and a step of a trace in
    # another rolled hour that errors late (the trace errored: counted in its root's hour)
    late = [{"id": "late-0", "trace_id": "late", "name": "a", "start_time": T0 + 5 * HOUR + 9}]
    ingest.ingest_native(ctx, who, {"project": "alpha", "runs": late})
    patch = {"id": "known-1", "trace_id": "known", "error": "late failure"}
    ingest.ingest_native(ctx, who, {"project": "alpha", "runs": [patch]})
    got = compare()
    assert got.summary["count"] == before.summary["count"] + 1
    assert got.summary["errors"] == before.summary["errors"] + 1
    # a score on a rolled run, after the worker's last tick
    feedback.create(ctx, who, feedback.NewFeedback(key="late", run_id="scored-1", score=0.25))
    got = compare()
    assert ("late", T0 + 20 * HOUR, 1) in [(s.key, s.bucket_start, s.scored) for s in got.scores]


def test_histogram_percentiles_are_within_the_bound() -> None:
    rng = random.Random(5)
    values = [*sorted(int(rng.lognormvariate(13, 1.5)) for _ in range(2001)), 0, 3, 99, 100]
    values.sort()
    hist: lh.Histogram = {}
    lh.add_values(hist, values)
    got = lh.rank_values(hist, range(len(values)))
    for rank, v in enumerate(values):
        assert abs(got[rank] - v) <= BOUND * v
