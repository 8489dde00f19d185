"""Feedback indexes by run and by trace carry the key.

An alert metric over one key's feedback joins each run in its window to its feedback. With
(workspace_id, run_id) and (workspace_id, key, created_at) to choose from, SQLite searched every
feedback row of the key for each run: a one-hour window cost ~1 s at a few thousand scores.
(workspace_id, run_id, key) and (workspace_id, trace_id, key) replace the two indexes they
extend, so every earlier lookup by run or trace still has its index. The build reads the
feedback table once; it is far smaller than the runs table.

Revision ID: 0013_feedback_key_indexes
Revises: 0012_alert_detector_state
"""

from __future__ import annotations

from alembic import op

revision = "0013_feedback_key_indexes"
down_revision = "0012_alert_detector_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_feedback_run_key", "feedback", ["workspace_id", "run_id", "key"])
    op.create_index("ix_feedback_trace_key", "feedback", ["workspace_id", "trace_id", "key"])
    op.drop_index("ix_feedback_run", table_name="feedback")
    op.drop_index("ix_feedback_trace", table_name="feedback")


def downgrade() -> None:
    op.create_index("ix_feedback_run", "feedback", ["workspace_id", "run_id"])
    op.create_index("ix_feedback_trace", "feedback", ["workspace_id", "trace_id"])
    op.drop_index("ix_feedback_run_key", table_name="feedback")
    op.drop_index("ix_feedback_trace_key", table_name="feedback")
