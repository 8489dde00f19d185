"""PII redaction settings (issue #25): reserved slot.

Revision ID: 0022_redaction
Revises: 0021_annotation_queues
"""

from __future__ import annotations

revision = "0022_redaction"
down_revision = "0021_annotation_queues"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved: filled in by the change that needs it."""


def downgrade() -> None:
    """Reserved: filled in by the change that needs it."""
