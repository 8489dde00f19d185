"""The project-thread index of runs also covers what the thread list counts.

Listing a project's conversation threads groups its runs by thread id (``session_id``) and counts,
per thread, the runs, the traces (turns) and the errors, with the first and last start time.
Through ``(project_id, session_id, start_time)`` each run costs a visit to its table row (which
carries the run's inputs and outputs); with ``trace_id`` and ``status`` in the index the list reads
the index alone. The index replaces the old one rather than adding a second: its leading columns
are the same, so every query that used the old one (a filter on one conversation) uses this one.

Revision ID: 0015_run_extras
Revises: 0014_dataset_types
"""

from __future__ import annotations

from alembic import op

revision = "0015_run_extras"
down_revision = "0014_dataset_types"
branch_labels = None
depends_on = None

COLUMNS = ["project_id", "session_id", "start_time", "trace_id", "status", "workspace_id"]


def upgrade() -> None:
    op.create_index("ix_runs_project_thread", "runs", COLUMNS)
    op.drop_index("ix_runs_project_session_start", table_name="runs")


def downgrade() -> None:
    op.create_index(
        "ix_runs_project_session_start", "runs", ["project_id", "session_id", "start_time"]
    )
    op.drop_index("ix_runs_project_thread", table_name="runs")
