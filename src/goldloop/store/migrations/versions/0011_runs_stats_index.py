"""The project-start index of runs also covers the statistics' columns.

Project statistics (count, errors, latency percentiles, tokens, cost per time bucket) read a
handful of small columns of every run in a time range. Through ``(project_id, start_time)`` each
of those runs costs a visit to its table row, which carries the run's inputs and outputs
(kilobytes); with the columns in the index the query reads the index alone, also when it is
narrowed to root runs or to a kind (``is_root``, ``kind``). The index replaces
the old one rather than adding a second: its leading columns are the same, so every query that
used the old one uses this one.

Revision ID: 0011_runs_stats_index
Revises: 0010_webhook_signing
"""

from __future__ import annotations

from alembic import op

revision = "0011_runs_stats_index"
down_revision = "0010_webhook_signing"
branch_labels = None
depends_on = None

COLUMNS = [
    "project_id",
    "start_time",
    "workspace_id",
    "is_root",
    "kind",
    "status",
    "latency_us",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
]


def upgrade() -> None:
    op.create_index("ix_runs_project_start_stats", "runs", COLUMNS)
    op.drop_index("ix_runs_project_start", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_project_start", "runs", ["project_id", "start_time"])
    op.drop_index("ix_runs_project_start_stats", table_name="runs")
