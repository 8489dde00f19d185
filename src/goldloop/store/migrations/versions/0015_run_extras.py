"""Reserved: run-side LangSmith surface (issue #21).

Revision ID: 0015_run_extras
Revises: 0014_dataset_types
"""

from __future__ import annotations

revision = "0015_run_extras"
down_revision = "0014_dataset_types"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
