"""Annotation queues (issue #20): reserved slot.

Revision ID: 0021_annotation_queues
Revises: 0020_score_configs
"""

from __future__ import annotations

revision = "0021_annotation_queues"
down_revision = "0020_score_configs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved: filled in by the change that needs it."""


def downgrade() -> None:
    """Reserved: filled in by the change that needs it."""
