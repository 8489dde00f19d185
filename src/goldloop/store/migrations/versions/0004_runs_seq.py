"""PostgreSQL sequence for runs.seq (SQLite needs none: it has a single writer).

Revision ID: 0004_runs_seq
Revises: 0003_feedback_datasets
"""

from __future__ import annotations

from alembic import op

revision = "0004_runs_seq"
down_revision = "0003_feedback_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE IF NOT EXISTS runs_seq AS BIGINT")
    # Continue after whatever is stored, so seq stays monotonic across the upgrade.
    op.execute("SELECT setval('runs_seq', GREATEST((SELECT COALESCE(MAX(seq), 0) FROM runs), 1))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS runs_seq")
