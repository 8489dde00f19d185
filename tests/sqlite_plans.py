"""SQLite's query plans for what a store function executes, on an empty migrated database.

For tests of performance properties that do not depend on timing: "this query reads that index
and sorts nothing". The plans are SQLite's own (``EXPLAIN QUERY PLAN``) for the statements the
function really sent, with their parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store import migrate
from goldloop.store.database import Database


def query_plans(
    tmp_path: Path,
    call: Callable[[Connection], Any],
    fill: Callable[[Connection], Any] | None = None,
) -> list[list[str]]:
    """One list of plan steps per statement that ``call(conn)`` executed; ``fill(conn)``, when
    given, first stores rows (committed, then ANALYZE), for plans under given statistics."""
    database = Database(f"sqlite:///{tmp_path / 'plans.db'}")
    migrate.upgrade(database.engine)
    if fill is not None:
        with database.engine.begin() as conn:
            fill(conn)
        with database.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    try:
        with database.engine.connect() as conn:
            sa.event.listen(conn, "before_cursor_execute", capture)
            call(conn)
            sa.event.remove(conn, "before_cursor_execute", capture)
            return [
                [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
                for sql, params in statements
            ]
    finally:
        database.close()
