"""Attachments: which blob (by SHA-256) a run or an example holds under a name (issue #21).

The bytes live in the blob store on disk (``attachments_dir``), not in this table;
``attachment_orphans`` lists the blobs that lost a row, for the sweep that deletes files.

Revision ID: 0016_attachments
Revises: 0015_run_extras
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_attachments"
down_revision = "0015_run_extras"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(140), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_attachments_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "owner_kind", "owner_id", "name", name="pk_attachments"
        ),
    )
    op.create_index("ix_attachments_blob", "attachments", ["workspace_id", "sha256"])
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"])
    op.create_table(
        "attachment_orphans",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_attachment_orphans"),
    )


def downgrade() -> None:
    op.drop_table("attachment_orphans")
    op.drop_index("ix_attachments_sha256", table_name="attachments")
    op.drop_index("ix_attachments_blob", table_name="attachments")
    op.drop_table("attachments")
