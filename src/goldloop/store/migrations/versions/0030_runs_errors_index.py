"""A partial index of errored runs, with what finds their traces.

A trace counts as errored when any of its runs failed, and such a run may start up to a day
after its root (``store.trace_stats.ERROR_TAIL``). So the projects list, the overview and the
edges of a rolled-up range read a day of each project's errored runs for their trace ids:
through ``ix_runs_project_start_stats``, which lacks ``trace_id``, that is one table row per
errored run (25-68 ms on PostgreSQL at 1,000,000 runs, 1,357 errored runs in 26 hours). This
index holds errored runs only, so it stays small (3.6 MB at 1,000,000 runs, against 204 MB for
the stats index) and costs an insert only when a run fails; the query is answered from it
alone (0.7-9 ms). Queries name the status as a literal (``trace_stats.status_error``) so that
both planners match the index's condition.

Revision ID: 0030_runs_errors_index
Revises: 0029_runs_latency_index_roots
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030_runs_errors_index"
down_revision = "0029_runs_latency_index_roots"
branch_labels = None
depends_on = None

NAME = "ix_runs_project_errors"


def upgrade() -> None:
    op.create_index(
        NAME,
        "runs",
        ["project_id", "start_time", "workspace_id", "trace_id"],
        sqlite_where=sa.text("status = 'error'"),
        postgresql_where=sa.text("status = 'error'"),
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="runs")
