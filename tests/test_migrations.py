from __future__ import annotations

import sqlalchemy as sa
from alembic import command
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


def test_alert_detector_state_migration_downgrades_and_upgrades(db: Database) -> None:
    """0012 adds ``alert_rules.detector_state``; down and up again on either backend."""
    cfg = migrate._config()

    def columns() -> set[str]:
        return {c["name"] for c in sa.inspect(db.engine).get_columns("alert_rules")}

    assert "detector_state" in columns()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011_runs_stats_index")
    assert "detector_state" not in columns()
    migrate.upgrade(db.engine)
    assert "detector_state" in columns()
    assert migrate.current_revision(db.engine) == migrate.head_revision()
