"""The one schema module: every table Goldloop stores, as SQLAlchemy Core.

Conventions:
- public ids are UUID strings (``id``); the runs table also has an integer ``pk`` for locality;
- every timestamp is an integer count of microseconds since the Unix epoch, UTC (``*_at``,
  ``start_time``, ``end_time``): portable across SQLite and PostgreSQL, compact, sortable;
- JSON documents use ``JSONDoc``: JSON on SQLite, JSONB on PostgreSQL.

Migrations under ``migrations/versions`` must produce exactly this schema; a test compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.String(36),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    # The first characters of the key, shown in listings so a person can tell keys apart.
    sa.Column("prefix", sa.String(16), nullable=False),
    # SHA-256 of the whole key. Keys are 256-bit random, so a fast hash is safe here.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.String(36),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column(
        "project_id",
        sa.String(36),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("trace_id", sa.String(64), nullable=False),
    sa.Column("parent_id", sa.String(64), nullable=True),
    # Ingest sequence: set from a monotonic counter on every insert and merge, so workers can
    # tail the table as a log from a watermark.
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("is_root", sa.Boolean, nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=True),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("latency_us", sa.BigInteger, nullable=True),
    sa.Column("error", JSONDoc, nullable=True),
    sa.Column("inputs", JSONDoc, nullable=True),
    sa.Column("outputs", JSONDoc, nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("provider", sa.String(100), nullable=True),
    sa.Column("input_tokens", sa.BigInteger, nullable=True),
    sa.Column("output_tokens", sa.BigInteger, nullable=True),
    sa.Column("total_tokens", sa.BigInteger, nullable=True),
    sa.Column("cost", sa.Float, nullable=True),
    sa.Column("session_id", sa.String(200), nullable=True),
    sa.Column("user_id", sa.String(200), nullable=True),
    sa.Column("tags", JSONDoc, nullable=True),
    sa.Column("metadata", JSONDoc, nullable=True),
    # Everything else the sender gave (usage details, OTel attributes, events, links, ...),
    # kept so nothing is dropped and exports are lossless.
    sa.Column("extra", JSONDoc, nullable=True),
    sa.Column("reference_example_id", sa.String(36), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("workspace_id", "id"),
    sa.Index("ix_runs_project_start", "project_id", "start_time"),
    sa.Index("ix_runs_project_root_start", "project_id", "is_root", "start_time"),
    sa.Index("ix_runs_trace", "workspace_id", "trace_id"),
    sa.Index("ix_runs_seq", "seq"),
)

# Dashboard sign-ins: one row per browser session. Only the SHA-256 of the session token is
# stored (like API keys); deleting the row is logout. A session dies with its API key.
dashboard_sessions = sa.Table(
    "dashboard_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.String(36),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "key_id",
        sa.String(36),
        sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # Synchronizer token for the session's forms (CSRF); random, unrelated to the session token.
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)
