"""Worker liveness rows, and experiments made by older releases back in the experiments view.

- ``worker_heartbeats``: one row per worker process with its last heartbeat, so /metrics can
  tell a dead worker from a live one from the database alone (issue #25).
- Experiments made by the runner of releases before the experiments view (``goldloop.evaluate``
  did not register them; it only tagged each root run's metadata with ``experiment`` = the
  project's name, ``repetition``, ``dataset`` and ``dataset_version``) never had the
  ``projects.extra.experiment`` document the experiments view lists. Such projects get it now,
  recovered from their root runs' metadata (repetitions, dataset, pinned version), marked
  ``"recovered": "0018_server_health"``. Downgrade leaves the recovered documents: older code
  reads them the same way.

Revision ID: 0018_server_health
Revises: 0017_rule_action_leases
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018_server_health"
down_revision = "0017_rule_action_leases"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

_projects = sa.table(
    "projects",
    sa.column("id", sa.String),
    sa.column("workspace_id", sa.String),
    sa.column("name", sa.String),
    sa.column("extra", JSONDoc),
)
_runs = sa.table(
    "runs",
    sa.column("project_id", sa.String),
    sa.column("is_root", sa.Boolean),
    sa.column("start_time", sa.BigInteger),
    sa.column("pk", sa.BigInteger),
    sa.column("metadata", JSONDoc),
)
_datasets = sa.table(
    "datasets",
    sa.column("id", sa.String),
    sa.column("workspace_id", sa.String),
    sa.column("name", sa.String),
)


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("stopped_at", sa.BigInteger, nullable=True),
        sa.Column("loops", JSONDoc, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_worker_heartbeats"),
    )
    recover_old_experiments(op.get_bind())


def downgrade() -> None:
    op.drop_table("worker_heartbeats")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def recover_old_experiments(conn: sa.Connection) -> int:
    """Give each unregistered experiment of an older runner its ``experiment`` document;
    returns how many projects were marked. One indexed read per project that is not an
    experiment yet (its first root run); the root runs of those that are."""
    marked = 0
    for pid, workspace_id, name, extra in conn.execute(
        sa.select(_projects.c.id, _projects.c.workspace_id, _projects.c.name, _projects.c.extra)
    ).all():
        extra = extra if isinstance(extra, dict) else {}
        if extra.get("experiment") is not None or extra.get("reference_dataset_id") is not None:
            continue
        roots = sa.select(_runs.c.metadata).where(
            _runs.c.project_id == pid, _runs.c.is_root == sa.true()
        )
        first = conn.execute(roots.order_by(_runs.c.start_time, _runs.c.pk).limit(1)).scalar()
        if not isinstance(first, dict) or first.get("experiment") != name:
            continue
        repetitions, dataset, version = 1, None, None
        for meta in conn.execute(roots).scalars():
            if not isinstance(meta, dict) or meta.get("experiment") != name:
                continue
            rep = _int(meta.get("repetition"))
            repetitions = max(repetitions, rep + 1 if rep is not None else 1)
            if dataset is None and isinstance(meta.get("dataset"), str):
                dataset, version = meta["dataset"], _int(meta.get("dataset_version"))
        doc: dict[str, Any] = {
            "dataset_version": version,
            "repetitions": repetitions,
            "evaluators": [],
            "metadata": {},
            "recovered": revision,
        }
        new_extra = {**extra, "experiment": doc}
        if dataset is not None:
            dataset_id = conn.execute(
                sa.select(_datasets.c.id).where(
                    _datasets.c.workspace_id == workspace_id,
                    sa.or_(_datasets.c.name == dataset, _datasets.c.id == dataset),
                )
            ).scalar()
            if dataset_id is not None:
                new_extra["reference_dataset_id"] = dataset_id
        conn.execute(sa.update(_projects).where(_projects.c.id == pid).values(extra=new_extra))
        marked += 1
    return marked
