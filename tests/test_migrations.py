from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import metadata


def test_migrations_reach_head_and_match_the_schema_module(db: Database) -> None:
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == [], f"migrations and schema.py disagree: {diff}"


def test_upgrade_is_idempotent(db: Database) -> None:
    migrate.upgrade(db.engine)
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision()
