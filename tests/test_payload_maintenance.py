"""`goldloop payloads compact|retrain` (issue #24): runs stored before the database had its
dictionary get compressed, a new dictionary can replace the old ones, and after an erasure
``retrain --recompress`` leaves no fragment of the erased text in any dictionary. Reads and
filters give the same answers throughout; ingest meanwhile loses nothing."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from fastapi import FastAPI

from goldloop.cli.main import cli
from goldloop.domain import payload_codec
from goldloop.http.app import create_app
from goldloop.services import auth, ingest, payload_compression, payload_maintenance
from goldloop.services.context import ServiceContext
from goldloop.settings import Settings
from goldloop.store.database import Database
from goldloop.store.payload_compaction import Change
from ingest_helpers import app_ctx

WORDS = (  # noqa: SIM905
    "refund order parcel delayed customer agent weather booking invoice policy flight hotel "
    "Crème BRÛLÉE 100% sure_thing back\\slash 😀 MiXeD"
).split()
SECRET = "Quokkaberg-Zwieback-7731 of 12 Lindenallee"
NEEDLES = ["parcel delayed", "crème", "BRÛLÉE", "100%", "sure_", "back\\slash", "😀", "mixed"]
FILTERS = [
    f"{field} {op} {orjson.dumps(needle).decode()}"
    for needle in NEEDLES
    for field in ("text", "inputs", "outputs")
    for op in ("~", "!~")
] + ["inputs", 'metadata.user_id = "alice"']


def _runs(prefix: str, n: int, seed: int, user: str = "bob") -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    secret = f" {SECRET} asked: " if user == "alice" else " "
    return [
        {
            "id": f"{prefix}-{i}",
            "trace_id": f"{prefix}-{i}",
            "name": "chat",
            "kind": "llm",
            "start_time": 1_764_150_816_000_000 + seed * 10_000 + i,
            "user_id": user,
            "inputs": {"question": text(30) + secret + text(10), "n": i},
            "outputs": {"answer": text(40)},
            "metadata": {"user_id": user},
        }
        for i in range(n)
    ]


async def _send(client: httpx.AsyncClient, runs: list[dict[str, Any]]) -> None:
    r = await client.post("/api/v1/runs/batch", json={"project": "p", "runs": runs})
    assert r.status_code == 202, r.text


async def _all(client: httpx.AsyncClient, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every run of project p the run list gives for these parameters, page after page."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"project": "p", "limit": "200", **params}
        if cursor is not None:
            query["cursor"] = cursor
        r = await client.get("/api/v1/runs", params=query)
        assert r.status_code == 200, (params, r.text)
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


async def _reads(client: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a user sees of project p: every run in full, one by one, and each filter's
    matches."""
    seen: dict[str, Any] = {}
    items = await _all(client, {"select": "full"})
    seen["list"] = sorted((run["id"], run["inputs"], run["outputs"]) for run in items)
    for run in [run for run in items if int(run["id"].rsplit("-", 1)[1]) < 12]:
        one = (await client.get(f"/api/v1/runs/{run['id']}")).json()
        seen[run["id"]] = (one["inputs"], one["outputs"], one.get("extra"))
        trace = (await client.get(f"/api/v1/traces/{run['trace_id']}")).json()
        seen["trace " + run["id"]] = [(t["inputs"], t["outputs"]) for t in trace["runs"]]
    (project,) = (await client.get("/api/v1/projects", params={"name": "p"})).json()["items"]
    r = await client.get(f"/api/v1/projects/{project['id']}/export")
    assert r.status_code == 200
    spans = [
        s
        for line in r.content.split(b"\n")
        if line
        for s in orjson.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    ]
    assert len(spans) == len(items)
    seen["export"] = sorted(spans, key=lambda s: str(s["spanId"]))
    for text in FILTERS:
        seen[text] = sorted(run["id"] for run in await _all(client, {"filter": text}))
    return seen


def _without(seen: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``_reads`` without the runs whose ids start with ``prefix``."""

    def kept(item: Any) -> bool:
        run_id = item[0] if isinstance(item, tuple) else item
        return not str(run_id).startswith(prefix)

    return {
        key: [item for item in value if kept(item)] if key in FILTERS or key == "list" else value
        for key, value in seen.items()
        if prefix not in key and key != "export"  # runs come and go: compared by the list
    }


def _kinds(app: FastAPI) -> dict[str, int]:
    """How many long payload values are stored as text and as frames."""
    query = sa.text(
        "SELECT typeof(v), count(*) FROM (SELECT inputs AS v FROM runs UNION ALL "
        "SELECT outputs FROM runs UNION ALL SELECT extra FROM runs) "
        "WHERE typeof(v) = 'blob' OR length(v) >= 200 GROUP BY 1"
    )
    with app_ctx(app).db.engine.connect() as conn:
        return {str(k): int(n) for k, n in conn.execute(query)}


def _stored(app: FastAPI) -> list[tuple[Any, ...]]:
    query = sa.text("SELECT pk, seq, inputs, outputs, extra FROM runs ORDER BY pk")
    with app_ctx(app).db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def _named_dictionaries(app: FastAPI) -> set[int]:
    found: set[int] = set()
    query = sa.text("SELECT inputs, outputs, extra FROM runs")
    with app_ctx(app).db.engine.connect() as conn:
        for row in conn.execute(query):
            for value in row:
                if type(value) is bytes and payload_codec.is_frame(value):
                    found.add(payload_codec.frame_dictionary(value))
    return found


def _dictionaries(app: FastAPI) -> dict[int, bytes]:
    with app_ctx(app).db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, data FROM payload_dictionaries"))
        return {int(i): bytes(d) for i, d in rows}


def _goldloop(settings: Settings, *args: str) -> Result:
    env = {
        "GOLDLOOP_DATA_DIR": str(settings.data_dir),
        "GOLDLOOP_DATABASE_URL": settings.database_url,
    }
    result = CliRunner().invoke(cli, ["payloads", *args, "--quiet"], env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture
def sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("zstd frames and their dictionaries are SQLite's")


async def _old_runs_then_dictionary(app: FastAPI, client: httpx.AsyncClient) -> None:
    """300 runs stored as text, then the dictionary trained (as ingest does at 1,000)."""
    await _send(client, _runs("old", 250, seed=1))
    await _send(client, _runs("alice", 50, seed=2, user="alice"))
    assert payload_compression.train(app_ctx(app)) == payload_codec.FIRST_ID
    assert set(_kinds(app)) == {"text"}


async def test_compact_compresses_old_runs_and_every_read_and_filter_stays_the_same(
    sqlite_only: None, app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    await _old_runs_then_dictionary(app, client)
    await _send(client, _runs("new", 30, seed=3))  # compressed at ingest
    before = await _reads(client)
    kinds = _kinds(app)
    assert kinds["text"] >= 600
    out = _goldloop(settings, "compact").output
    assert set(_kinds(app)) == {"blob"}
    assert f"compacted 300 runs ({kinds['text']:,} values)" in out
    assert "the database file keeps its size" in out
    assert f"run `sqlite3 {settings.data_dir}/goldloop.db VACUUM`" in out
    assert await _reads(client) == before
    # the server goes on writing and reading beside it
    await _send(client, _runs("later", 5, seed=4))
    assert set(_kinds(app)) == {"blob"}
    # running it again changes nothing
    stored = _stored(app)
    out = _goldloop(settings, "compact").output
    assert "nothing to compact" in out
    assert _stored(app) == stored


async def test_an_interrupted_compaction_leaves_a_readable_mixed_table(
    sqlite_only: None, app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    await _old_runs_then_dictionary(app, client)
    before = await _reads(client)
    out = _goldloop(settings, "compact", "--max-rows", "120", "--batch-rows", "50").output
    assert "compacted 120 runs" in out
    assert "stopped at --max-rows" in out
    mixed = _kinds(app)
    assert mixed["text"] > 0
    assert mixed["blob"] > 0
    assert await _reads(client) == before
    out = _goldloop(settings, "compact").output
    assert "compacted 180 runs" in out
    assert set(_kinds(app)) == {"blob"}
    assert await _reads(client) == before


async def test_retrain_recompress_drops_old_dictionaries_and_the_erased_text(
    sqlite_only: None, app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    await _old_runs_then_dictionary(app, client)
    first = payload_codec.FIRST_ID
    assert SECRET[:10].encode() in _dictionaries(app)[first]  # it learned alice's text
    await _send(client, _runs("new", 60, seed=3))  # frames naming the first dictionary
    r = await client.post("/api/v1/erasure", json={"user_id": "alice"})
    assert r.status_code == 200, r.text
    assert r.json()["runs"] == 50
    before = await _reads(client)
    # without --recompress: a new dictionary for new writes, the old one kept for its frames
    out = _goldloop(settings, "retrain").output
    assert f"trained dictionary {first + 1} on " in out
    assert f"kept older dictionaries: {first} (frames name them" in out
    assert set(_dictionaries(app)) == {first, first + 1}
    # the running server compresses its next write with the new dictionary
    await _send(client, _runs("after", 3, seed=5))
    assert _named_dictionaries(app) == {first, first + 1}
    out = _goldloop(settings, "retrain", "--recompress", "--batch-rows", "40").output
    newest = first + 2
    assert f"trained dictionary {newest} on " in out
    assert "recompressed 63 runs" in out
    assert "compacted 250 runs" in out
    assert f"dropped dictionaries: {first}, {first + 1}" in out
    assert set(_dictionaries(app)) == {newest}
    assert _named_dictionaries(app) == {newest}
    assert set(_kinds(app)) == {"blob"}
    for data in _dictionaries(app).values():
        for fragment in ("Quokkaberg", "Zwieback", "Lindenallee"):
            assert fragment.encode() not in data
    after = await _reads(client)
    assert _without(after, "after-") == _without(before, "alice-")
    assert after['metadata.user_id = "alice"'] == []
    # a new server process (no dictionary cached) reads every run
    other = Database(settings.effective_database_url)
    try:
        seen = other.read(
            lambda conn: conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
        )
        assert seen == 250 + 60 + 3
    finally:
        other.close()


@pytest.fixture
def second_ctx(settings: Settings) -> Iterator[ServiceContext]:
    """The command's own connection to the server's database (another writer)."""
    database = Database(settings.effective_database_url)
    database.start()
    yield ServiceContext(db=database, settings=settings)
    database.close()


async def test_ingest_during_compaction_loses_nothing(
    sqlite_only: None,
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    second_ctx: ServiceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between each batch's read and its write the server merges new outputs into runs of that
    very batch and stores new runs: the compaction keeps their writes, not what it read."""
    await _old_runs_then_dictionary(app, client)
    server = app_ctx(app)
    who = auth.authenticate(server, admin_key)
    real_apply = payload_maintenance._apply
    batches = 0

    def ingest_meanwhile(ctx: ServiceContext, codec: Any, changes: list[Change], done: Any) -> None:
        nonlocal batches
        batches += 1
        pks = sorted({c.pk for c in changes})[:3]
        ids = server.db.read(
            lambda conn: [
                r[0]
                for r in conn.execute(
                    sa.text(f"SELECT id FROM runs WHERE pk IN ({','.join(map(str, pks))})")
                )
            ]
        )
        patches = [
            {"id": run_id, "trace_id": run_id, "outputs": {"answer": f"merged {run_id} " * 30}}
            for run_id in ids
        ]
        fresh = _runs(f"during{batches}", 4, seed=100 + batches)
        ingest.ingest_native(server, who, {"project": "p", "runs": patches + fresh})
        real_apply(ctx, codec, changes, done)

    monkeypatch.setattr(payload_maintenance, "_apply", ingest_meanwhile)
    done = payload_maintenance.compact(second_ctx, batch_rows=40)
    assert batches == 8  # 300 runs, 40 a batch
    # the merged runs' values were left to the server, which rewrote their whole rows
    assert done.lost_races >= 3 * batches
    assert done.complete
    items = await _all(client, {"select": "full"})
    assert len(items) == 300 + 4 * batches
    merged = [run for run in items if str(run["outputs"]).startswith("{'answer': 'merged")]
    assert len(merged) == 3 * batches
    for run in merged:
        assert run["outputs"] == {"answer": f"merged {run['id']} " * 30}
    monkeypatch.setattr(payload_maintenance, "_apply", real_apply)
    payload_maintenance.compact(second_ctx)
    assert set(_kinds(app)) == {"blob"}


async def test_postgresql_has_nothing_to_compact(
    app: FastAPI, backend: str, settings: Settings
) -> None:
    if backend != "postgres":
        pytest.skip("TOAST is PostgreSQL's")
    for args in (["compact"], ["retrain", "--recompress"]):
        out = _goldloop(settings, *args).output
        assert out.strip() == payload_maintenance.POSTGRESQL


async def test_compact_before_any_dictionary_says_so(
    sqlite_only: None, app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    await _send(client, _runs("old", 20, seed=1))
    out = _goldloop(settings, "compact").output
    assert "no payload dictionary yet" in out
    assert set(_kinds(app)) == {"text"}


async def test_retrain_on_an_empty_database_says_so(
    sqlite_only: None, app: FastAPI, settings: Settings
) -> None:
    out = _goldloop(settings, "retrain").output
    assert "no run payloads to train a dictionary on yet" in out
    assert _dictionaries(app) == {}


async def test_a_frame_an_ingest_process_made_with_an_older_dictionary_names_the_newest(
    sqlite_only: None, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ingest worker processes compress with the dictionary the server gave them with the
    request; if a newer one was stored meanwhile, the write puts the document on it."""
    pooled = create_app(dataclasses.replace(settings, ingest_processes=1))
    async with pooled.router.lifespan_context(pooled):
        pool = app_ctx(pooled).ingest_pool
        assert pool is not None
        assert pool.wait_ready(60)
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=pooled)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://goldloop.test", headers={"x-api-key": key}
        ) as client:
            await _old_runs_then_dictionary(pooled, client)
            _goldloop(settings, "retrain")  # another process: this server still has the first
            jobs = pool.jobs
            await _send(client, _runs("pooled", 5, seed=7))
            assert pool.jobs == jobs + 1  # compressed in the worker, with the first dictionary
            newest = payload_codec.FIRST_ID + 1
            query = sa.text("SELECT inputs, outputs FROM runs WHERE id LIKE 'pooled-%'")
            with app_ctx(pooled).db.engine.connect() as conn:
                stored = [v for row in conn.execute(query) for v in row]
            assert len(stored) == 10
            assert {payload_codec.frame_dictionary(v) for v in stored} == {newest}
            r = await client.get("/api/v1/runs/pooled-3")
            assert r.json()["inputs"] == _runs("pooled", 5, seed=7)[3]["inputs"]
    capsys.readouterr()  # the bootstrap banner


async def test_compaction_beside_a_writing_server_thread(
    sqlite_only: None,
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    second_ctx: ServiceContext,
) -> None:
    """The same without a set interleaving: the server's writer and the command's take the
    file's write lock in turns (busy_timeout) while both write; nothing fails, nothing is lost."""
    await _old_runs_then_dictionary(app, client)
    server = app_ctx(app)
    who = auth.authenticate(server, admin_key)
    compacting = threading.Event()
    done_compacting = threading.Event()
    sent: list[str] = []
    errors: list[BaseException] = []

    def ingest_until_done() -> None:
        compacting.wait(30)
        try:
            for n in range(300):  # bounded; stops once the compaction is over
                runs = _runs(f"live{n}", 5, seed=1000 + n)
                ingest.ingest_native(server, who, {"project": "p", "runs": runs})
                sent.extend(run["id"] for run in runs)
                if done_compacting.is_set():
                    return
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    writer = threading.Thread(target=ingest_until_done)
    writer.start()
    try:
        compacting.set()
        done = payload_maintenance.compact(second_ctx, batch_rows=20)
    finally:
        done_compacting.set()
        writer.join(60)
    assert not errors
    assert done.complete
    assert done.rows == 300  # the runs ingested as text before the dictionary
    assert len(sent) >= 5
    stored = {run["id"] for run in await _all(client, {})}
    assert set(sent) <= stored
    assert len(stored) == 300 + len(sent)
    assert set(_kinds(app)) == {"blob"}
