"""Apply Alembic migrations (on `goldloop serve` start and by `goldloop db upgrade`)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from goldloop._version import __version__
from goldloop.domain.errors import GoldloopError

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every Goldloop process.
_PG_LOCK_KEY = 0x601D100


class DatabaseAhead(GoldloopError):
    """The database was migrated by a newer Goldloop: this code does not know its schema."""

    code = "database_ahead"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _refuse_if_ahead(conn: Connection) -> None:
    script = ScriptDirectory.from_config(_config())
    known = {rev.revision for rev in script.walk_revisions()}
    for current in MigrationContext.configure(conn).get_current_heads():
        if current not in known:
            raise DatabaseAhead(
                f"the database is at migration {current!r}, newer than this Goldloop "
                f"{__version__} knows (its newest is {script.get_current_head()!r}): a newer "
                "release upgraded it. Run that release (or newer), or restore the backup taken "
                "before the upgrade; see the CHANGELOG."
            )


def check_not_ahead(engine: Engine) -> None:
    """Raise ``DatabaseAhead`` (one line, no traceback wanted) when the database's migration
    is unknown to this code: a newer release migrated it, and this one must not touch it."""
    with engine.connect() as conn:
        _refuse_if_ahead(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to call from several processes at once on
    PostgreSQL (an advisory lock serialises them) and a no-op when already there. Refuses
    (``DatabaseAhead``) a database a newer release migrated."""
    cfg = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        _refuse_if_ahead(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
