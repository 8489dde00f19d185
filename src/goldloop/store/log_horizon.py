"""Tailing a table as a log without skipping rows that commit late.

Rows of ``runs`` carry a ``seq`` (``feedback`` its ``pk``) from a monotonic counter, and
workers read them from a watermark: ``seq > watermark``. On SQLite there is one writer, so
rows become visible in ``seq`` order and every ``seq`` up to ``max(seq)`` is final.

On PostgreSQL writers take numbers from a sequence and may commit out of order: a reader could see
seq 11 while seq 10 is still in flight, move its watermark past 10, and never see it. The
*horizon* prevents that with an advisory-lock barrier:

- every writer takes the advisory lock ``LOG_LOCK`` in SHARED mode (until its commit) before it
  draws numbers from the sequence (``hold_writer_lock``);
- a reader first reads the sequence's last value ``h``, then takes the same lock in EXCLUSIVE mode
  and lets it go at once (``horizon``). Any writer that drew a number <= h drew it before ``h``
  was read, so it held the shared lock already and the exclusive request waited for its commit or
  rollback. After the barrier every row with ``seq <= h`` that will ever exist is visible.

The cost is a brief pause of new writers while in-flight writes finish, once per tail poll.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Any constant works; it only has to be the same in every Goldloop process.
LOG_LOCK = 0x601D5E0
# The sequences that number logs, each with its own fixed query (names are not parameters).
_SEQUENCE_STATE = {
    "runs_seq": sa.text("SELECT last_value, is_called FROM runs_seq"),
    "feedback_pk_seq": sa.text("SELECT last_value, is_called FROM feedback_pk_seq"),
}


def hold_writer_lock(conn: Connection) -> None:
    """Call in a writing transaction before drawing log numbers (no-op on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": LOG_LOCK})


def horizon(conn: Connection, column: sa.Column[int], sequence: str) -> int:
    """The highest ``seq`` below which the log is complete. Run on a connection of its own
    (e.g. ``Database.read``): on PostgreSQL it waits for in-flight writers."""
    if conn.dialect.name != "postgresql":
        top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar_one()
        return int(top)
    if sequence not in _SEQUENCE_STATE:
        raise ValueError(f"not a log sequence: {sequence}")
    last, called = conn.execute(_SEQUENCE_STATE[sequence]).one()
    top = int(last) if called else 0
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOG_LOCK})
    conn.rollback()  # releases the barrier lock at once
    return top
