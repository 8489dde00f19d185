"""Feedback conditions on rules; the (project, seq) index rule tailers read by.

Revision ID: 0007_rule_feedback_match
Revises: 0006_query_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_rule_feedback_match"
down_revision = "0006_query_indexes"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("feedback_match", JSONDoc, nullable=True))
    op.create_index("ix_runs_project_seq", "runs", ["project_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_runs_project_seq", table_name="runs")
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("feedback_match")
