"""Alert rules keep their change detector's state between evaluations.

``detector_state`` holds a change condition's CUSUM statistic, the end of the buckets folded
into it, and the baseline frozen while an incident lasts (and when a firing alert came back,
for thresholds too). NULL, as on every existing rule, means "start afresh": the first
evaluation after the upgrade looks one window back, and a rule that is firing freezes the
baseline it sees then.

Revision ID: 0012_alert_detector_state
Revises: 0011_runs_stats_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_alert_detector_state"
down_revision = "0011_runs_stats_index"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("alert_rules", sa.Column("detector_state", JSONDoc, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("detector_state")
