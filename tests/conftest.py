"""Shared fixtures: a real database per backend (SQLite and PostgreSQL), the real app in-process.

PostgreSQL: each pytest session creates its own schema in database ``test`` (so concurrent test
runs never see each other), migrates it once, and truncates every table before each test. Set
``GOLDLOOP_TEST_PG_URL`` to point elsewhere. Locally an unreachable PostgreSQL skips those tests;
under ``CI=true`` it fails them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from tests.receiver import Receiver, receiver

import langsmith_calls
from dashboard_helpers import sign_in
from goldloop.domain.clock import Clock, system_clock
from goldloop.http.app import create_app
from goldloop.services.context import ServiceContext
from goldloop.settings import Settings, load_settings
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import metadata
from goldloop.workers.service_loops import Workers

PG_BASE_URL = os.environ.get(
    "GOLDLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


_RECORDING = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module imports the SDK's names: see tests/langsmith_calls.py.
    config.stash[_RECORDING] = langsmith_calls.install()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.config.stash.get(_RECORDING, False):
        langsmith_calls.start_test()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "call" and report.passed and item.config.stash.get(_RECORDING, False):
        langsmith_calls.finish_test(item)
    return report


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true but {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private schema in the test database, migrated to head, dropped at the end."""
    schema = f"gl_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _pg_unavailable(str(exc.orig).splitlines()[0])
    sep = "&" if "?" in PG_BASE_URL else "?"
    url = f"{PG_BASE_URL}{sep}options=-csearch_path%3D{schema}"
    engine = sa.create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = sa.create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session (per xdist worker). Tests start from
    a copy instead of migrating their own (~0.5-1 s each, most of a small test's time). The
    migrations create schema only, no rows, so the copy is what a fresh migration gives; the
    migrations themselves run here, in tests/test_migrations.py and wherever a test migrates."""
    path = tmp_path_factory.mktemp("sqlite-template") / "goldloop.db"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database.engine)
    database.close()  # the last connection closed: the WAL is checkpointed into the file
    assert not path.with_name("goldloop.db-wal").exists()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    url = ""
    if backend == "postgres":
        url = request.getfixturevalue("pg_url")
        _truncate_pg(url)
    else:  # the default database file, already at head (see sqlite_template)
        (tmp_path / "data").mkdir(exist_ok=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "data/goldloop.db")
    # Background loops off: tests drive workers deterministically with flush().
    # Ingest worker processes off too: OTLP tests decode in process unless they ask for a pool.
    overrides = {
        "data_dir": tmp_path / "data",
        "database_url": url,
        "workers_in_process": False,
        "watchdog_interval_s": 0,
        "ingest_processes": 0,
        "gc_freeze": False,  # a process-wide, once-only setting: tested on its own
    }
    return load_settings(overrides, environ={})


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """A migrated, started database (writer running) for store and service tests: both
    backends' databases are at head already (sqlite_template, pg_url)."""
    database = Database(settings.effective_database_url)
    database.start()
    yield database
    database.close()


@pytest.fixture
def ctx(db: Database, settings: Settings) -> ServiceContext:
    return ServiceContext(db=db, settings=settings)


@pytest.fixture
def clock() -> Clock:
    """The app's clock: the system's, unless a test module overrides this with a FakeClock."""
    return system_clock


@pytest.fixture
async def app(
    settings: Settings, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        capsys.readouterr()  # the bootstrap banner
        yield application


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A local webhook receiver on 127.0.0.1."""
    with receiver() as r:
        yield r


@pytest.fixture
def workers(app: FastAPI) -> Iterator[Workers]:
    """The app's background workers, driven by the test (``flush``), stopped at the end."""
    w = Workers(app.state.ctx)
    yield w
    w.stop()


@pytest.fixture
def admin_key(app: FastAPI, settings: Settings) -> str:
    return settings.admin_key_path.read_text().strip()


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no API key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as c:
        yield c


@pytest.fixture
async def client(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated with the bootstrap admin key of the default workspace."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://goldloop.test", headers={"x-api-key": admin_key}
    ) as c:
        yield c


@pytest.fixture
async def browser(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client signed in to the dashboard with the admin key (no API key
    header: what a browser is)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as c:
        assert (await sign_in(c, admin_key)).status_code == 303
        yield c
