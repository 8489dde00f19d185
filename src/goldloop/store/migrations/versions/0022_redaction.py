"""PII redaction settings per workspace, optionally per project (issue #25).

Revision ID: 0022_redaction
Revises: 0021_annotation_queues
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022_redaction"
down_revision = "0021_annotation_queues"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "redaction_configs",
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("config", JSONDoc, nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "project_id", name=op.f("pk_redaction_configs")),
    )


def downgrade() -> None:
    op.drop_table("redaction_configs")
