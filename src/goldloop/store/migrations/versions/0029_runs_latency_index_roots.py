"""The runs list's latency index holds root runs only.

``ix_runs_project_root_latency`` (migration 0026) serves the runs list sorted by latency over a
project's root runs. It held every run, and a run's latency is as good as random, so each new
run went into its own leaf page of the index: with the table past the index's cached pages,
that is a 16 KiB page written to the WAL and again to the database file per run, a third of
all the pages an ingest batch wrote at 700,000 runs (issue 24, ``bench/ingest_growth.py``).
Child runs never used it: a query that filters ``is_root`` on its value can walk it in latency
order, one over every run (both values of ``is_root``) cannot. Partial, on root runs only
(``is_root = 1`` on SQLite, where SQLAlchemy binds the value and SQLite matches the bound 1;
``is_root`` on PostgreSQL), it takes one insert per trace instead of one per run. ``is_root``
leaves the columns: every entry has the same value, and on PostgreSQL, which drops a condition
the index's predicate implies, a column left in between kept ``latency_us IS NULL`` (the roots
without a latency, the last page) from being a bound of the index scan.

Revision ID: 0029_runs_latency_index_roots
Revises: 0028_payload_compression
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029_runs_latency_index_roots"
down_revision = "0028_payload_compression"
branch_labels = None
depends_on = None

NAME = "ix_runs_project_root_latency"
COLUMNS = ["project_id", "latency_us", "pk"]
BEFORE = ["project_id", "is_root", "latency_us", "pk"]


def upgrade() -> None:
    op.drop_index(NAME, table_name="runs")
    op.create_index(
        NAME,
        "runs",
        COLUMNS,
        sqlite_where=sa.text("is_root = 1"),
        postgresql_where=sa.text("is_root"),
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="runs")
    op.create_index(NAME, "runs", BEFORE)
