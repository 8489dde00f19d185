"""Projects keep sender-provided attributes (metadata, the dataset an experiment ran on, an end
time) in an ``extra`` document.

Revision ID: 0008_project_extra
Revises: 0007_rule_feedback_match
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_project_extra"
down_revision = "0007_rule_feedback_match"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("projects", sa.Column("extra", JSONDoc, nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "extra")
