"""Reserved: rule action claiming and leases (issue #24).

Revision ID: 0017_rule_action_leases
Revises: 0016_attachments
"""

from __future__ import annotations

revision = "0017_rule_action_leases"
down_revision = "0016_attachments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
