"""PostgreSQL's query plans (``EXPLAIN``) for what a store function executes: the statements
it really sent, with their parameters, after ``ANALYZE`` of the tables named (none: the planner
as a fresh database leaves it). The PostgreSQL half of ``sqlite_plans``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.database import Database


def postgres_plans(
    db: Database, call: Callable[[Connection], Any], *, analyze: Sequence[str] = ()
) -> list[str]:
    """One plan (EXPLAIN's lines joined) per statement ``call(conn)`` executed."""
    if analyze:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in analyze:
                conn.exec_driver_sql(f"ANALYZE {table}")
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    with db.engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", capture)
        call(conn)
        sa.event.remove(conn, "before_cursor_execute", capture)
        return [
            "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
            for statement, params in statements
        ]
