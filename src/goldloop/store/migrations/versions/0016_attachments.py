"""Reserved: attachments blob references (issue #21).

Revision ID: 0016_attachments
Revises: 0015_run_extras
"""

from __future__ import annotations

revision = "0016_attachments"
down_revision = "0015_run_extras"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
