"""Datasets keep a LangSmith ``data_type`` and a ``metadata`` document; feedback can belong to
an experiment (a project) rather than to one run.

``data_type`` is "kv", "llm" or "chat"; every existing dataset is "kv", which is what the
LangSmith API reported for them before. ``metadata`` is NULL on existing datasets.
``feedback.project_id`` holds the project of experiment-level feedback (LangSmith's summary
evaluators send feedback with a session and no run); NULL on every existing row, which are all
run feedback. The index serves "the summary feedback of this experiment".

Revision ID: 0014_dataset_types
Revises: 0013_feedback_key_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014_dataset_types"
down_revision = "0013_feedback_key_indexes"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column(
        "datasets",
        sa.Column("data_type", sa.String(16), nullable=False, server_default="kv"),
    )
    op.add_column("datasets", sa.Column("metadata", JSONDoc, nullable=True))
    op.add_column("feedback", sa.Column("project_id", sa.String(64), nullable=True))
    op.create_index("ix_feedback_project_key", "feedback", ["workspace_id", "project_id", "key"])


def downgrade() -> None:
    op.drop_index("ix_feedback_project_key", table_name="feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("project_id")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("metadata")
        batch.drop_column("data_type")
