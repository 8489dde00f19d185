"""Hourly rollups of runs per project (Issue #23): the projects list and the project overview
read whole hours from ``run_rollups`` / ``run_rollup_scores`` instead of every run of the range.
``run_rollup_marks`` lists hours a write made stale; ``run_rollup_state`` holds the worker's
place in the runs log. Readers compute from the runs every hour that is not rolled up yet.

Revision ID: 0027_run_rollups
Revises: 0026_runs_latency_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_run_rollups"
down_revision = "0026_runs_latency_index"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"],
        ["projects.id"],
        name=f"fk_{table}_project_id_projects",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "run_rollups",
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("hour_start", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("traces", sa.BigInteger, nullable=False),
        sa.Column("errored_traces", sa.BigInteger, nullable=False),
        sa.Column("root_latency_n", sa.BigInteger, nullable=False),
        sa.Column("root_latency_sum", sa.Float, nullable=False),
        sa.Column("root_latency_hist", sa.Text, nullable=False),
        sa.Column("runs", sa.BigInteger, nullable=False),
        sa.Column("run_errors", sa.BigInteger, nullable=False),
        sa.Column("run_latency_n", sa.BigInteger, nullable=False),
        sa.Column("run_latency_sum", sa.Float, nullable=False),
        sa.Column("run_latency_hist", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.Float, nullable=False),
        sa.Column("output_tokens", sa.Float, nullable=False),
        sa.Column("total_tokens", sa.Float, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "hour_start", name="pk_run_rollups"),
        _project_fk("run_rollups"),
    )
    op.create_table(
        "run_rollup_scores",
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("hour_start", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("scored", sa.BigInteger, nullable=False),
        sa.Column("score_sum", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "hour_start", "key", name="pk_run_rollup_scores"),
        _project_fk("run_rollup_scores"),
    )
    op.create_table(
        "run_rollup_marks",
        sa.Column("pk", BigInt, nullable=False, autoincrement=True),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("hour_start", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_run_rollup_marks"),
    )
    op.create_index(
        "ix_run_rollup_marks_project_hour", "run_rollup_marks", ["project_id", "hour_start"]
    )
    op.create_table(
        "run_rollup_state",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_rollup_state"),
    )


def downgrade() -> None:
    op.drop_table("run_rollup_state")
    op.drop_index("ix_run_rollup_marks_project_hour", table_name="run_rollup_marks")
    op.drop_table("run_rollup_marks")
    op.drop_table("run_rollup_scores")
    op.drop_table("run_rollups")
