"""An experiment's failures: how many of its runs failed (on any key, and per key) and the
failing runs themselves, a page at a time: the experiment page's *failures only* filter.

A run fails when the target's call failed, or one of its results is an evaluator error or a
pass/fail or 0-1 score below the pass mark (``goldloop.domain.score_marks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import score_marks
from goldloop.domain.errors import InvalidInput
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.experiment_results import (
    MAX_LIMIT,
    ResultsPage,
    _all_root_runs,
    _error_text,
    _result,
    _rows,
)
from goldloop.services.experiments import Experiment, build, load
from goldloop.store import experiments as store
from goldloop.store.experiments import RunScore

__all__ = ["FailureCounts", "check_pass_mark", "failing_results", "failure_counts"]


@dataclass(frozen=True)
class FailureCounts:
    runs: int
    """Root runs of the experiment."""
    failing: int
    """Runs that failed on any key (or whose call failed)."""
    by_key: dict[str, int]
    """Per score key, the runs that failed on it (a failed call counts for every key)."""
    pass_mark: float


def check_pass_mark(pass_mark: float) -> float:
    if not score_marks.check_pass_mark(pass_mark):
        raise InvalidInput("the pass mark must be a number from 0 to 1", details={"field": "pass"})
    return pass_mark


@dataclass
class _Scan:
    counts: FailureCounts
    failing: list[tuple[int, str]]  # (pk, run id) of failing runs, in stored order
    by_key: dict[str, list[tuple[int, str]]]
    scores: dict[str, list[RunScore]]


def _scan(conn: Connection, who: Principal, project_id: str, pass_mark: float) -> _Scan:
    runs = _all_root_runs(conn, who, project_id)
    scores: dict[str, list[RunScore]] = {}
    for s in store.scores_for_project(conn, who.workspace_id, project_id):
        scores.setdefault(s.run_id, []).append(s)
    keys = sorted({s.key for given in scores.values() for s in given})
    failing: list[tuple[int, str]] = []
    by_key: dict[str, list[tuple[int, str]]] = {key: [] for key in keys}
    for run in runs:
        error = _error_text(run)
        results = [_result(s) for s in scores.get(run["id"], [])]
        place = (int(run["pk"]), str(run["id"]))
        if score_marks.run_fails(error, results, None, pass_mark):
            failing.append(place)
        for key in keys:
            if score_marks.run_fails(error, results, key, pass_mark):
                by_key[key].append(place)
    counts = FailureCounts(
        len(runs), len(failing), {k: len(v) for k, v in by_key.items()}, pass_mark
    )
    return _Scan(counts, failing, by_key, scores)


def failure_counts(
    ctx: ServiceContext, who: Principal, ref: str, pass_mark: float = score_marks.PASS_MARK
) -> FailureCounts:
    check_pass_mark(pass_mark)
    return ctx.db.read(lambda conn: _scan(conn, who, load(conn, who, ref).id, pass_mark).counts)


def failing_results(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    *,
    key: str | None = None,
    pass_mark: float = score_marks.PASS_MARK,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[ResultsPage, FailureCounts]:
    """One page of the runs that failed (on ``key``, or on any key), in stored order, and the
    experiment's failure counts."""
    check_pass_mark(pass_mark)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    try:
        after = int(cursor) if cursor is not None else None
    except ValueError:
        raise InvalidInput("not a cursor from this list", details={"field": "cursor"}) from None

    def read(conn: Connection) -> tuple[Experiment, list[dict[str, Any]], list[RunScore], _Scan]:
        row = load(conn, who, ref)
        scan = _scan(conn, who, row.id, pass_mark)
        chosen = scan.failing if key is None else scan.by_key.get(key, [])
        wanted = [run_id for pk, run_id in chosen if after is None or pk > after][: limit + 1]
        runs = store.root_runs_by_id(conn, who.workspace_id, row.id, wanted)
        given = [s for run_id in wanted[:limit] for s in scan.scores.get(run_id, [])]
        return build(conn, who, [row])[0], runs, given, scan

    experiment, runs, given, scan = ctx.db.read(read)
    more = len(runs) > limit
    runs = runs[:limit]
    page = ResultsPage(experiment, _rows(runs, given), str(runs[-1]["pk"]) if more else None)
    return page, scan.counts
