"""Migration 0014: datasets.data_type / datasets.metadata and feedback.project_id go down and
up again on either backend, and existing datasets read back as ``kv``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from goldloop.store import migrate
from goldloop.store.database import Database


def _columns(db: Database, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(db.engine).get_columns(table)}


def test_dataset_types_migration_downgrades_and_upgrades(db: Database) -> None:
    cfg = migrate._config()
    assert {"data_type", "metadata"} <= _columns(db, "datasets")
    assert "project_id" in _columns(db, "feedback")
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013_feedback_key_indexes")
    assert not {"data_type", "metadata"} & _columns(db, "datasets")
    assert "project_id" not in _columns(db, "feedback")
    with db.engine.begin() as conn:  # a dataset made before the upgrade
        conn.execute(
            sa.text("INSERT INTO workspaces (id, name, created_at) VALUES ('w-old', 'old', 1)")
        )
        conn.execute(
            sa.text(
                "INSERT INTO datasets (id, workspace_id, name, head_version, created_at, "
                "updated_at) VALUES ('d-old', 'w-old', 'old', 0, 1, 1)"
            )
        )
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    with db.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT data_type, metadata FROM datasets WHERE id = 'd-old'")
        ).one()
    assert tuple(row) == ("kv", None)
