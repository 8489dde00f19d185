"""Removing stored data: whole traces (their runs and the feedback on them) and dataset examples
in every version. Used by trace deletion, erasure of a person's data and project deletion.

Everything works on bounded chunks of ids (``CHUNK``): callers split a large deletion into
transactions of a few hundred traces, so no single statement locks a large part of a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store import annotation_queues, attachments, rollups
from goldloop.store.schema import dataset_examples, datasets, feedback, runs
from goldloop.store.sql_lists import one_of

CHUNK = 500


@dataclass
class Removed:
    """What a deletion removed (or, for a preview, would remove)."""

    traces: int = 0
    runs: int = 0
    feedback: int = 0
    examples: int = 0  # distinct examples, each gone from every version
    example_rows: int = 0  # stored example rows (one per version range)
    example_keys: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def add(self, other: Removed) -> None:
        self.traces += other.traces
        self.runs += other.runs
        self.feedback += other.feedback
        self.examples += other.examples
        self.example_rows += other.example_rows

    def counts(self) -> dict[str, int]:
        return {
            "traces": self.traces,
            "runs": self.runs,
            "feedback": self.feedback,
            "examples": self.examples,
            "example_rows": self.example_rows,
        }


def chunks(items: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- selecting traces ------------------------------------------------------------------------


def matching_traces(
    conn: Connection,
    workspace_id: str,
    condition: ColumnElement[bool],
    *,
    project_id: str | None,
    after_pk: int,
    limit: int,
) -> tuple[list[str], int | None]:
    """Trace ids of the next ``limit`` runs (by ``pk``, after ``after_pk``) matching the
    condition; and the pk to continue after (None when no run is left)."""
    query = (
        sa.select(runs.c.pk, runs.c.trace_id)
        .where(runs.c.workspace_id == workspace_id, runs.c.pk > after_pk, condition)
        .order_by(runs.c.pk)
        .limit(limit)
    )
    if project_id is not None:
        query = query.where(runs.c.project_id == project_id)
    rows = conn.execute(query).all()
    if not rows:
        return [], None
    return list(dict.fromkeys(r.trace_id for r in rows)), int(rows[-1].pk)


def existing_traces(conn: Connection, workspace_id: str, trace_ids: list[str]) -> list[str]:
    """Those of ``trace_ids`` that have at least one run in the workspace."""
    found: set[str] = set()
    for chunk in chunks(trace_ids):
        query = (
            sa.select(runs.c.trace_id)
            .where(runs.c.workspace_id == workspace_id, one_of(conn, runs.c.trace_id, chunk))
            .distinct()
        )
        found.update(conn.execute(query).scalars())
    return [t for t in trace_ids if t in found]


def run_ids_of(
    conn: Connection, workspace_id: str, trace_ids: list[str], *, project_id: str | None = None
) -> list[str]:
    out: list[str] = []
    for chunk in chunks(trace_ids):
        query = sa.select(runs.c.id).where(
            runs.c.workspace_id == workspace_id, one_of(conn, runs.c.trace_id, chunk)
        )
        if project_id is not None:
            query = query.where(runs.c.project_id == project_id)
        out.extend(conn.execute(query).scalars())
    return out


def project_traces(conn: Connection, project_id: str, limit: int) -> list[str]:
    """Trace ids of up to ``limit`` runs of the project (for deleting it in batches)."""
    query = sa.select(runs.c.trace_id).where(runs.c.project_id == project_id).limit(limit)
    return list(dict.fromkeys(conn.execute(query).scalars()))


def examples_from_runs(
    conn: Connection, workspace_id: str, run_ids: list[str]
) -> set[tuple[str, str]]:
    """(dataset id, example id) of every example, in any version, made from one of these runs."""
    found: set[tuple[str, str]] = set()
    ws_datasets = sa.select(datasets.c.id).where(datasets.c.workspace_id == workspace_id)
    dataset_ids = list(conn.execute(ws_datasets).scalars())
    if not dataset_ids:
        return found
    ex = dataset_examples
    for chunk in chunks(run_ids):
        query = (
            sa.select(ex.c.dataset_id, ex.c.example_id)
            .where(
                one_of(conn, ex.c.dataset_id, dataset_ids), one_of(conn, ex.c.source_run_id, chunk)
            )
            .distinct()
        )
        found.update((r.dataset_id, r.example_id) for r in conn.execute(query))
    return found


def traces_using_examples(conn: Connection, workspace_id: str, example_ids: list[str]) -> list[str]:
    """Traces with a run made from one of these examples (an experiment's runs)."""
    found: set[str] = set()
    for chunk in chunks(example_ids):
        query = (
            sa.select(runs.c.trace_id)
            .where(
                runs.c.workspace_id == workspace_id,
                one_of(conn, runs.c.reference_example_id, chunk),
            )
            .distinct()
        )
        found.update(conn.execute(query).scalars())
    return sorted(found)


# --- counting (previews) ---------------------------------------------------------------------


def _feedback_on(
    conn: Connection, workspace_id: str, run_ids: list[str], trace_ids: list[str]
) -> ColumnElement[bool]:
    return sa.and_(
        feedback.c.workspace_id == workspace_id,
        sa.or_(
            one_of(conn, feedback.c.run_id, run_ids), one_of(conn, feedback.c.trace_id, trace_ids)
        ),
    )


def count_traces(conn: Connection, workspace_id: str, trace_ids: list[str]) -> Removed:
    """What deleting these traces would remove (runs, feedback); the traces must exist."""
    out = Removed(traces=len(trace_ids))
    for chunk in chunks(trace_ids):
        run_ids = run_ids_of(conn, workspace_id, chunk)
        out.runs += len(run_ids)
        seen: set[str] = set()
        for run_chunk in chunks(run_ids) if run_ids else iter([[]]):
            query = sa.select(feedback.c.id).where(
                _feedback_on(conn, workspace_id, run_chunk, chunk)
            )
            seen.update(conn.execute(query).scalars())
        out.feedback += len(seen)
    return out


def count_examples(conn: Connection, keys: set[tuple[str, str]]) -> int:
    """Stored rows (all versions) of these examples."""
    total = 0
    for dataset_id, ids in _by_dataset(keys).items():
        for chunk in chunks(ids):
            query = (
                sa.select(sa.func.count())
                .select_from(dataset_examples)
                .where(
                    dataset_examples.c.dataset_id == dataset_id,
                    one_of(conn, dataset_examples.c.example_id, chunk),
                )
            )
            total += int(conn.execute(query).scalar_one())
    return total


def _by_dataset(keys: set[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for dataset_id, example_id in sorted(keys):
        grouped.setdefault(dataset_id, []).append(example_id)
    return grouped


# --- deleting --------------------------------------------------------------------------------


def delete_traces(
    conn: Connection, workspace_id: str, trace_ids: list[str], *, project_id: str | None = None
) -> Removed:
    """Delete every run of these traces (of one project, when given) and the feedback on those
    runs or traces. Call with a bounded list (a few hundred traces) per transaction."""
    present = existing_traces(conn, workspace_id, trace_ids)
    out = Removed(traces=len(present))
    if not present:
        return out
    run_ids = run_ids_of(conn, workspace_id, present, project_id=project_id)
    attachments.remove_owners(conn, workspace_id, "run", run_ids)  # the blobs go in a sweep
    annotation_queues.forget_runs(conn, workspace_id, run_ids)  # reviews copy corrections
    for run_chunk in chunks(run_ids):
        out.feedback += conn.execute(
            sa.delete(feedback).where(
                feedback.c.workspace_id == workspace_id, one_of(conn, feedback.c.run_id, run_chunk)
            )
        ).rowcount
    for chunk in chunks(present):
        rollups.mark_traces(conn, workspace_id, chunk)  # their hours' rollups are stale
        out.feedback += conn.execute(
            sa.delete(feedback).where(
                feedback.c.workspace_id == workspace_id, one_of(conn, feedback.c.trace_id, chunk)
            )
        ).rowcount
        doomed = sa.and_(runs.c.workspace_id == workspace_id, one_of(conn, runs.c.trace_id, chunk))
        if project_id is not None:
            doomed = sa.and_(doomed, runs.c.project_id == project_id)
        out.runs += conn.execute(sa.delete(runs).where(doomed)).rowcount
    return out


def delete_examples(conn: Connection, keys: set[tuple[str, str]]) -> int:
    """Delete every stored row of these examples: they are gone from every version, old ones
    included. Returns the rows removed."""
    attachments.remove_examples(conn, keys)  # the blobs go in a sweep
    removed = 0
    for dataset_id, ids in _by_dataset(keys).items():
        for chunk in chunks(ids):
            removed += conn.execute(
                sa.delete(dataset_examples).where(
                    dataset_examples.c.dataset_id == dataset_id,
                    one_of(conn, dataset_examples.c.example_id, chunk),
                )
            ).rowcount
    return removed
