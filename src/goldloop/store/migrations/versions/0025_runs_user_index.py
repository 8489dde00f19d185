"""An index for the users list: a project's runs by end user (``user_id``).

Listing a project's end users groups its runs by ``user_id`` and counts, per user, the runs, the
traces and the errors, with the first and last start time. With no index on ``user_id`` that
read every run of the project from its table row (2.8 s at 1,000,000 runs, Issue #23); with
``(project_id, user_id, start_time, trace_id, status, workspace_id)`` the list reads this index
alone, like the thread list reads ``ix_runs_project_thread`` (migration 0015).

Revision ID: 0025_runs_user_index
Revises: 0024_pairwise_reviews
"""

from __future__ import annotations

from alembic import op

revision = "0025_runs_user_index"
down_revision = "0024_pairwise_reviews"
branch_labels = None
depends_on = None

COLUMNS = ["project_id", "user_id", "start_time", "trace_id", "status", "workspace_id"]


def upgrade() -> None:
    op.create_index("ix_runs_project_user", "runs", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_runs_project_user", table_name="runs")
