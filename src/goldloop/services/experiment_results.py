"""An experiment's results (one row per target call: example, repetition, run, scores) and the
paired comparison of two experiments (``goldloop.domain.comparison``, the same code the SDK's
``ExperimentResults.compare`` runs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.comparability import (
    ChangedPolicy,
    JudgePolicy,
    ScoreKeys,
    Side,
    compare_sides,
)
from goldloop.domain.comparison import (
    Attempt,
    ErrorPolicy,
    Failed,
    KeyComparison,
    Verdict,
    regression_verdicts,
)
from goldloop.domain.errors import InvalidInput
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.experiments import Experiment, aggregates_of, build, load
from goldloop.store import experiments as store
from goldloop.store.experiments import RunScore
from goldloop.store.projects import ProjectRow

MAX_LIMIT = 1000
_PAGE = 5000
_ID_CHUNK = 500  # run ids per IN (...) query
_PROVENANCE = ("evaluator", "evaluator_version", "judge_model", "prompt_hash", "error", "skipped")

__all__ = [
    "Comparison",
    "ResultRow",
    "ResultsPage",
    "compare_experiments",
    "cursor_pk",
    "experiment_results",
    "results_of_runs",
    "runs_by_position",
]


@dataclass(frozen=True)
class ResultRow:
    """One call of the target: its example and repetition, its root run, and every score given
    to that run (``results``: key, score, value, comment and the evaluator's provenance)."""

    run_id: str
    trace_id: str
    example_id: str
    repetition: int
    inputs: Any
    outputs: Any
    error: str | None
    latency_ms: float | None
    start_time: int | None
    results: list[dict[str, Any]]
    reference_hash: str | None = None
    cluster: str | None = None

    @property
    def scores(self) -> dict[str, float | bool | None]:
        """The first score of each key."""
        out: dict[str, float | bool | None] = {}
        for r in self.results:
            out.setdefault(r["key"], r["score"])
        return out


@dataclass(frozen=True)
class ResultsPage:
    experiment: Experiment
    rows: list[ResultRow]
    next_cursor: str | None


@dataclass(frozen=True)
class Comparison:
    baseline: Experiment
    candidate: Experiment
    alpha: float
    comparisons: list[KeyComparison]
    verdicts: list[Verdict]
    examples: frozenset[str] = frozenset()
    """Every example both experiments ran (scored or not)."""
    runs_of: tuple[Mapping[str, Sequence[str]], Mapping[str, Sequence[str]]] = ({}, {})
    """Per side (baseline, candidate): each example's root run ids, in ingest order, as read
    for the comparison; ``results_of_runs`` reads a few examples' rows from them."""


def _position(run: dict[str, Any]) -> tuple[str, int]:
    """(example id, repetition): the runner's metadata, else the run's reference example."""
    meta = run["metadata"] if isinstance(run["metadata"], dict) else {}
    example = meta.get("example_id")
    if example is None:
        example = run["reference_example_id"] or run["id"]
    rep = meta.get("repetition")
    return str(example), rep if isinstance(rep, int) and not isinstance(rep, bool) else 0


def _meta_text(run: dict[str, Any], name: str) -> str | None:
    meta = run["metadata"] if isinstance(run["metadata"], dict) else {}
    value = meta.get(name)
    return value if isinstance(value, str) else None


def _error_text(run: dict[str, Any]) -> str | None:
    err = run["error"]
    if err is None:
        return "error" if run["status"] == "error" else None
    if isinstance(err, dict):
        kind, message = err.get("type"), str(err.get("message") or "")
        text = message.splitlines()[0][:500] if message else ""
        head = str(kind) if kind else "error"
        return f"{head}: {text}" if text else head
    return str(err)[:500]


def _result(score: RunScore) -> dict[str, Any]:
    info = score.source_info or {}
    out: dict[str, Any] = {
        "key": score.key,
        "score": score.score,
        "value": score.value,
        "comment": score.comment,
    }
    for name in _PROVENANCE:
        if info.get(name) is not None:
            out[name] = info[name]
    return out


def cursor_pk(cursor: str | None) -> int | None:
    """A results page's cursor: the stored position (a 64-bit key) of the last run shown."""
    if cursor is None:
        return None
    try:
        after = int(cursor)
    except ValueError:
        after = -1
    if not 0 <= after < 2**63:
        raise InvalidInput("not a cursor from this list", details={"field": "cursor"})
    return after


def experiment_results(
    ctx: ServiceContext, who: Principal, ref: str, *, limit: int = 100, cursor: str | None = None
) -> ResultsPage:
    """One page of rows in the order the runs were stored (keyset on that order)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    after = cursor_pk(cursor)

    def read(conn: Connection) -> tuple[Experiment, list[dict[str, Any]], list[RunScore]]:
        row = load(conn, who, ref)
        runs = store.root_runs_page(
            conn, who.workspace_id, row.id, after_pk=after, limit=limit + 1, with_io=True
        )
        scores = store.scores_for_runs(conn, who.workspace_id, [r["id"] for r in runs[:limit]])
        return build(conn, who, [row])[0], runs, scores

    experiment, runs, scores = ctx.db.read(read)
    more = len(runs) > limit
    runs = runs[:limit]
    rows = _rows(runs, scores)
    return ResultsPage(experiment, rows, str(runs[-1]["pk"]) if more and runs else None)


def _rows(runs: list[dict[str, Any]], scores: list[RunScore]) -> list[ResultRow]:
    by_run: dict[str, list[dict[str, Any]]] = {}
    for s in scores:
        by_run.setdefault(s.run_id, []).append(_result(s))
    rows = []
    for run in runs:
        example, rep = _position(run)
        latency = run["latency_us"]
        rows.append(
            ResultRow(
                run_id=run["id"],
                trace_id=run["trace_id"],
                example_id=example,
                repetition=rep,
                inputs=run["inputs"],
                outputs=run["outputs"],
                error=_error_text(run),
                latency_ms=None if latency is None else latency / 1000.0,
                start_time=run["start_time"],
                results=by_run.get(run["id"], []),
                reference_hash=_meta_text(run, "reference_hash"),
                cluster=_meta_text(run, "cluster"),
            )
        )
    return rows


def _all_root_runs(
    conn: Connection, who: Principal, project_id: str, *, positions_only: bool = False
) -> list[dict[str, Any]]:
    """Every root run of the project, without inputs and outputs, in ingest order
    (``positions_only``: only what ``_position`` reads)."""
    runs: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        page = store.root_runs_page(
            conn,
            who.workspace_id,
            project_id,
            after_pk=after,
            limit=_PAGE,
            with_io=False,
            positions_only=positions_only,
        )
        runs += page
        if len(page) < _PAGE:
            return runs
        after = page[-1]["pk"]


def runs_by_position(
    conn: Connection, who: Principal, project_id: str
) -> dict[tuple[str, int], dict[str, Any]]:
    """The experiment's root runs (without inputs and outputs) by (example id, repetition);
    the first stored run of each position wins."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for run in _all_root_runs(conn, who, project_id):
        out.setdefault(_position(run), run)
    return out


def results_of_runs(
    ctx: ServiceContext, who: Principal, experiment_id: str, run_ids: Sequence[str]
) -> list[ResultRow]:
    """The rows of these root runs of the experiment (ids from ``Comparison.runs_of``), in
    the order the runs were stored; a run no longer stored is left out."""

    def read(conn: Connection) -> tuple[list[dict[str, Any]], list[RunScore]]:
        return _runs_and_scores(conn, who, load(conn, who, experiment_id).id, run_ids)

    return _rows(*ctx.db.read(read)) if run_ids else []


def _runs_and_scores(
    conn: Connection, who: Principal, project_id: str, ids: Sequence[str]
) -> tuple[list[dict[str, Any]], list[RunScore]]:
    runs: list[dict[str, Any]] = []
    scores: list[RunScore] = []
    for first in range(0, len(ids), _ID_CHUNK):
        chunk = ids[first : first + _ID_CHUNK]
        runs += store.root_runs_by_id(conn, who.workspace_id, project_id, chunk)
        scores += store.scores_for_runs(conn, who.workspace_id, chunk)
    runs.sort(key=lambda r: r["pk"])
    return runs, scores


ScoreMap = dict[str, dict[str, list[Attempt]]]


def _attempt(run: dict[str, Any], score: RunScore | None) -> Attempt:
    """What one run gave for one key: its score, None (skipped) or why it has none."""
    if score is not None and score.score is not None:
        return score.score
    if run["status"] == "error":
        return Failed(f"target error: {_error_text(run) or 'error'}")
    if score is None:
        return Failed("no score")
    info = score.source_info or {}
    if info.get("error"):
        return Failed(f"evaluator error: {str(info['error']).splitlines()[0][:200]}")
    if info.get("skipped"):
        return None
    return Failed("no score")


def _side(name: str, runs: list[dict[str, Any]], scores: list[RunScore]) -> Side:
    """The experiment as the comparison code sees it: the same ``Side`` the SDK builds from
    results in memory, from its root runs and the scores given to them (``scores_for_project``
    without text)."""
    first: dict[str, dict[str, RunScore]] = {}
    judges: dict[str, set[str]] = {}
    for s in scores:
        first.setdefault(s.run_id, {}).setdefault(s.key, s)
        info = s.source_info or {}
        if info.get("judge_model") or info.get("prompt_hash"):
            judges.setdefault(s.key, set()).add(
                f"model={info.get('judge_model') or '?'} prompt={info.get('prompt_hash') or '?'}"
            )
    keys = ScoreKeys.of(
        [
            (
                s.key,
                (s.source_info or {}).get("evaluator"),
                bool((s.source_info or {}).get("error")),
            )
            for s in scores
        ]
    )
    placed = sorted((_position(r), r["pk"], i) for i, r in enumerate(runs))
    attempts: ScoreMap = {key: {} for key in sorted(keys.keys)}
    references: dict[str, str | None] = {}
    clusters: dict[str, str] = {}
    for (example, _rep), _pk, i in placed:
        run = runs[i]
        references.setdefault(example, _meta_text(run, "reference_hash"))
        cluster = _meta_text(run, "cluster")
        if cluster is not None:
            clusters[example] = cluster
        got = first.get(run["id"], {})
        for key, per_example in attempts.items():
            score = got.get(key)
            if score is None:  # an evaluator that raised stored its error under its own name
                score = next((got[p] for p in keys.producers_of(key) if p in got), None)
            per_example.setdefault(example, []).append(_attempt(run, score))
    return Side(
        name=name,
        dataset_version=None,
        attempts=attempts,
        references=references,
        judges={k: frozenset(v) for k, v in judges.items()},
        clusters=clusters,
    )


def compare_experiments(
    ctx: ServiceContext,
    who: Principal,
    baseline: str,
    candidate: str,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    lower_is_better: Sequence[str] = (),
    errors: ErrorPolicy = "fail",
    changed: ChangedPolicy = "refuse",
    judge_change: JudgePolicy = "refuse",
) -> Comparison:
    """Paired comparison of ``candidate`` (B) with ``baseline`` (A), by id or name, for every
    score key both have; verdicts Holm-adjusted across keys. Both must be on the same dataset
    (or, without a dataset, share examples). The same code as ``ExperimentResults.compare``:
    failed attempts count, and keys whose references or judge changed are not comparable."""
    if not 0.0 < alpha < 1.0:
        raise InvalidInput("alpha must be between 0 and 1", details={"field": "alpha"})
    if min_effect < 0:
        raise InvalidInput("min_effect must not be negative", details={"field": "min_effect"})

    def read(conn: Connection) -> tuple[list[Experiment], list[Side], list[dict[str, list[str]]]]:
        a_row, b_row = load(conn, who, baseline), load(conn, who, candidate)
        parts = {row.id: _side_parts(ctx, conn, who, row) for row in (a_row, b_row)}
        known = {pid: p.aggregates for pid, p in parts.items()}
        a, b = build(conn, who, [a_row, b_row], known=known)
        if a.dataset_id and b.dataset_id and a.dataset_id != b.dataset_id:
            raise InvalidInput(
                f"experiments {a.name!r} and {b.name!r} ran on different datasets "
                f"({a.dataset or a.dataset_id!r} and {b.dataset or b.dataset_id!r})",
                details={"field": "candidate"},
            )
        sides = [
            replace(parts[e.id].side, name=e.name, dataset_version=e.dataset_version)
            for e in (a, b)
        ]
        return [a, b], sides, [parts[e.id].runs_of for e in (a, b)]

    (a, b), (side_a, side_b), (runs_a, runs_b) = ctx.db.read(read)
    shared = runs_a.keys() & runs_b.keys()
    if not shared:
        raise InvalidInput(
            f"experiments {a.name!r} and {b.name!r} share no examples",
            details={"field": "candidate"},
        )
    comparisons = compare_sides(
        side_a, side_b, lower_is_better=lower_is_better, alpha=alpha, errors=errors,
        changed=changed, judge_change=judge_change,
    )  # fmt: skip
    verdicts = regression_verdicts(comparisons, alpha=alpha, min_effect=min_effect)
    return Comparison(a, b, alpha, comparisons, verdicts, frozenset(shared), (runs_a, runs_b))


@dataclass(frozen=True)
class SideParts:
    """What a comparison reads of one experiment, made from its root runs and their scores
    (kept in ``ServiceContext.comparison_sides`` while they do not change)."""

    side: Side
    """Named after the project as it was read; the caller sets the experiment's name and
    dataset version."""
    runs_of: dict[str, list[str]]
    """Each example's root run ids, in ingest order."""
    aggregates: tuple[store.RunTotals, list[store.KeyAggregate]]


def _side_parts(
    ctx: ServiceContext, conn: Connection, who: Principal, row: ProjectRow
) -> SideParts:
    """The experiment's side, from the cache when its runs and scores have not changed since
    (the stamp is read in this snapshot, so a kept entry equals a fresh read)."""

    def make() -> SideParts:
        runs = _all_root_runs(conn, who, row.id)
        scores = store.scores_for_project(conn, who.workspace_id, row.id, with_text=False)
        runs_of: dict[str, list[str]] = {}
        for run in runs:  # in ingest order
            runs_of.setdefault(_position(run)[0], []).append(run["id"])
        aggregates = aggregates_of((r["status"] for r in runs), ((s.key, s.score) for s in scores))
        return SideParts(_side(row.name, runs, scores), runs_of, aggregates)

    stamp = store.change_stamp(conn, who.workspace_id, row.id)
    return ctx.comparison_sides.get_or_make((who.workspace_id, row.id), stamp, make)
