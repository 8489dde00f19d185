"""Compressed run payloads: SQLite's zstd dictionaries, PostgreSQL's lz4 TOAST.

SQLite: a table of zstd dictionaries (``payload_dictionaries``), trained on the database's own
payloads; runs' ``inputs``, ``outputs`` and ``extra`` may from then on hold a zstd frame naming
its dictionary (``goldloop.domain.payload_codec``). Existing rows stay as they are: text values
keep reading, nothing is rewritten.

PostgreSQL: the same three columns are compressed by TOAST with lz4 instead of pglz (PostgreSQL
14+ built with lz4; otherwise the columns are left as they are). Only values written from then on
use it; TOAST compresses a value when its row is larger than about 2 KB. The table is created
there too (empty), so both schemas are the same.

Revision ID: 0028_payload_compression
Revises: 0027_run_rollups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_payload_compression"
down_revision = "0027_run_rollups"
branch_labels = None
depends_on = None

COLUMNS = ("inputs", "outputs", "extra")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    ).scalar()
    return bool(found)


def upgrade() -> None:
    op.create_table(
        "payload_dictionaries",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    if _lz4_available():
        for column in COLUMNS:
            op.execute(f"ALTER TABLE runs ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        for column in COLUMNS:
            op.execute(f"ALTER TABLE runs ALTER COLUMN {column} SET COMPRESSION DEFAULT")
    op.drop_table("payload_dictionaries")
