"""Feedback, feedback keys, datasets with versioned examples, tags.

Revision ID: 0003_feedback_datasets
Revises: 0002_dashboard_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_feedback_datasets"
down_revision = "0002_dashboard_sessions"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("pk", BigInt, nullable=False, autoincrement=True),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("score_is_bool", sa.Boolean, nullable=False),
        sa.Column("value", JSONDoc, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("correction", JSONDoc, nullable=True),
        sa.Column("has_correction", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_info", JSONDoc, nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_feedback"),
        sa.UniqueConstraint("workspace_id", "id", name="uq_feedback_workspace_id_id"),
    )
    op.create_index("ix_feedback_run", "feedback", ["workspace_id", "run_id"])
    op.create_index("ix_feedback_trace", "feedback", ["workspace_id", "trace_id"])
    op.create_index("ix_feedback_key_created", "feedback", ["workspace_id", "key", "created_at"])
    op.create_index("ix_feedback_created", "feedback", ["workspace_id", "created_at"])
    op.create_table(
        "feedback_keys",
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("min_score", sa.Float, nullable=True),
        sa.Column("max_score", sa.Float, nullable=True),
        sa.Column("categories", JSONDoc, nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "key", name="pk_feedback_keys"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("inputs_schema", JSONDoc, nullable=True),
        sa.Column("outputs_schema", JSONDoc, nullable=True),
        sa.Column("head_version", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_datasets_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("workspace_id", "name", name="uq_datasets_workspace_id_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "version", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_dataset_versions_dataset_id_datasets",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_dataset_versions_created", "dataset_versions", ["dataset_id", "created_at"])
    op.create_table(
        "dataset_tags",
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "tag", name="pk_dataset_tags"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_dataset_tags_dataset_id_datasets",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "dataset_examples",
        sa.Column("pk", BigInt, nullable=False, autoincrement=True),
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("example_id", sa.String(64), nullable=False),
        sa.Column("version_from", sa.BigInteger, nullable=False),
        sa.Column("version_to", sa.BigInteger, nullable=True),
        sa.Column("inputs", JSONDoc, nullable=False),
        sa.Column("outputs", JSONDoc, nullable=True),
        sa.Column("metadata", JSONDoc, nullable=True),
        sa.Column("splits", JSONDoc, nullable=True),
        sa.Column("lineage", JSONDoc, nullable=True),
        sa.Column("source_run_id", sa.String(64), nullable=True),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_dataset_examples"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_dataset_examples_dataset_id_datasets",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_dataset_examples_asof",
        "dataset_examples",
        ["dataset_id", "example_id", "version_from"],
    )
    op.create_index(
        "ix_dataset_examples_current",
        "dataset_examples",
        ["dataset_id", "version_to", "example_id"],
    )
    op.create_index(
        "ix_dataset_examples_changes", "dataset_examples", ["dataset_id", "version_from"]
    )
    op.create_index("ix_dataset_examples_hash", "dataset_examples", ["dataset_id", "inputs_hash"])
    op.create_index("ix_dataset_examples_run", "dataset_examples", ["dataset_id", "source_run_id"])


def downgrade() -> None:
    op.drop_table("dataset_examples")
    op.drop_table("dataset_tags")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
    op.drop_table("feedback_keys")
    op.drop_table("feedback")
