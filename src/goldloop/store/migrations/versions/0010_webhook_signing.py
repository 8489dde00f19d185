"""Signed webhooks: a signing secret per webhook channel and per rule, and the rule a delivery
comes from (so the sender can find the secret).

Revision ID: 0010_webhook_signing
Revises: 0009_experiment_tags
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_webhook_signing"
down_revision = "0009_experiment_tags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("channels", sa.Column("signing_secret", sa.Text, nullable=True))
    op.add_column("rules", sa.Column("signing_secret", sa.Text, nullable=True))
    op.add_column("deliveries", sa.Column("rule_id", sa.String(36), nullable=True))


def downgrade() -> None:
    for table, column in (
        ("deliveries", "rule_id"),
        ("rules", "signing_secret"),
        ("channels", "signing_secret"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
