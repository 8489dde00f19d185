"""An index for the runs list sorted by latency: a project's root runs by ``latency_us``.

The runs list sorted by latency (``ORDER BY latency_us DESC, pk DESC LIMIT 51`` over a project's
root runs) had no index to walk, so it read and sorted every root of the project (1.8 s at
1,000,000 runs, Issue #23). ``(project_id, is_root, latency_us, pk)`` serves that order and the
keyset cursor ``(latency_us, pk)`` from the index, both directions, on both dialects (on SQLite
``pk`` is the rowid, which every index ends with anyway).

Revision ID: 0026_runs_latency_index
Revises: 0025_runs_user_index
"""

from __future__ import annotations

from alembic import op

revision = "0026_runs_latency_index"
down_revision = "0025_runs_user_index"
branch_labels = None
depends_on = None

COLUMNS = ["project_id", "is_root", "latency_us", "pk"]


def upgrade() -> None:
    op.create_index("ix_runs_project_root_latency", "runs", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_runs_project_root_latency", table_name="runs")
