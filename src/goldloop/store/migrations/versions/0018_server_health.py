"""Reserved: worker liveness and server self-reporting (issue #25).

Revision ID: 0018_server_health
Revises: 0017_rule_action_leases
"""

from __future__ import annotations

revision = "0018_server_health"
down_revision = "0017_rule_action_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
