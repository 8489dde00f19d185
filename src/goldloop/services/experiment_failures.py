"""An experiment's failures: how many of its runs failed (on any key, and per key) and the
failing runs themselves, a page at a time: the experiment page's *failures only* filter. The
database counts and picks them (``goldloop.store.experiment_failures``); no score is read here.

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
from goldloop.services.experiment_results import MAX_LIMIT, ResultsPage, _rows, cursor_pk
from goldloop.services.experiments import Experiment, build, load
from goldloop.store import experiment_failures as failures_store
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


def _counts(conn: Connection, who: Principal, project_id: str, pass_mark: float) -> FailureCounts:
    """Counted by the database (``goldloop.store.experiment_failures``): no score is read."""
    tally = failures_store.failure_tally(conn, who.workspace_id, project_id, pass_mark)
    by_key = {key: tally.call_failed + n for key, n in tally.by_key.items()}
    return FailureCounts(tally.runs, tally.call_failed + tally.scored_failing, by_key, pass_mark)


def failure_counts(
    ctx: ServiceContext, who: Principal, ref: str, pass_mark: float = score_marks.PASS_MARK
) -> FailureCounts:
    check_pass_mark(pass_mark)
    return ctx.db.read(lambda conn: _counts(conn, who, load(conn, who, ref).id, pass_mark))


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
    experiment's failure counts. A key no result of the experiment has keeps no run."""
    check_pass_mark(pass_mark)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    after = cursor_pk(cursor)

    def read(
        conn: Connection,
    ) -> tuple[Experiment, list[dict[str, Any]], list[RunScore], FailureCounts]:
        row = load(conn, who, ref)
        counts = _counts(conn, who, row.id, pass_mark)
        runs: list[dict[str, Any]] = []
        if key is None or key in counts.by_key:
            runs = failures_store.failing_runs(
                conn, who.workspace_id, row.id, key=key, pass_mark=pass_mark, after_pk=after,
                limit=limit + 1,
            )  # fmt: skip
        given = store.scores_for_runs(conn, who.workspace_id, [r["id"] for r in runs[:limit]])
        return build(conn, who, [row])[0], runs, given, counts

    experiment, runs, given, counts = ctx.db.read(read)
    more = len(runs) > limit
    runs = runs[:limit]
    page = ResultsPage(experiment, _rows(runs, given), str(runs[-1]["pk"]) if more else None)
    return page, counts
