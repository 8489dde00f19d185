"""Judge drift canaries (issue #20): a frozen set of human-labelled runs per judge rule, and
every re-scoring of it by the rule's judge with its agreement figures and drift verdict.

Revision ID: 0023_judge_canaries
Revises: 0022_redaction
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0023_judge_canaries"
down_revision = "0022_redaction"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "canary_sets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("rule_id", sa.String(36), nullable=False),
        sa.Column("judge_key", sa.String(200), nullable=False),
        sa.Column("human_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("interval_s", sa.Integer, nullable=True),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("min_drop", sa.Float, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("baseline_run_id", sa.String(36), nullable=True),
        sa.Column("pending_run_id", sa.String(36), nullable=True),
        sa.Column("next_due_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canary_sets"),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["rules.id"], name="fk_canary_sets_rule_id_rules", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("rule_id", name="uq_canary_sets_rule_id"),
    )
    op.create_index("ix_canary_sets_workspace_id", "canary_sets", ["workspace_id"])
    op.create_table(
        "canary_items",
        sa.Column("set_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("human_score", sa.Float, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("set_id", "run_id", name="pk_canary_items"),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["canary_sets.id"],
            name="fk_canary_items_set_id_canary_sets",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "canary_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("set_id", sa.String(36), nullable=False),
        sa.Column("workspace_id", sa.String(36), nullable=False),
        sa.Column("rule_id", sa.String(36), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("evaluator", sa.String(100), nullable=True),
        sa.Column("judge_model", sa.String(200), nullable=True),
        sa.Column("prompt_hash", sa.String(64), nullable=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("verdicts", JSONDoc, nullable=True),
        sa.Column("figures", JSONDoc, nullable=True),
        sa.Column("drift", JSONDoc, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_canary_runs"),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["canary_sets.id"],
            name="fk_canary_runs_set_id_canary_sets",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_canary_runs_set_id_created_at", "canary_runs", ["set_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_canary_runs_set_id_created_at", table_name="canary_runs")
    op.drop_table("canary_runs")
    op.drop_table("canary_items")
    op.drop_index("ix_canary_sets_workspace_id", table_name="canary_sets")
    op.drop_table("canary_sets")
