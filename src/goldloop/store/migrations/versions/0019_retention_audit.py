"""Reserved: retention policies, erasure and the audit log (issue #25).

Revision ID: 0019_retention_audit
Revises: 0018_server_health
"""

from __future__ import annotations

revision = "0019_retention_audit"
down_revision = "0018_server_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
