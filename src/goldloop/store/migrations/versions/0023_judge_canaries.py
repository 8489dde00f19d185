"""Judge drift canaries (issue #20): reserved slot.

Revision ID: 0023_judge_canaries
Revises: 0022_redaction
"""

from __future__ import annotations

revision = "0023_judge_canaries"
down_revision = "0022_redaction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved: filled in by the change that needs it."""


def downgrade() -> None:
    """Reserved: filled in by the change that needs it."""
