"""Indexes for the run query paths: lists by kind and by session.

Revision ID: 0006_query_indexes
Revises: 0005_rules_alerts
"""

from __future__ import annotations

from alembic import op

revision = "0006_query_indexes"
down_revision = "0005_rules_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_project_kind_start", "runs", ["project_id", "kind", "start_time"])
    op.create_index(
        "ix_runs_project_session_start", "runs", ["project_id", "session_id", "start_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_runs_project_session_start", table_name="runs")
    op.drop_index("ix_runs_project_kind_start", table_name="runs")
