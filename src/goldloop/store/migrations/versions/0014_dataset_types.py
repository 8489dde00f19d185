"""Reserved: dataset data_type/metadata, experiment-level feedback (issue #21).

Revision ID: 0014_dataset_types
Revises: 0013_feedback_key_indexes
"""

from __future__ import annotations

revision = "0014_dataset_types"
down_revision = "0013_feedback_key_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
