"""Reserved: score configs and feedback history (issue #20).

Revision ID: 0020_score_configs
Revises: 0019_retention_audit
"""

from __future__ import annotations

revision = "0020_score_configs"
down_revision = "0019_retention_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
