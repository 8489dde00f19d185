"""Retention policies per project, and the worker step that applies them.

The worker deletes expired runs in bounded batches (``retention_batch_runs`` runs per
transaction), one batch per policy per tick, so ingestion and reads go on between batches and
no statement locks a large part of the runs table. A pass walks a project from its oldest run
to the cutoff; the next pass starts ``retention_interval_s`` after a pass ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain.clock import to_iso
from goldloop.domain.errors import Forbidden, InvalidInput, NotFound
from goldloop.services import attachments, audit
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.run_queries import resolve_project
from goldloop.store import retention as store
from goldloop.store.retention import Policy, Position

log = logging.getLogger("goldloop.retention")

DAY_US = 86_400_000_000
MAX_DAYS = 36_500


def view(policy: Policy) -> dict[str, Any]:
    return {
        "project_id": policy.project_id,
        "keep_days": policy.keep_days,
        "keep_with_feedback": policy.keep_with_feedback,
        "keep_in_datasets": policy.keep_in_datasets,
        "last_pass_at": to_iso(policy.last_pass_at),
        "runs_deleted": policy.runs_deleted,
        "created_at": to_iso(policy.created_at),
        "updated_at": to_iso(policy.updated_at),
    }


def get_policy(ctx: ServiceContext, who: Principal, project: str) -> Policy:
    row = resolve_project(ctx, who, project)
    found = ctx.db.read(lambda c: store.get(c, who.workspace_id, row.id))
    if found is None:
        raise NotFound(f"project {row.name!r} has no retention policy (it keeps every run)")
    return found


def set_policy(
    ctx: ServiceContext,
    who: Principal,
    project: str,
    *,
    keep_days: int,
    keep_with_feedback: bool = False,
    keep_in_datasets: bool = False,
) -> Policy:
    if not who.is_admin:
        raise Forbidden("retention policies need an admin API key")
    if isinstance(keep_days, bool) or not isinstance(keep_days, int):
        raise InvalidInput("keep_days must be a whole number", details={"field": "keep_days"})
    if not 1 <= keep_days <= MAX_DAYS:
        raise InvalidInput(
            f"keep_days must be between 1 and {MAX_DAYS}", details={"field": "keep_days"}
        )
    row = resolve_project(ctx, who, project)
    now = ctx.clock()

    def write(conn: Connection) -> Policy:
        policy = store.put(
            conn,
            who.workspace_id,
            row.id,
            keep_days=keep_days,
            keep_with_feedback=keep_with_feedback,
            keep_in_datasets=keep_in_datasets,
            now=now,
        )
        audit.entry(
            conn,
            now,
            who.workspace_id,
            who,
            "retention.set",
            target_type="project",
            target_id=row.id,
            details={
                "keep_days": keep_days,
                "keep_with_feedback": keep_with_feedback,
                "keep_in_datasets": keep_in_datasets,
            },
        )
        return policy

    return ctx.db.write(write)


def delete_policy(ctx: ServiceContext, who: Principal, project: str) -> None:
    if not who.is_admin:
        raise Forbidden("retention policies need an admin API key")
    row = resolve_project(ctx, who, project)
    now = ctx.clock()

    def write(conn: Connection) -> bool:
        if not store.delete(conn, who.workspace_id, row.id):
            return False
        audit.entry(
            conn,
            now,
            who.workspace_id,
            who,
            "retention.removed",
            target_type="project",
            target_id=row.id,
        )
        return True

    if not ctx.db.write(write):
        raise NotFound(f"project {row.name!r} has no retention policy")


@dataclass
class _Pass:
    position: Position = store.START
    deleted: int = 0
    kept: int = 0


@dataclass
class RetentionWorker:
    """The retention loop's state: where each project's pass stands, when the next is due.
    ``tick()`` does at most one batch per policy and returns how many runs it looked at."""

    ctx: ServiceContext
    passes: dict[str, _Pass] = field(default_factory=dict)
    next_pass_at: dict[str, float] = field(default_factory=dict)

    def tick(self) -> int:
        ctx = self.ctx
        policies = ctx.db.read(store.all_policies)
        now = ctx.clock()
        live = {p.project_id for p in policies}
        for gone in set(self.passes) - live:  # policy removed mid-pass
            del self.passes[gone]
        work = 0
        for policy in policies:
            if policy.project_id not in self.passes:
                if self.next_pass_at.get(policy.project_id, 0) > now:
                    continue
                self.passes[policy.project_id] = _Pass()
            work += self._step(policy, now)
        return work

    def _step(self, policy: Policy, now: int) -> int:
        ctx = self.ctx
        state = self.passes[policy.project_id]
        cutoff = now - policy.keep_days * DAY_US
        limit = ctx.settings.retention_batch_runs

        def write(conn: Connection) -> store.Batch:
            batch = store.delete_batch(conn, policy, cutoff, state.position, limit)
            done = batch.position is None
            if batch.deleted or done:
                store.record_progress(conn, policy.project_id, batch.deleted, now if done else None)
            return batch

        batch = ctx.db.write(write)
        state.deleted += batch.deleted
        state.kept += batch.kept
        if batch.deleted:
            log.info(
                "retention: project %s: deleted %d runs older than %d days (%d this pass)",
                policy.project_id,
                batch.deleted,
                policy.keep_days,
                state.deleted,
            )
        if batch.position is None:
            if state.deleted:
                attachments.sweep(ctx)  # the files of the deleted runs' attachments
            del self.passes[policy.project_id]
            self.next_pass_at[policy.project_id] = now + ctx.settings.retention_interval_s * 1e6
            if state.deleted or state.kept:
                log.info(
                    "retention: project %s: pass done, %d runs deleted, %d kept by the policy",
                    policy.project_id,
                    state.deleted,
                    state.kept,
                )
            return batch.deleted + batch.kept
        state.position = batch.position
        return max(1, batch.deleted + batch.kept)
