"""Score configs: declared feedback keys get a rubric, a "correction expected" flag, a
direction ("lower is better") and categories with scores; feedback keeps a history of its edits
and its deletion (issue #20).

Categories were a list of labels; they become ``[{"label", "score": null}, ...]`` (and back on
downgrade, dropping the scores).

Revision ID: 0020_score_configs
Revises: 0019_retention_audit
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020_score_configs"
down_revision = "0019_retention_audit"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_keys = sa.table(
    "feedback_keys",
    sa.column("workspace_id", sa.String),
    sa.column("key", sa.String),
    sa.column("categories", JSONDoc),
)


def _rewrite_categories(convert: Any) -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_keys.c.workspace_id, _keys.c.key, _keys.c.categories).where(
            _keys.c.categories.is_not(None)
        )
    ).all()
    for workspace_id, key, categories in rows:
        if not isinstance(categories, list):
            continue
        conn.execute(
            sa.update(_keys)
            .where(_keys.c.workspace_id == workspace_id, _keys.c.key == key)
            .values(categories=[convert(c) for c in categories])
        )


def upgrade() -> None:
    with op.batch_alter_table("feedback_keys") as batch:
        batch.add_column(sa.Column("rubric", sa.Text, nullable=True))
        batch.add_column(
            sa.Column("correction_expected", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("lower_is_better", sa.Boolean, nullable=False, server_default=sa.false())
        )
    _rewrite_categories(lambda c: c if isinstance(c, dict) else {"label": str(c), "score": None})
    op.create_table(
        "feedback_history",
        sa.Column("pk", BigInt, nullable=False, autoincrement=True),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("feedback_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("old", JSONDoc, nullable=False),
        sa.Column("changed_by", sa.String(36), nullable=True),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_feedback_history"),
    )
    op.create_index(
        "ix_feedback_history_feedback",
        "feedback_history",
        ["workspace_id", "feedback_id", "pk"],
    )
    op.create_index("ix_feedback_history_run", "feedback_history", ["workspace_id", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_history_run", table_name="feedback_history")
    op.drop_index("ix_feedback_history_feedback", table_name="feedback_history")
    op.drop_table("feedback_history")
    _rewrite_categories(lambda c: c.get("label") if isinstance(c, dict) else c)
    with op.batch_alter_table("feedback_keys") as batch:
        batch.drop_column("lower_is_better")
        batch.drop_column("correction_expected")
        batch.drop_column("rubric")
