"""Pairwise review (issue #20): annotation queues that show two outputs for the same input and
ask which is better. ``pairwise_queues`` marks a queue as pairwise (and names the two
experiments it was made from, if any); ``pairwise_items`` gives each of its items the second
run (B; the item's own run is A) and the left/right order drawn for it.

Revision ID: 0024_pairwise_reviews
Revises: 0023_judge_canaries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_pairwise_reviews"
down_revision = "0023_judge_canaries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pairwise_queues",
        sa.Column("queue_id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("experiment_a", sa.String(36), nullable=True),
        sa.Column("experiment_b", sa.String(36), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("queue_id", name="pk_pairwise_queues"),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            name="fk_pairwise_queues_queue_id_annotation_queues",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_pairwise_queues_workspace_id_experiment_a_experiment_b",
        "pairwise_queues",
        ["workspace_id", "experiment_a", "experiment_b"],
    )
    op.create_table(
        "pairwise_items",
        sa.Column("item_id", sa.String(36), nullable=False),
        sa.Column("queue_id", sa.String(36), nullable=False),
        sa.Column("run_b_id", sa.String(64), nullable=False),
        sa.Column("trace_b_id", sa.String(64), nullable=False),
        sa.Column("example_id", sa.String(64), nullable=True),
        sa.Column("swapped", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="pk_pairwise_items"),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["annotation_queue_items.id"],
            name="fk_pairwise_items_item_id_annotation_queue_items",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["annotation_queues.id"],
            name="fk_pairwise_items_queue_id_annotation_queues",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_pairwise_items_queue_id", "pairwise_items", ["queue_id"])
    op.create_index("ix_pairwise_items_run_b_id", "pairwise_items", ["run_b_id"])


def downgrade() -> None:
    op.drop_index("ix_pairwise_items_run_b_id", table_name="pairwise_items")
    op.drop_index("ix_pairwise_items_queue_id", table_name="pairwise_items")
    op.drop_table("pairwise_items")
    op.drop_index(
        "ix_pairwise_queues_workspace_id_experiment_a_experiment_b", table_name="pairwise_queues"
    )
    op.drop_table("pairwise_queues")
