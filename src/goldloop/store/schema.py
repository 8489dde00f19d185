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

# none_as_null: Python None is stored as SQL NULL (not the JSON text 'null'), so "absent" is
# one thing in the database and `IS NULL` finds it.
JSONDoc = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
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
    # Attributes the sender gave: {"metadata": {...}, "reference_dataset_id": ..., "end_time": µs}
    # (the LangSmith API stores its session metadata and experiment dataset here).
    sa.Column("extra", JSONDoc, nullable=True),
    sa.UniqueConstraint("workspace_id", "name"),
)

# PostgreSQL only (migration 0002): the source of runs.seq, safe for concurrent writers. SQLite,
# with its single writer, uses max(seq) + 1 inside the write transaction instead.
runs_seq = sa.Sequence("runs_seq", metadata=metadata)

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
    # Covers the project statistics' columns (migration 0011): a time range of a project is
    # aggregated from the index alone, without reading the runs' rows (inputs, outputs, extra).
    sa.Index(
        "ix_runs_project_start_stats",
        "project_id",
        "start_time",
        "workspace_id",
        "is_root",
        "kind",
        "status",
        "latency_us",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cost",
    ),
    sa.Index("ix_runs_project_root_start", "project_id", "is_root", "start_time"),
    # The runs list sorted by latency, its keyset cursor (latency_us, pk) included (migration 0026).
    # Root runs only (migration 0029): a latency is as good as random, so every run added to
    # this index writes a leaf page of its own; only a filter on is_root walks it in order.
    sa.Index(
        "ix_runs_project_root_latency",
        "project_id",
        "latency_us",
        "pk",
        sqlite_where=sa.text("is_root = 1"),
        postgresql_where=sa.text("is_root"),
    ),
    sa.Index("ix_runs_trace", "workspace_id", "trace_id"),
    # Errored runs only (migration 0030), with what finds their traces: an errored trace is
    # looked up among a day of a project's errored runs, read from this small index alone.
    sa.Index(
        "ix_runs_project_errors",
        "project_id",
        "start_time",
        "workspace_id",
        "trace_id",
        sqlite_where=sa.text("status = 'error'"),
        postgresql_where=sa.text("status = 'error'"),
    ),
    sa.Index("ix_runs_seq", "seq"),
    # Query paths (migration 0006): "runs of kind X" lists and "this conversation" lookups would
    # otherwise scan every run of the project when the value is rare.
    sa.Index("ix_runs_project_kind_start", "project_id", "kind", "start_time"),
    # "This conversation" lookups, and the thread list read from the index alone (migration 0015).
    sa.Index(
        "ix_runs_project_thread",
        "project_id",
        "session_id",
        "start_time",
        "trace_id",
        "status",
        "workspace_id",
    ),
    # Rule tailers read one project's log from a watermark (migration 0007).
    sa.Index("ix_runs_project_seq", "project_id", "seq"),
    # The users list read from the index alone (migration 0025).
    sa.Index(
        "ix_runs_project_user",
        "project_id",
        "user_id",
        "start_time",
        "trace_id",
        "status",
        "workspace_id",
    ),
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

# Feedback: a score, value, comment and/or correction on a run or a trace. ``run_id`` and
# ``trace_id`` are stored as the caller gave them: feedback may arrive before its run, so nothing
# here references ``runs``; reads resolve the run (and the trace of run-only feedback) by id.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("trace_id", sa.String(64), nullable=True),
    # Experiment-level feedback (a LangSmith summary evaluator's): the project, and no run.
    sa.Column("project_id", sa.String(64), nullable=True),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    # True when the score was sent as a boolean, so it is given back as one.
    sa.Column("score_is_bool", sa.Boolean, nullable=False),
    sa.Column("value", JSONDoc, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("correction", JSONDoc, nullable=True),
    sa.Column("has_correction", sa.Boolean, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("source_info", JSONDoc, nullable=True),
    # SHA-256 of the creation request, to tell an idempotent retry from a clashing reuse of an id.
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("workspace_id", "id"),
    # with the key, so a metric over one key's feedback on a window of runs reads only the
    # matching rows of each run (see store.alert_metrics)
    sa.Index("ix_feedback_run_key", "workspace_id", "run_id", "key"),
    sa.Index("ix_feedback_trace_key", "workspace_id", "trace_id", "key"),
    sa.Index("ix_feedback_key_created", "workspace_id", "key", "created_at"),
    sa.Index("ix_feedback_created", "workspace_id", "created_at"),
    sa.Index("ix_feedback_project_key", "workspace_id", "project_id", "key"),
)

# Hourly rollups of a project's runs (migration 0027, goldloop.store.rollups): what the projects
# list and the overview add up over whole hours, kept by a worker that tails ``runs.seq``. Sums
# are floats (as the live queries sum them); latencies are sparse log histograms
# (goldloop.domain.latency_histogram) stored as JSON ``[key, count, key, count, ...]``.
run_rollups = sa.Table(
    "run_rollups",
    metadata,
    sa.Column(
        "project_id",
        sa.String(36),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("hour_start", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column("traces", sa.BigInteger, nullable=False),
    sa.Column("errored_traces", sa.BigInteger, nullable=False),
    sa.Column("root_latency_n", sa.BigInteger, nullable=False),
    sa.Column("root_latency_sum", sa.Float, nullable=False),
    sa.Column("root_latency_hist", sa.Text, nullable=False),
    sa.Column("runs", sa.BigInteger, nullable=False),
    sa.Column("run_errors", sa.BigInteger, nullable=False),
    sa.Column("run_latency_n", sa.BigInteger, nullable=False),
    sa.Column("run_latency_sum", sa.Float, nullable=False),
    sa.Column("run_latency_hist", sa.Text, nullable=False),
    sa.Column("input_tokens", sa.Float, nullable=False),
    sa.Column("output_tokens", sa.Float, nullable=False),
    sa.Column("total_tokens", sa.Float, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
)

# Scored feedback per key of an hourly rollup, by the start hour of the scored run (trace-level
# feedback: of the trace's root run).
run_rollup_scores = sa.Table(
    "run_rollup_scores",
    metadata,
    sa.Column(
        "project_id",
        sa.String(36),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("hour_start", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("scored", sa.BigInteger, nullable=False),
    sa.Column("score_sum", sa.Float, nullable=False),
)

# Hours whose rollup a write made stale (feedback, erasure, retention, a run moved to another
# hour): readers compute a marked hour from its runs until the worker recomputes it and removes
# the marks it read (append-only, so a mark added meanwhile stays).
run_rollup_marks = sa.Table(
    "run_rollup_marks",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.String(36), nullable=False),
    sa.Column("hour_start", sa.BigInteger, nullable=False),
    sa.Index("ix_run_rollup_marks_project_hour", "project_id", "hour_start"),
)

# The rollup worker's place in the runs log: every run with ``seq <= cursor`` is rolled up.
# ``version`` goes up with every write of the worker, so two workers never both apply a tick.
run_rollup_state = sa.Table(
    "run_rollup_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("cursor", sa.BigInteger, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# Declared feedback keys: what a score or value for this key must look like.
feedback_keys = sa.Table(
    "feedback_keys",
    metadata,
    sa.Column("workspace_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("min_score", sa.Float, nullable=True),
    sa.Column("max_score", sa.Float, nullable=True),
    # categorical: [{"label": str, "score": float | null}, ...] in the reviewers' order
    sa.Column("categories", JSONDoc, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    # What reviewers read before scoring (the dashboard shows it next to the form).
    sa.Column("rubric", sa.Text, nullable=True),
    # Whether a reviewer is expected to write a correction along with the score.
    sa.Column("correction_expected", sa.Boolean, nullable=False, server_default=sa.false()),
    # Whether a lower score is the better one (charts and reviewers read scores that way).
    sa.Column("lower_is_better", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# What a feedback was before each edit or its deletion: who changed it (an API key of the
# workspace; no foreign key, so the history outlives a revoked or deleted key) and when.
feedback_history = sa.Table(
    "feedback_history",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column("feedback_id", sa.String(64), nullable=False),
    # the feedback's run (None for trace-level feedback), to list what was deleted from a run
    sa.Column("run_id", sa.String(64), nullable=True),
    # "edited" or "deleted"
    sa.Column("action", sa.String(16), nullable=False),
    # the feedback's fields before the change (key, score, value, comment, correction, ...)
    sa.Column("old", JSONDoc, nullable=False),
    sa.Column("changed_by", sa.String(36), nullable=True),
    sa.Column("changed_at", sa.BigInteger, nullable=False),
    sa.Index("ix_feedback_history_feedback", "workspace_id", "feedback_id", "pk"),
    sa.Index("ix_feedback_history_run", "workspace_id", "run_id"),
)

datasets = sa.Table(
    "datasets",
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
    sa.Column("inputs_schema", JSONDoc, nullable=True),
    sa.Column("outputs_schema", JSONDoc, nullable=True),
    # LangSmith's dataset type: "kv", "llm" or "chat" (Goldloop itself treats all alike).
    sa.Column("data_type", sa.String(16), nullable=False, server_default="kv"),
    sa.Column("metadata", JSONDoc, nullable=True),
    # The newest version number; 0 = the empty dataset as created. Bumped (row-locked) by every
    # write that changes examples, which serialises concurrent writers on PostgreSQL.
    sa.Column("head_version", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column(
        "dataset_id",
        sa.String(36),
        sa.ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("added", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("removed", sa.Integer, nullable=False),
    sa.Index("ix_dataset_versions_created", "dataset_id", "created_at"),
)

dataset_tags = sa.Table(
    "dataset_tags",
    metadata,
    sa.Column(
        "dataset_id",
        sa.String(36),
        sa.ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Tags on experiments (projects marked as experiments), unique per dataset: "the ``main``
# baseline of dataset X" is one row, and setting the tag on another experiment moves it.
experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column(
        "dataset_id",
        sa.String(36),
        sa.ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Column(
        "project_id",
        sa.String(36),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Examples as immutable rows valid over a half-open version range [version_from, version_to):
# an update closes the current row and opens a new one, a delete only closes it. ``version_to``
# is NULL while the row is current. Reading as of version v is one range query.
dataset_examples = sa.Table(
    "dataset_examples",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column(
        "dataset_id",
        sa.String(36),
        sa.ForeignKey("datasets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("example_id", sa.String(64), nullable=False),
    sa.Column("version_from", sa.BigInteger, nullable=False),
    sa.Column("version_to", sa.BigInteger, nullable=True),
    sa.Column("inputs", JSONDoc, nullable=False),
    sa.Column("outputs", JSONDoc, nullable=True),
    sa.Column("metadata", JSONDoc, nullable=True),
    sa.Column("splits", JSONDoc, nullable=True),
    # Where the example came from: {"run_id", "trace_id", "project_id", "feedback_ids",
    # "outputs_from": "correction" | "run"}; NULL when written by hand or imported without it.
    sa.Column("lineage", JSONDoc, nullable=True),
    sa.Column("source_run_id", sa.String(64), nullable=True),
    # SHA-256 of the canonical JSON of the inputs: finds examples with equal inputs.
    sa.Column("inputs_hash", sa.String(64), nullable=False),
    # When the example was first added (kept across updates), and when this row was written.
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_dataset_examples_asof", "dataset_id", "example_id", "version_from"),
    sa.Index("ix_dataset_examples_current", "dataset_id", "version_to", "example_id"),
    sa.Index("ix_dataset_examples_changes", "dataset_id", "version_from"),
    sa.Index("ix_dataset_examples_hash", "dataset_id", "inputs_hash"),
    sa.Index("ix_dataset_examples_run", "dataset_id", "source_run_id"),
)

# Files attached to runs and examples (issue 21). The bytes live in the blob store (a directory,
# content-addressed by SHA-256, see store.blobs), never in the database: a row only names the
# blob an owner (a run or an example, by id) holds under an attachment name. The same blob may be
# referenced by many rows and workspaces; a workspace reaches a blob only through its own rows.
attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column(
        "workspace_id",
        sa.String(36),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # "run" | "example"
    sa.Column("owner_kind", sa.String(16), primary_key=True),
    # a run's id; an example's "<dataset id>:<example id>" (example ids are unique per dataset)
    sa.Column("owner_id", sa.String(140), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mime_type", sa.String(255), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_attachments_blob", "workspace_id", "sha256"),
    sa.Index("ix_attachments_sha256", "sha256"),
)

# Blobs that lost a row (a run or example deleted, an attachment replaced): the only files a
# sweep looks at, so deleting never scans the whole blob store. A digest leaves this table when
# its file is deleted or turns out to be named again.
attachment_orphans = sa.Table(
    "attachment_orphans",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
)


# --- annotation queues (issue 20) ---

# A queue of runs for people to review: the score configs (declared feedback keys) they fill,
# how many reviewers each item needs, and the dataset completed items flow into (if any).
annotation_queues = sa.Table(
    "annotation_queues",
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
    # what reviewers read first (the rubric of each key is shown beside its controls)
    sa.Column("instructions", sa.Text, nullable=True),
    # the feedback keys reviewers fill, in order: ["correctness", "tone"]
    sa.Column("keys", JSONDoc, nullable=False),
    sa.Column("reviewers_needed", sa.Integer, nullable=False),
    # completed items become examples of this dataset (a new version each); NULL: none
    sa.Column(
        "dataset_id",
        sa.String(36),
        sa.ForeignKey("datasets.id", ondelete="SET NULL"),
        nullable=True,
    ),
    # how long an item stays reserved for the reviewer who was given it
    sa.Column("lease_s", sa.Integer, nullable=False),
    # LangSmith rubric items as sent (descriptions per key), given back on reads
    sa.Column("extra", JSONDoc, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

# One run in a queue (once per queue). ``reviews`` counts the reviews it has; at
# ``reviewers_needed`` the item is completed (and, with a dataset, becomes an example).
annotation_queue_items = sa.Table(
    "annotation_queue_items",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column(
        "queue_id",
        sa.String(36),
        sa.ForeignKey("annotation_queues.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("trace_id", sa.String(64), nullable=False),
    # pending | completed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reviews", sa.Integer, nullable=False),
    # who added it: an API key id, or "rule:<id>"
    sa.Column("added_by", sa.String(80), nullable=True),
    sa.Column("added_at", sa.BigInteger, nullable=False),
    sa.Column("last_reviewed_at", sa.BigInteger, nullable=True),
    sa.Column("completed_at", sa.BigInteger, nullable=True),
    # what completing it did to the queue's dataset: {"dataset_id", "example_id", "version",
    # "outcome": "added" | "updated" | "already_added" | ...}
    sa.Column("dataset_result", JSONDoc, nullable=True),
    sa.UniqueConstraint("queue_id", "run_id"),
    sa.Index("ix_annotation_queue_items_queue_status", "queue_id", "status", "pk"),
)

# A reviewer's answer on an item: the scores (also stored as feedback, ``feedback_ids``), the
# correction and comment, or a skip. One per (item, reviewer); the reviewer is an API key.
annotation_queue_reviews = sa.Table(
    "annotation_queue_reviews",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column(
        "queue_id",
        sa.String(36),
        sa.ForeignKey("annotation_queues.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "item_id",
        sa.String(36),
        sa.ForeignKey("annotation_queue_items.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("reviewer", sa.String(36), nullable=False),
    sa.Column("reviewer_name", sa.String(200), nullable=False),
    # reviewed | skipped
    sa.Column("outcome", sa.String(16), nullable=False),
    # {key: {"score": number | bool | null, "value": str | null}}
    sa.Column("scores", JSONDoc, nullable=True),
    sa.Column("correction", JSONDoc, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("feedback_ids", JSONDoc, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("item_id", "reviewer"),
    sa.Index("ix_annotation_queue_reviews_queue", "queue_id", "outcome"),
)

# Reservations: the item a reviewer was given, until ``expires_at``. An item needing n reviews
# is given to at most n reviewers at a time (reviews done plus live reservations).
annotation_queue_leases = sa.Table(
    "annotation_queue_leases",
    metadata,
    sa.Column(
        "item_id",
        sa.String(36),
        sa.ForeignKey("annotation_queue_items.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("reviewer", sa.String(36), primary_key=True),
    sa.Column("queue_id", sa.String(36), nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_annotation_queue_leases_queue", "queue_id", "reviewer"),
)


# --- automation: rules, their cursors and actions; alerts, channels, deliveries (issue 7) ---

rules = sa.Table(
    "rules",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column(
        "project_id",
        sa.String(36),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    # "run" (new or updated runs) or "feedback" (new feedback)
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("filter", sa.Text, nullable=True),
    sa.Column("sample_rate", sa.Float, nullable=False),
    sa.Column("root_only", sa.Boolean, nullable=False),
    sa.Column("actions", JSONDoc, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("daily_judge_budget", sa.Integer, nullable=True),
    # trigger "feedback": conditions on the feedback itself (domain.rules.parse_feedback_match)
    sa.Column("feedback_match", JSONDoc, nullable=True),
    # HMAC key of the rule's webhook actions (Goldloop-Signature); shown once, at creation
    sa.Column("signing_secret", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_rules_workspace", "workspace_id"),
)

# One row per rule: how far its tailer has read the run or feedback log, and its health.
rule_cursors = sa.Table(
    "rule_cursors",
    metadata,
    sa.Column(
        "rule_id",
        sa.String(36),
        sa.ForeignKey("rules.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("watermark", sa.BigInteger, nullable=False),
    sa.Column("processed", sa.BigInteger, nullable=False),
    sa.Column("matched", sa.BigInteger, nullable=False),
    sa.Column("last_lag_ms", sa.BigInteger, nullable=True),
    sa.Column("budget_day", sa.String(10), nullable=True),
    sa.Column("budget_used", sa.Integer, nullable=False),
    sa.Column("status", sa.String(200), nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# The outbox of rule actions: one row per (rule, object, action), so a replay never repeats one.
rule_actions = sa.Table(
    "rule_actions",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column(
        "rule_id",
        sa.String(36),
        sa.ForeignKey("rules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("object_id", sa.String(64), nullable=False),
    sa.Column("trace_id", sa.String(64), nullable=True),
    sa.Column("action_index", sa.Integer, nullable=False),
    sa.Column("action_type", sa.String(32), nullable=False),
    # pending | done | failed | skipped
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", JSONDoc, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("ingested_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # The worker that holds the action's lease (next_attempt_at is the lease's end); NULL when
    # no worker has it. A worker renews its leases while it lives (store.rule_queue).
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.UniqueConstraint("rule_id", "object_id", "action_index"),
    # Pending actions across rules (the /metrics backlog gauges).
    sa.Index("ix_rule_actions_due", "status", "next_attempt_at"),
    # One rule's due actions in arrival order: fair claiming per rule (store.rule_queue).
    sa.Index("ix_rule_actions_rule_due", "rule_id", "status", "pk", "next_attempt_at"),
)

# Worker liveness (migration 0018): one row per worker process (`goldloop worker`, or a server
# running its workers in process), its last heartbeat written from the database's point of view
# of that process. No heartbeat for longer than `worker_dead_after_s` = dead; a clean stop sets
# stopped_at. /metrics reads these rows, so it is right even when every worker is gone.
worker_heartbeats = sa.Table(
    "worker_heartbeats",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen_at", sa.BigInteger, nullable=False),
    sa.Column("stopped_at", sa.BigInteger, nullable=True),
    # per loop: {"actions": {"ticks": n, "errors": n}, ...}
    sa.Column("loops", JSONDoc, nullable=True),
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    # webhook | slack | pagerduty
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    # PagerDuty routing key; never returned by the API
    sa.Column("secret", sa.Text, nullable=True),
    # kind webhook: HMAC key of the Goldloop-Signature header; shown once, at creation
    sa.Column("signing_secret", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column(
        "project_id",
        sa.String(36),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("metric", JSONDoc, nullable=False),
    sa.Column("condition", JSONDoc, nullable=False),
    sa.Column("window_s", sa.Integer, nullable=False),
    sa.Column("every_s", sa.Integer, nullable=False),
    sa.Column("cooldown_s", sa.Integer, nullable=False),
    sa.Column("channel_ids", JSONDoc, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    # ok | firing
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("last_evaluated_at", sa.BigInteger, nullable=True),
    sa.Column("last_evaluation", JSONDoc, nullable=True),
    sa.Column("last_fired_at", sa.BigInteger, nullable=True),
    sa.Column("last_resolved_at", sa.BigInteger, nullable=True),
    sa.Column("acknowledged_at", sa.BigInteger, nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    # a change condition's detector between evaluations (domain.alert_detector.DetectorState);
    # also when a firing threshold came back. NULL: start afresh.
    sa.Column("detector_state", JSONDoc, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_alert_rules_workspace", "workspace_id"),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "alert_rule_id",
        sa.String(36),
        sa.ForeignKey("alert_rules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # fired | resolved | acknowledged
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("numbers", JSONDoc, nullable=True),
    sa.Column("worst_run_ids", JSONDoc, nullable=True),
    sa.Index("ix_alert_events_rule_at", "alert_rule_id", "at"),
)

# Outbox of outgoing HTTP notifications (alert channels and rule webhooks), retried with backoff.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("channel_id", sa.String(36), nullable=True),
    # a rule's webhook action: the rule whose signing secret signs it
    sa.Column("rule_id", sa.String(36), nullable=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("body", JSONDoc, nullable=False),
    # pending | sent | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id",
        sa.String(36),
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=True),
)


# --- retention and the audit log (issue 25) ---

# One row per project that has a retention policy; no row = keep everything.
retention_policies = sa.Table(
    "retention_policies",
    metadata,
    sa.Column(
        "project_id",
        sa.String(36),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("workspace_id", sa.String(36), nullable=False, index=True),
    sa.Column("keep_days", sa.Integer, nullable=False),
    # keep a whole trace when any of its runs (or the trace) has feedback / was copied to a dataset
    sa.Column("keep_with_feedback", sa.Boolean, nullable=False),
    sa.Column("keep_in_datasets", sa.Boolean, nullable=False),
    # progress of the retention worker: when it last finished a pass, runs deleted in total
    sa.Column("last_pass_at", sa.BigInteger, nullable=True),
    sa.Column("runs_deleted", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Administrative actions, per workspace: who (the API key, or the CLI / a worker), what, when,
# and counts. Never the content of what was deleted or erased.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("pk", BigInt, primary_key=True, autoincrement=True),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("actor_key_id", sa.String(36), nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=True),
    sa.Column("target_id", sa.String(200), nullable=True),
    sa.Column("details", JSONDoc, nullable=True),
    sa.Index("ix_audit_log_workspace_pk", "workspace_id", "pk"),
)

# PII redaction (migration 0022, services.redaction): one row per workspace (project_id '')
# and per project that overrides it; ``config`` is the document domain.redaction parses.
redaction_configs = sa.Table(
    "redaction_configs",
    metadata,
    sa.Column("workspace_id", sa.String(36), primary_key=True),
    sa.Column("project_id", sa.String(36), primary_key=True),
    sa.Column("config", JSONDoc, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Judge drift canaries (migration 0023, services.canaries): per judge rule, a frozen set of runs
# people labelled, with the label as it was when frozen; every re-scoring of the set by the
# rule's judge is a canary run with its agreement figures and its drift verdict.
canary_sets = sa.Table(
    "canary_sets",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("workspace_id", sa.String(36), nullable=False, index=True),
    sa.Column(
        "rule_id",
        sa.String(36),
        sa.ForeignKey("rules.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    sa.Column("judge_key", sa.String(200), nullable=False),
    sa.Column("human_key", sa.String(200), nullable=False),
    # binary (pass/fail labels) | continuous
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    # seconds between scheduled re-scorings; NULL: the canary_interval_s setting
    sa.Column("interval_s", sa.Integer, nullable=True),
    # the drift test: significance level and the smallest drop in agreement worth a page
    sa.Column("alpha", sa.Float, nullable=False),
    sa.Column("min_drop", sa.Float, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    # what drift is measured against: the first completed run, or the last one accepted
    sa.Column("baseline_run_id", sa.String(36), nullable=True),
    # the run queued and not finished yet (one at a time per set)
    sa.Column("pending_run_id", sa.String(36), nullable=True),
    sa.Column("next_due_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

canary_items = sa.Table(
    "canary_items",
    metadata,
    sa.Column(
        "set_id",
        sa.String(36),
        sa.ForeignKey("canary_sets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("trace_id", sa.String(64), nullable=True),
    sa.Column("human_score", sa.Float, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

canary_runs = sa.Table(
    "canary_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "set_id",
        sa.String(36),
        sa.ForeignKey("canary_sets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column("rule_id", sa.String(36), nullable=False),
    # first | schedule | judge_changed | manual
    sa.Column("trigger", sa.String(32), nullable=False),
    # queued | done | skipped | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("evaluator", sa.String(100), nullable=True),
    sa.Column("judge_model", sa.String(200), nullable=True),
    sa.Column("prompt_hash", sa.String(64), nullable=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    # {run_id: the judge's score} for each canary it scored
    sa.Column("verdicts", JSONDoc, nullable=True),
    sa.Column("figures", JSONDoc, nullable=True),
    sa.Column("drift", JSONDoc, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Index("ix_canary_runs_set_id_created_at", "set_id", "created_at"),
)

# --- pairwise review (issue 20, migration 0024, services.pairwise_reviews) ---

# An annotation queue whose items are pairs of runs for the same input; made from two
# experiments (A the baseline, B the candidate) or from pairs given one by one (both NULL).
pairwise_queues = sa.Table(
    "pairwise_queues",
    metadata,
    sa.Column(
        "queue_id",
        sa.String(36),
        sa.ForeignKey("annotation_queues.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("workspace_id", sa.String(36), nullable=False),
    sa.Column("experiment_a", sa.String(36), nullable=True),
    sa.Column("experiment_b", sa.String(36), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "workspace_id", "experiment_a", "experiment_b"),
)

# The second run of a pairwise item (the item's own run is A) and the order the two are shown
# in, drawn at random when the item was made: ``swapped`` puts B on the left.
pairwise_items = sa.Table(
    "pairwise_items",
    metadata,
    sa.Column(
        "item_id",
        sa.String(36),
        sa.ForeignKey("annotation_queue_items.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "queue_id",
        sa.String(36),
        sa.ForeignKey("annotation_queues.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # indexed: erasing a run takes out the pairs it is B of
    sa.Column("run_b_id", sa.String(64), nullable=False, index=True),
    sa.Column("trace_b_id", sa.String(64), nullable=False),
    sa.Column("example_id", sa.String(64), nullable=True),
    sa.Column("swapped", sa.Boolean, nullable=False),
)

# zstd dictionaries for the runs' large JSON documents on SQLite (goldloop.domain.payload_codec):
# a compressed value names its dictionary by ``id`` (the zstd dictionary id in its frame header),
# so a row here is never changed or deleted while a run may hold a frame that names it.
payload_dictionaries = sa.Table(
    "payload_dictionaries",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    # how many documents it was trained on
    sa.Column("samples", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)
