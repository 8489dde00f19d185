"""Retention policies and the bounded batches the retention worker deletes.

A policy keeps a project's runs for ``keep_days``. A batch is the next runs (oldest first, by
start time; runs without one by when they were stored) older than the cutoff, read from the
project's start-time index; the traces among them that must be kept (feedback on any of their
runs or on the trace, or a run copied into a dataset) are skipped whole. The worker remembers
where it stopped, so the kept runs are read once per pass, not once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store import annotation_queues, attachments, rollups
from goldloop.store.erasure import chunks
from goldloop.store.schema import dataset_examples, datasets, feedback, retention_policies, runs
from goldloop.store.sql_lists import one_of

rp = retention_policies


@dataclass(frozen=True, slots=True)
class Policy:
    project_id: str
    workspace_id: str
    keep_days: int
    keep_with_feedback: bool
    keep_in_datasets: bool
    last_pass_at: int | None
    runs_deleted: int
    created_at: int
    updated_at: int


def _policy(row: sa.Row[tuple[object, ...]]) -> Policy:
    m = row._mapping
    return Policy(
        project_id=m["project_id"],
        workspace_id=m["workspace_id"],
        keep_days=int(m["keep_days"]),
        keep_with_feedback=bool(m["keep_with_feedback"]),
        keep_in_datasets=bool(m["keep_in_datasets"]),
        last_pass_at=m["last_pass_at"],
        runs_deleted=int(m["runs_deleted"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def get(conn: Connection, workspace_id: str, project_id: str) -> Policy | None:
    row = conn.execute(
        sa.select(rp).where(rp.c.workspace_id == workspace_id, rp.c.project_id == project_id)
    ).first()
    return _policy(row) if row else None


def all_policies(conn: Connection) -> list[Policy]:
    return [_policy(r) for r in conn.execute(sa.select(rp).order_by(rp.c.project_id))]


def put(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    keep_days: int,
    keep_with_feedback: bool,
    keep_in_datasets: bool,
    now: int,
) -> Policy:
    values = {
        "keep_days": keep_days,
        "keep_with_feedback": keep_with_feedback,
        "keep_in_datasets": keep_in_datasets,
        "updated_at": now,
    }
    updated = conn.execute(
        sa.update(rp)
        .where(rp.c.workspace_id == workspace_id, rp.c.project_id == project_id)
        .values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(
            sa.insert(rp).values(
                project_id=project_id,
                workspace_id=workspace_id,
                last_pass_at=None,
                runs_deleted=0,
                created_at=now,
                **values,
            )
        )
    found = get(conn, workspace_id, project_id)
    assert found is not None
    return found


def delete(conn: Connection, workspace_id: str, project_id: str) -> bool:
    result = conn.execute(
        sa.delete(rp).where(rp.c.workspace_id == workspace_id, rp.c.project_id == project_id)
    )
    return result.rowcount > 0


def record_progress(
    conn: Connection, project_id: str, deleted: int, pass_done_at: int | None
) -> None:
    values: dict[str, object] = {"runs_deleted": rp.c.runs_deleted + deleted}
    if pass_done_at is not None:
        values["last_pass_at"] = pass_done_at
    conn.execute(sa.update(rp).where(rp.c.project_id == project_id).values(**values))


# --- one batch -------------------------------------------------------------------------------

# Where a pass stands: (phase, start_time, pk). Phase 0 walks runs with a start time older than
# the cutoff by (start_time, pk); phase 1 walks runs without a start time by pk.
Position = tuple[int, int, int]
START: Position = (0, -(2**62), 0)


@dataclass(frozen=True, slots=True)
class Batch:
    deleted: int
    kept: int
    position: Position | None  # None: the pass reached the cutoff


def _candidates(
    conn: Connection, project_id: str, cutoff: int, position: Position, limit: int
) -> tuple[list[tuple[int, str, str]], Position | None]:
    """(pk, id, trace_id) of up to ``limit`` runs past ``position``; the next position."""
    phase, start, pk = position
    if phase == 0:
        query = (
            sa.select(runs.c.pk, runs.c.id, runs.c.trace_id, runs.c.start_time)
            .where(
                runs.c.project_id == project_id,
                runs.c.start_time < cutoff,
                # the plain range lets the start-time index seek; the rest breaks ties
                runs.c.start_time >= start,
                sa.or_(runs.c.start_time > start, runs.c.pk > pk),
            )
            .order_by(runs.c.start_time, runs.c.pk)
            .limit(limit)
        )
        rows = conn.execute(query).all()
        if len(rows) < limit:
            nxt: Position = (1, 0, 0)
        else:
            nxt = (0, int(rows[-1].start_time), int(rows[-1].pk))
        return [(int(r.pk), r.id, r.trace_id) for r in rows], nxt
    query = (
        sa.select(runs.c.pk, runs.c.id, runs.c.trace_id)
        .where(
            runs.c.project_id == project_id,
            runs.c.start_time.is_(None),
            runs.c.created_at < cutoff,
            runs.c.pk > pk,
        )
        .order_by(runs.c.pk)
        .limit(limit)
    )
    rows2 = conn.execute(query).all()
    done = len(rows2) < limit
    out = [(int(r.pk), r.id, r.trace_id) for r in rows2]
    return out, None if done else (1, 0, out[-1][0])


def _kept_traces(conn: Connection, policy: Policy, trace_ids: list[str]) -> set[str]:
    """Traces among these that the policy keeps."""
    ws = policy.workspace_id
    kept: set[str] = set()
    if not (policy.keep_with_feedback or policy.keep_in_datasets):
        return kept
    members: list[tuple[str, str]] = []  # (run id, trace id) of every run of these traces
    for chunk in chunks(trace_ids):
        query = sa.select(runs.c.id, runs.c.trace_id).where(
            runs.c.workspace_id == ws, one_of(conn, runs.c.trace_id, chunk)
        )
        members.extend((r.id, r.trace_id) for r in conn.execute(query))
    trace_of = dict(members)
    if policy.keep_with_feedback:
        for chunk in chunks(trace_ids):
            query = sa.select(feedback.c.trace_id).where(
                feedback.c.workspace_id == ws, one_of(conn, feedback.c.trace_id, chunk)
            )
            kept.update(conn.execute(query).scalars())
        for chunk in chunks(list(trace_of)):
            query = sa.select(feedback.c.run_id).where(
                feedback.c.workspace_id == ws, one_of(conn, feedback.c.run_id, chunk)
            )
            kept.update(trace_of[r] for r in conn.execute(query).scalars())
    if policy.keep_in_datasets:
        kept.update(trace_of[r] for r in _source_runs(conn, ws, list(trace_of)))
    return kept


def _source_runs(conn: Connection, workspace_id: str, run_ids: list[str]) -> set[str]:
    """Those of these runs that an example (in any version of any dataset) was made from."""
    ws_datasets = sa.select(datasets.c.id).where(datasets.c.workspace_id == workspace_id)
    dataset_ids = list(conn.execute(ws_datasets).scalars())
    found: set[str] = set()
    if not dataset_ids:
        return found
    for chunk in chunks(run_ids):
        query = (
            sa.select(dataset_examples.c.source_run_id)
            .where(
                one_of(conn, dataset_examples.c.dataset_id, dataset_ids),
                one_of(conn, dataset_examples.c.source_run_id, chunk),
            )
            .distinct()
        )
        found.update(conn.execute(query).scalars())
    return found


def delete_batch(
    conn: Connection, policy: Policy, cutoff: int, position: Position, limit: int
) -> Batch:
    """Delete the next batch of expired runs (and the feedback on them) of the policy's
    project; traces the policy keeps are skipped whole."""
    candidates, nxt = _candidates(conn, policy.project_id, cutoff, position, limit)
    if not candidates:
        return Batch(0, 0, nxt if nxt is not None and nxt[0] == 1 and position[0] == 0 else None)
    traces = list(dict.fromkeys(t for _, _, t in candidates))
    kept = _kept_traces(conn, policy, traces)
    doomed = [(pk, run_id) for pk, run_id, trace_id in candidates if trace_id not in kept]
    ws = policy.workspace_id
    # the hourly rollups of their hours (and their traces' roots' hours) are stale
    rollups.mark_traces(conn, ws, sorted({t for _, _, t in candidates if t not in kept}))
    attachments.remove_owners(conn, ws, "run", [run_id for _, run_id in doomed])
    annotation_queues.forget_runs(conn, ws, [run_id for _, run_id in doomed])
    for chunk in chunks([run_id for _, run_id in doomed]):
        conn.execute(
            sa.delete(feedback).where(
                feedback.c.workspace_id == ws, one_of(conn, feedback.c.run_id, chunk)
            )
        )
    deleted = 0
    pks = [pk for pk, _ in doomed]
    for i in range(0, len(pks), 500):
        deleted += conn.execute(
            sa.delete(runs).where(one_of(conn, runs.c.pk, pks[i : i + 500]))
        ).rowcount
    # trace-level feedback of traces that no longer have a run
    gone = set(traces) - kept
    if gone:
        remaining: set[str] = set()
        for chunk in chunks(sorted(gone)):
            query = (
                sa.select(runs.c.trace_id)
                .where(runs.c.workspace_id == ws, one_of(conn, runs.c.trace_id, chunk))
                .distinct()
            )
            remaining.update(conn.execute(query).scalars())
        for chunk in chunks(sorted(gone - remaining)):
            conn.execute(
                sa.delete(feedback).where(
                    feedback.c.workspace_id == ws, one_of(conn, feedback.c.trace_id, chunk)
                )
            )
    return Batch(deleted, len(candidates) - len(doomed), nxt)
