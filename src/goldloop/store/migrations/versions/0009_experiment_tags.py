"""Tags on experiments, unique per dataset (``main`` marks the baseline of a dataset).

Revision ID: 0009_experiment_tags
Revises: 0008_project_extra
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_experiment_tags"
down_revision = "0008_project_extra"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment_tags",
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_experiment_tags_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_experiment_tags_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "tag", name="pk_experiment_tags"),
    )
    op.create_index("ix_experiment_tags_project_id", "experiment_tags", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_experiment_tags_project_id", table_name="experiment_tags")
    op.drop_table("experiment_tags")
