"""Releases: the version, the refusal of a database newer than the code, experiments of older
releases after an upgrade, and two servers bootstrapping one empty database at once. Each on a
database of its own (a file, or a private PostgreSQL schema), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import goldloop
from goldloop._version import __version__
from goldloop.http import app as app_module
from goldloop.services import experiments
from goldloop.services.context import Principal, ServiceContext
from goldloop.settings import load_settings
from goldloop.store import migrate
from goldloop.store.database import Database, create_engine
from goldloop.store.schema import runs
from run_rows import run_row

PG_BASE_URL = os.environ.get(
    "GOLDLOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SRC = str(Path(goldloop.__file__).resolve().parents[1])
BEFORE = "0017_rule_action_leases"
"""The last migration of the release before this one."""
FUTURE = "9999_from_a_newer_release"
T0 = 1_764_150_000_000_000


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a database nobody has touched: a new SQLite file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'release.db'}"
        return
    schema = f"gl_rel_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not available: {exc}")
    sep = "&" if "?" in PG_BASE_URL else "?"
    try:
        yield f"{PG_BASE_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def goldloop_cli(
    *args: str, data_dir: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "GOLDLOOP_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "goldloop", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_version_is_reported() -> None:
    done = goldloop_cli("--version", data_dir=Path("."))
    assert done.returncode == 0
    assert done.stdout.strip() == f"goldloop, version {__version__}"


@pytest.mark.slow
def test_a_database_newer_than_the_code_is_refused_in_one_line(
    empty_url: str, tmp_path: Path
) -> None:
    engine = create_engine(empty_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": FUTURE})
    with pytest.raises(migrate.DatabaseAhead, match=FUTURE):
        migrate.upgrade(engine)  # nothing is touched
    engine.dispose()

    for command in (
        ["db", "upgrade"],
        ["serve", "--port", str(free_port())],
        ["worker"],
    ):
        done = goldloop_cli(*command, "--database-url", empty_url, data_dir=tmp_path / "data")
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (command, done.stderr)
        assert lines[0].startswith("error: the database is at migration")
        assert FUTURE in lines[0]
        assert migrate.head_revision() in lines[0]
        assert "Traceback" not in done.stdout + done.stderr

    engine = create_engine(empty_url)
    assert migrate.current_revision(engine) == FUTURE  # still as the newer release left it
    engine.dispose()


def _old_release_rows(conn: sa.Connection) -> dict[str, str]:
    """What an older release left: a workspace, a dataset, the project of an experiment whose
    runner tagged each root run's metadata (no ``experiment`` document on the project), and a
    plain project whose runs carry other metadata."""
    ws, ds, exp, plain = (str(uuid.uuid4()) for _ in range(4))
    t = sa.table
    c = sa.column
    conn.execute(
        sa.insert(t("workspaces", c("id"), c("name"), c("created_at"))),
        {"id": ws, "name": "default", "created_at": T0},
    )
    conn.execute(
        sa.insert(
            t(
                "datasets",
                c("id"),
                c("workspace_id"),
                c("name"),
                c("head_version"),
                c("created_at"),
                c("updated_at"),
            )
        ),
        {
            "id": ds,
            "workspace_id": ws,
            "name": "refunds",
            "head_version": 3,
            "created_at": T0,
            "updated_at": T0,
        },
    )
    projects = t("projects", c("id"), c("workspace_id"), c("name"), c("created_at"))
    conn.execute(
        sa.insert(projects),
        [
            {"id": exp, "workspace_id": ws, "name": "agent-v1-3f2a9c1d", "created_at": T0},
            {"id": plain, "workspace_id": ws, "name": "production", "created_at": T0 + 1},
        ],
    )
    rows = []
    for i in range(3):
        for rep in range(2):
            meta = {
                "experiment": "agent-v1-3f2a9c1d",
                "example_id": f"ex{i}",
                "repetition": rep,
                "dataset": "refunds",
                "dataset_version": 2,
            }
            rid = uuid.uuid4().hex
            rows.append(run_row(ws, exp, rid, metadata=meta, start_time=T0 + 10 * i + rep))
    rows.append(run_row(ws, plain, uuid.uuid4().hex, metadata={"experiment": "not this one"}))
    conn.execute(sa.insert(runs), rows)
    return {"workspace": ws, "dataset": ds, "experiment": exp, "plain": plain}


def test_experiments_of_an_older_release_appear_after_the_upgrade(
    empty_url: str, tmp_path: Path
) -> None:
    engine = create_engine(empty_url)
    migrate.upgrade(engine, BEFORE)
    with engine.begin() as conn:
        ids = _old_release_rows(conn)
    engine.dispose()

    settings = load_settings({"data_dir": tmp_path / "data", "database_url": empty_url}, environ={})
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    db.start()
    try:
        ctx = ServiceContext(db=db, settings=settings)
        who = Principal(workspace_id=ids["workspace"], key_id="test", role="admin")
        listed = experiments.list_experiments(ctx, who).items
        assert [e.id for e in listed] == [ids["experiment"]]  # the plain project is not one
        exp = listed[0]
        assert exp.name == "agent-v1-3f2a9c1d"
        assert exp.dataset_id == ids["dataset"]
        assert exp.dataset == "refunds"
        assert exp.dataset_version == 2
        assert exp.repetitions == 2
        assert exp.run_count == 6
        by_dataset = experiments.list_experiments(ctx, who, dataset="refunds").items
        assert [e.id for e in by_dataset] == [ids["experiment"]]
        assert experiments.get_experiment(ctx, who, "agent-v1-3f2a9c1d").id == ids["experiment"]
    finally:
        db.close()


def test_two_servers_starting_on_one_empty_database_both_start_and_say_where_the_key_is(
    backend: str, empty_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On PostgreSQL at the same moment; a SQLite file has one server at a time, so there
    the second starts after the first."""
    contexts = []
    for name in ("a", "b"):
        settings = load_settings(
            {"data_dir": tmp_path / name, "database_url": empty_url}, environ={}
        )
        contexts.append(ServiceContext(db=Database(settings.effective_database_url),
                                       settings=settings))  # fmt: skip
    together = backend == "postgres"
    barrier = threading.Barrier(2 if together else 1)
    errors: list[BaseException] = []

    def start(ctx: ServiceContext) -> None:
        barrier.wait()
        try:
            app_module.start(ctx)
        except BaseException as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(ctx,)) for ctx in contexts]
    for th in threads:
        th.start()
        if not together:
            th.join(120)
    for th in threads:
        th.join(120)
    for ctx in contexts:
        ctx.db.close()
    assert errors == []
    key_files = [ctx.settings.admin_key_path for ctx in contexts]
    assert sum(p.exists() for p in key_files) == 1
    out = capsys.readouterr().out
    assert out.count("this is the only time it is printed") == 1
    loser = next(p for p in key_files if not p.exists())
    assert f"it is not in {loser} but in the admin-key file" in out
    assert "goldloop keys create --role admin" in out
