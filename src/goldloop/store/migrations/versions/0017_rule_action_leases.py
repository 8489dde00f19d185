"""Rule actions carry their lease owner and are claimed per rule.

``lease_owner`` names the worker holding an action's lease (``next_attempt_at`` is when the
lease ends), so the worker can renew exactly its own leases while it lives and record an
outcome only for an action it still holds. The index ``(rule_id, status, pk, next_attempt_at)``
lets workers claim each rule's due actions in arrival order, a few per rule at a time, so one
rule's backlog cannot hold another's actions back, and the actions of a dead worker (the oldest
pending ones) come back first once their lease ends.

Revision ID: 0017_rule_action_leases
Revises: 0016_attachments
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_rule_action_leases"
down_revision = "0016_attachments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rule_actions") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
    op.create_index(
        "ix_rule_actions_rule_due", "rule_actions", ["rule_id", "status", "pk", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_rule_actions_rule_due", table_name="rule_actions")
    with op.batch_alter_table("rule_actions") as batch:
        batch.drop_column("lease_owner")
