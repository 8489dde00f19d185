"""Apply Alembic migrations (on `goldloop serve` start and by `goldloop db upgrade`)."""

from __future__ import annotations

from functools import cache
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


@cache
def _scripts() -> ScriptDirectory:
    """The migration scripts, read once per process (they do not change while it runs; reading
    them compiles every script, which every app start would otherwise pay)."""
    return ScriptDirectory.from_config(_config())


def head_revision() -> str | None:
    return _scripts().get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _refuse_if_ahead(conn: Connection) -> tuple[str, ...]:
    """The database's current heads, after refusing one this code does not know."""
    script = _scripts()
    known = {rev.revision for rev in script.walk_revisions()}
    heads = MigrationContext.configure(conn).get_current_heads()
    for current in heads:
        if current not in known:
            raise DatabaseAhead(
                f"the database is at migration {current!r}, newer than this Goldloop "
                f"{__version__} knows (its newest is {script.get_current_head()!r}): a newer "
                "release upgraded it. Run that release (or newer), or restore the backup taken "
                "before the upgrade; see the CHANGELOG."
            )
    return tuple(heads)


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
        heads = _refuse_if_ahead(conn)
        if revision == "head" and heads == (_scripts().get_current_head(),):
            return  # already there (every start of a migrated server): nothing to load or run
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
