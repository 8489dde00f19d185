"""Annotation queues (issue #20): queues of runs for people to review, their items, the
reviews and skips, and the reservations that keep two reviewers off the same item.

Revision ID: 0021_annotation_queues
Revises: 0020_score_configs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0021_annotation_queues"
down_revision = "0020_score_configs"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "annotation_queues",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("instructions", sa.Text, nullable=True),
        sa.Column("keys", JSONDoc, nullable=False),
        sa.Column("reviewers_needed", sa.Integer, nullable=False),
        sa.Column("dataset_id", sa.String(36), nullable=True),
        sa.Column("lease_s", sa.Integer, nullable=False),
        sa.Column("extra", JSONDoc, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_queues"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_annotation_queues_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_annotation_queues_dataset_id_datasets",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("workspace_id", "name", name="uq_annotation_queues_workspace_id_name"),
    )
    op.create_table(
        "annotation_queue_items",
        sa.Column("pk", BigInt, nullable=False, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("queue_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reviews", sa.Integer, nullable=False),
        sa.Column("added_by", sa.String(80), nullable=True),
        sa.Column("added_at", sa.BigInteger, nullable=False),
        sa.Column("last_reviewed_at", sa.BigInteger, nullable=True),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("dataset_result", JSONDoc, nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_annotation_queue_items"),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            name="fk_annotation_queue_items_queue_id_annotation_queues",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("id", name="uq_annotation_queue_items_id"),
        sa.UniqueConstraint("queue_id", "run_id", name="uq_annotation_queue_items_queue_id_run_id"),
    )
    op.create_index(
        "ix_annotation_queue_items_queue_status",
        "annotation_queue_items",
        ["queue_id", "status", "pk"],
    )
    op.create_table(
        "annotation_queue_reviews",
        sa.Column("pk", BigInt, nullable=False, autoincrement=True),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("queue_id", sa.String(36), nullable=False),
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("reviewer", sa.String(36), nullable=False),
        sa.Column("reviewer_name", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("scores", JSONDoc, nullable=True),
        sa.Column("correction", JSONDoc, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("feedback_ids", JSONDoc, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_annotation_queue_reviews"),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            name="fk_annotation_queue_reviews_queue_id_annotation_queues",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["annotation_queue_items.id"],
            name="fk_annotation_queue_reviews_item_id_annotation_queue_items",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "item_id", "reviewer", name="uq_annotation_queue_reviews_item_id_reviewer"
        ),
    )
    op.create_index(
        "ix_annotation_queue_reviews_queue",
        "annotation_queue_reviews",
        ["queue_id", "outcome"],
    )
    op.create_table(
        "annotation_queue_leases",
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("reviewer", sa.String(36), nullable=False),
        sa.Column("queue_id", sa.String(36), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("item_id", "reviewer", name="pk_annotation_queue_leases"),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["annotation_queue_items.id"],
            name="fk_annotation_queue_leases_item_id_annotation_queue_items",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_annotation_queue_leases_queue",
        "annotation_queue_leases",
        ["queue_id", "reviewer"],
    )


def downgrade() -> None:
    op.drop_index("ix_annotation_queue_leases_queue", table_name="annotation_queue_leases")
    op.drop_table("annotation_queue_leases")
    op.drop_index("ix_annotation_queue_reviews_queue", table_name="annotation_queue_reviews")
    op.drop_table("annotation_queue_reviews")
    op.drop_index("ix_annotation_queue_items_queue_status", table_name="annotation_queue_items")
    op.drop_table("annotation_queue_items")
    op.drop_table("annotation_queues")
