"""Retention policies per project and the audit log of administrative actions (issue #25).

Revision ID: 0019_retention_audit
Revises: 0018_server_health
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019_retention_audit"
down_revision = "0018_server_health"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("keep_days", sa.Integer(), nullable=False),
        sa.Column("keep_with_feedback", sa.Boolean(), nullable=False),
        sa.Column("keep_in_datasets", sa.Boolean(), nullable=False),
        sa.Column("last_pass_at", sa.BigInteger(), nullable=True),
        sa.Column("runs_deleted", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_retention_policies")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_retention_policies_project_id_projects"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_retention_policies_workspace_id", "retention_policies", ["workspace_id"])
    op.create_table(
        "audit_log",
        sa.Column("pk", BigInt, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor_key_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=True),
        sa.Column("target_id", sa.String(200), nullable=True),
        sa.Column("details", JSONDoc, nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_workspace_pk", "audit_log", ["workspace_id", "pk"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_workspace_pk", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_retention_policies_workspace_id", table_name="retention_policies")
    op.drop_table("retention_policies")
