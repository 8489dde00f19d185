"""Add runs to a dataset: inputs from the run, reference outputs from the latest correction
(with ``prefer_correction``) or the run's outputs, and lineage back to run, trace and feedback.

A run already in the dataset (a current example made from it) is not added again. With
``prefer_correction``, a correction on it that the example has not taken yet (a corrected
correction, or the first correction of an example made from the run's outputs) updates that
example instead: its reference outputs become the correction, and its lineage appends the
correction to ``correction_feedback_ids``. Otherwise (no correction, one the example already
took, or one equal to the current reference) the run is skipped as ``already_added``, so the
same feedback processed twice makes one version. A run whose inputs equal a current example's
inputs is reported and skipped unless ``allow_duplicates``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import datasets as rules
from goldloop.domain import lineage
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.services import datasets as ds
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.examples import ExampleIn, WriteResult, build_rows, commit_version
from goldloop.store import examples as example_store
from goldloop.store import feedback as feedback_store
from goldloop.store import run_sources
from goldloop.store.examples import ExampleRow
from goldloop.store.feedback import FeedbackRow

MAX_RUNS = 10_000


@dataclass(frozen=True)
class RunAdded:
    run_id: str
    example_id: str
    outputs_from: str  # "correction" or "run"


@dataclass(frozen=True)
class RunUpdated:
    """A run already in the dataset whose example took a later correction."""

    run_id: str
    example_id: str
    correction_feedback_id: str  # the correction the reference outputs come from now
    previous_correction_feedback_id: str | None  # the one they came from (None: the run)


@dataclass(frozen=True)
class RunSkipped:
    run_id: str
    reason: str  # "already_added" or "duplicate_inputs"
    example_id: str  # the example that is already there


@dataclass
class AddRunsResult:
    write: WriteResult
    added: list[RunAdded] = field(default_factory=list)
    updated: list[RunUpdated] = field(default_factory=list)
    skipped: list[RunSkipped] = field(default_factory=list)


def _latest_correction(feedback: list[FeedbackRow]) -> FeedbackRow | None:
    with_correction = [f for f in feedback if f.correction is not None]
    return with_correction[-1] if with_correction else None  # oldest first -> last is latest


def _later_correction(example: ExampleRow, correction: FeedbackRow | None) -> FeedbackRow | None:
    """The correction, if the example should take it: one it has not taken before (a replay of
    an earlier correction never goes back) and whose answer differs from the reference now."""
    if correction is None or correction.id in lineage.correction_history(example.lineage):
        return None
    return None if correction.correction == example.outputs else correction


def add_runs(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    run_ids: list[str],
    *,
    prefer_correction: bool = False,
    allow_duplicates: bool = False,
    splits: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    message: str | None = None,
) -> AddRunsResult:
    wanted = list(dict.fromkeys(run_ids))  # once each, in the order given
    if not wanted:
        raise InvalidInput("no run ids given", details={"field": "run_ids"})
    if len(wanted) > MAX_RUNS:
        raise InvalidInput(f"at most {MAX_RUNS} runs per request", details={"field": "run_ids"})
    now = ctx.clock()
    return ctx.db.write(
        lambda conn: add_runs_on(
            conn,
            who,
            ref,
            wanted,
            now,
            prefer_correction=prefer_correction,
            allow_duplicates=allow_duplicates,
            splits=splits,
            metadata=metadata,
            message=message,
        )
    )


def add_runs_on(
    conn: Connection,
    who: Principal,
    ref: str,
    wanted: list[str],
    now: int,
    *,
    prefer_correction: bool = False,
    allow_duplicates: bool = False,
    splits: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    message: str | None = None,
) -> AddRunsResult:
    """``add_runs`` inside the caller's write transaction (``wanted``: distinct run ids)."""
    row = ds.load(conn, who, ref, for_update=True)
    found = run_sources.by_ids(conn, who.workspace_id, wanted)
    missing = [r for r in wanted if r not in found]
    if missing:
        raise NotFound(
            f"no run with id {missing[0]!r} in this workspace"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; runs are added once they have been ingested",
            details={"missing_run_ids": missing[:100]},
        )
    feedback: dict[str, list[FeedbackRow]] = {}
    for f in feedback_store.for_runs(conn, who.workspace_id, wanted):
        targets = [f.run_id] if f.run_id else [r for r in wanted if found[r].trace_id == f.trace_id]
        for run_id in targets:
            feedback.setdefault(run_id, []).append(f)
    already = example_store.current_by_run(conn, row.id, wanted)
    current = example_store.by_ids(conn, row.id, already.values()) if already else {}
    hashes = {r: rules.inputs_hash(_inputs(found[r])) for r in wanted}
    same_inputs = example_store.current_by_hash(conn, row.id, list(hashes.values()))

    result = AddRunsResult(WriteResult(row.id, row.head_version))
    items: list[ExampleIn] = []
    origins: list[tuple[str, str]] = []
    changes: list[ExampleIn] = []
    fresh = iter(rules.new_example_ids(now, len(wanted)))
    for run_id in wanted:
        run = found[run_id]
        notes = feedback.get(run_id, [])
        correction = _latest_correction(notes) if prefer_correction else None
        if run_id in already:
            old = current[already[run_id]]
            later = _later_correction(old, correction)
            if later is None:
                result.skipped.append(RunSkipped(run_id, "already_added", old.id))
                continue
            changes.append(
                ExampleIn(
                    id=old.id,
                    inputs=old.inputs,
                    outputs=later.correction,
                    metadata=old.metadata,
                    splits=old.splits,
                    lineage=lineage.corrected(old.lineage, later.id, [f.id for f in notes]),
                    source_run_id=old.source_run_id,
                )
            )
            history = lineage.correction_history(old.lineage)
            result.updated.append(
                RunUpdated(run_id, old.id, later.id, history[-1] if history else None)
            )
            continue
        if not allow_duplicates and hashes[run_id] in same_inputs:
            result.skipped.append(
                RunSkipped(run_id, "duplicate_inputs", same_inputs[hashes[run_id]])
            )
            continue
        example_id = next(fresh)
        items.append(
            ExampleIn(
                id=example_id,
                inputs=_inputs(run),
                outputs=correction.correction if correction is not None else run.outputs,
                metadata=metadata,
                splits=splits,
                lineage=lineage.from_run(
                    run_id=run.id,
                    trace_id=run.trace_id,
                    project_id=run.project_id,
                    feedback_ids=[f.id for f in notes],
                    correction_id=correction.id if correction else None,
                ),
                source_run_id=run.id,
            )
        )
        origins.append((run_id, "correction" if correction is not None else "run"))
        same_inputs.setdefault(hashes[run_id], example_id)  # a later run, equal inputs
    if not items and not changes:
        return result
    rows = build_rows(row, items, now)
    updated = [
        replace(new, created_at=current[new.id].created_at)
        for new in build_rows(row, changes, now, first_index=len(items))
    ]
    for (run_id, outputs_from), new in zip(origins, rows, strict=True):
        result.added.append(RunAdded(run_id, new.id, outputs_from))
    result.write.added = [r.id for r in rows]
    result.write.updated = [r.id for r in updated]
    result.write.version = commit_version(
        conn, row, now, message, added=rows, updated=updated, removed=[]
    )
    return result


def _inputs(run: run_sources.RunSource) -> Any:
    return run.inputs if run.inputs is not None else {}
