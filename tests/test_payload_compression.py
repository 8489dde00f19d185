"""Compressed run payloads (issue #24): zstd frames with a stored dictionary on SQLite, lz4 TOAST
on PostgreSQL. Reads, filters, trace pages and OTLP export give back what was sent, whichever way
a run was stored; a missing or damaged dictionary reads as a message, not an error."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import zstandard
from fastapi import FastAPI

from goldloop.domain import payload_codec
from goldloop.domain.payload_codec import PayloadCodec
from goldloop.http.app import create_app
from goldloop.services import payload_compression
from goldloop.settings import Settings
from goldloop.store import payload_store, run_stats
from goldloop.store.schema import runs
from ingest_helpers import app_ctx, trace_rows, workspace_of
from otlp_builders import request, span

PB = {"content-type": "application/x-protobuf"}
WORDS = "refund order parcel delayed customer agent weather booking invoice policy".split()  # noqa: SIM905
TRACE = "7c0ffee0000000000000000000000001"
SYSTEM = "You are the booking assistant of Hotel Aurora. " * 4
QUESTION = "My flight was cancelled and my rate says non-refundable: can I get my money back? " * 2
ANSWER = (
    "I am sorry about your flight. A non-refundable rate cannot be refunded, but I can move it."
)


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _llm(question: str, system: str, answer: str) -> dict[str, Any]:
    """OpenInference LLM span attributes (as in test_trace_export)."""
    invocation = {"model": "gpt-4o", "messages": [{"role": "user", "content": question}]}
    return {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.token_count.prompt": 1000,
        "llm.token_count.completion": 100,
        "input.value": orjson.dumps(invocation).decode(),
        "input.mime_type": "application/json",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": system,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": question,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": answer,
        "output.value": answer,
        "output.mime_type": "text/plain",
    }


def _training_body(n: int = 150, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    spans = []
    for i in range(n):
        attrs = _llm(_text(rng, 40), _text(rng, 30), _text(rng, 40))
        at = seed * 1000 + i  # the seed's own ids
        spans.append(span(f"{at:032x}", f"{at:016x}", None, "ChatCompletion", attrs))
    return request(spans, "train-svc").SerializeToString()


async def _train(app: FastAPI, client: httpx.AsyncClient) -> int | None:
    r = await client.post("/v1/traces", content=_training_body(), headers=PB)
    assert r.status_code == 200, r.text
    return payload_compression.train(app_ctx(app))


async def _send_llm(client: httpx.AsyncClient, trace: str = TRACE) -> dict[str, Any]:
    sent = _llm(QUESTION, SYSTEM, ANSWER)
    oi = span(trace, "a" + trace[-15:], None, "ChatCompletion", sent, kind=3)
    r = await client.post(
        "/v1/traces", content=request([oi], "oi-svc").SerializeToString(), headers=PB
    )
    assert r.status_code == 200, r.text
    return sent


async def _matches(client: httpx.AsyncClient, text: str, project: str = "oi-svc") -> set[str]:
    r = await client.get("/api/v1/runs", params={"project": project, "filter": text})
    assert r.status_code == 200, r.text
    return {run["trace_id"] for run in r.json()["items"]}


def _attributes(span_json: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span_json["attributes"]:
        ((kind, value),) = kv["value"].items()
        out[kv["key"]] = int(value) if kind == "intValue" else value
    return out


async def _exported(client: httpx.AsyncClient, project: str) -> list[dict[str, Any]]:
    found = (await client.get("/api/v1/projects", params={"name": project})).json()["items"]
    r = await client.get(f"/api/v1/projects/{found[0]['id']}/export")
    assert r.status_code == 200
    spans: list[dict[str, Any]] = []
    for line in r.content.split(b"\n"):
        if line:
            spans += orjson.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    return spans


async def test_compressed_runs_read_filter_and_export_as_sent(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient, admin_key: str
) -> None:
    old = await _send_llm(client, trace="7c0ffee0000000000000000000000002")  # before: text
    dict_id = await _train(app, client)
    text_cost = app_ctx(app).db.read(  # the cost parts of the runs so far: all text
        lambda conn: conn.execute(
            sa.text("SELECT sum(json_extract(extra, '$.cost.input')) FROM runs")
            if conn.dialect.name == "sqlite"
            else sa.text("SELECT sum((extra->'cost'->>'input')::float) FROM runs")
        ).scalar_one()
    )
    sent = await _send_llm(client)
    sqlite = app_ctx(app).db.is_sqlite
    if sqlite:
        assert dict_id == payload_codec.FIRST_ID
        # the run sent before the dictionary stays text; the one after is compressed
        assert _stored_kinds(app) == {
            ("7c0ffee0000000000000000000000002", "text", "text"),
            (TRACE, "blob", "blob"),
        }
    else:
        assert dict_id is None  # PostgreSQL: TOAST compresses, no dictionary
    # reads: the run API, the trace as the services read it, the dashboard's trace page
    (row,) = trace_rows(app, admin_key, TRACE)
    assert row["inputs"]["messages"][0]["parts"][0]["content"] == SYSTEM
    assert row["outputs"]["messages"][0]["parts"][0]["content"] == ANSWER
    r = await client.get(f"/api/v1/runs/{row['id']}")
    assert r.status_code == 200
    assert r.json()["inputs"] == row["inputs"]
    r = await client.get(f"/api/v1/traces/{TRACE}")  # the lean trace reader (store.trace_rows)
    assert r.status_code == 200
    (traced,) = r.json()["runs"]
    assert (traced["inputs"], traced["outputs"]) == (row["inputs"], row["outputs"])
    page = await browser.get(f"/traces/{TRACE}", params={"run": row["id"]})
    assert page.status_code == 200
    assert "Hotel Aurora" in page.text
    # filters on text see inside compressed and uncompressed runs alike
    both = {TRACE, "7c0ffee0000000000000000000000002"}
    assert await _matches(client, 'text ~ "hotel aurora"') == both
    assert await _matches(client, 'inputs ~ "flight was cancelled"') == both
    assert await _matches(client, 'outputs ~ "can move it"') == both
    assert await _matches(client, 'inputs ~ "can move it"') == set()
    assert await _matches(client, 'text !~ "hotel aurora"') == set()
    assert await _matches(client, "inputs") == both
    # statistics read the cost's parts from inside ``extra``
    assert row["extra"]["cost"]["input"] > 0
    who = workspace_of(app, admin_key)
    totals = app_ctx(app).db.read(
        lambda conn: run_stats.totals(
            conn, who, [runs.c.name == "ChatCompletion"], project_ids=None, permilles=(500,)
        )
    )
    assert totals.input_cost == pytest.approx(text_cost + row["extra"]["cost"]["input"])
    # export: the spans as they were sent, old and new
    spans = await _exported(client, "oi-svc")
    assert len(spans) == 2
    for exported in spans:
        assert _attributes(exported) == (sent if exported["traceId"] == TRACE else old)


def _stored_kinds(app: FastAPI) -> set[tuple[str, str, str]]:
    query = sa.text(
        "SELECT trace_id, typeof(inputs), typeof(extra) FROM runs WHERE name = 'ChatCompletion' "
        "AND trace_id LIKE '7c0ffee%'"
    )
    with app_ctx(app).db.engine.connect() as conn:
        return {(r[0], r[1], r[2]) for r in conn.execute(query)}


@pytest.fixture
def sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("zstd frames and their dictionaries are SQLite's")


async def _second_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Another server on the same database: a process that has not seen the dictionary yet."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        key = settings.admin_key_path.read_text().strip()  # bootstrapped by the first start
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://goldloop.test", headers={"x-api-key": key}
        ) as c:
            yield application, c


def _sqlite_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "goldloop.db"


@pytest.mark.parametrize("damage", ["missing", "corrupted"])
async def test_a_lost_dictionary_reads_as_a_message_not_an_error(
    sqlite_only: None,
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    damage: str,
) -> None:
    dict_id = await _train(app, client)
    await _send_llm(client)
    with sqlite3.connect(_sqlite_file(settings)) as raw:
        if damage == "missing":
            raw.execute("DELETE FROM payload_dictionaries")
        else:  # the entropy tables and content scrambled, the header (its id) kept
            (data,) = raw.execute("SELECT data FROM payload_dictionaries").fetchone()
            scrambled = data[:8] + bytes(random.Random(0).randbytes(len(data) - 8))
            raw.execute("UPDATE payload_dictionaries SET data = ?", (scrambled,))
    async for second, other in _second_app(settings):
        r = await other.get("/api/v1/runs", params={"project": "oi-svc", "select": "full"})
        assert r.status_code == 200, r.text
        (run,) = r.json()["items"]
        reason = run["inputs"][payload_codec.UNREADABLE_KEY]
        if damage == "missing":
            assert reason == f"payload dictionary {dict_id} is missing from the database"
        else:
            assert f"dictionary {dict_id}" in reason
        one = await other.get(f"/api/v1/runs/{run['id']}")
        assert one.status_code == 200
        assert one.json()["inputs"] == run["inputs"]
        # filters on the unreadable text run and match nothing in it
        assert await _matches(other, 'text ~ "hotel aurora"') == set()
        spans = await _exported(other, "oi-svc")
        assert len(spans) == 1
        assert second is not app


async def test_ingest_trains_the_first_dictionary_once_enough_runs_are_stored(
    sqlite_only: None,
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(payload_compression, "MIN_RUNS", 150)
    ctx = app_ctx(app)
    codec = payload_compression._codec(ctx)
    assert codec is not None
    assert codec.current is None
    r = await client.post("/v1/traces", content=_training_body(n=100), headers=PB)
    assert r.status_code == 200
    assert codec.current is None  # 100 runs: not enough yet
    monkeypatch.setattr(payload_compression, "CHECK_EVERY_RUNS", 60)
    r = await client.post("/v1/traces", content=_training_body(n=59, seed=2), headers=PB)
    assert r.status_code == 200
    assert codec.current is None  # 159 runs, but not looked at: 59 written since it looked
    r = await client.post("/v1/traces", content=_training_body(n=1, seed=3), headers=PB)
    assert r.status_code == 200
    assert codec.current == payload_codec.FIRST_ID
    await _send_llm(client)
    assert _stored_kinds(app) == {(TRACE, "blob", "blob")}
    # a restarted server compresses with the stored dictionary instead of training another
    async for second, other in _second_app(settings):
        restarted = payload_compression._codec(app_ctx(second))
        assert restarted is not None
        assert restarted.current == payload_codec.FIRST_ID
        with app_ctx(second).db.engine.connect() as conn:
            count = conn.exec_driver_sql("SELECT count(*) FROM payload_dictionaries").scalar()
        assert count == 1
        assert await _matches(other, 'text ~ "hotel aurora"') == {TRACE}


async def test_compression_off_writes_text_and_still_reads_frames(
    sqlite_only: None, app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    await _train(app, client)
    await _send_llm(client)
    off = dataclasses.replace(settings, payload_compression=False)
    async for second, other in _second_app(off):
        await _send_llm(other, trace="7c0ffee0000000000000000000000003")
        kinds = _stored_kinds(second)
        assert kinds == {
            (TRACE, "blob", "blob"),
            ("7c0ffee0000000000000000000000003", "text", "text"),
        }
        assert len(await _matches(other, 'inputs ~ "hotel aurora"')) == 2


def test_postgresql_compresses_the_payload_columns_with_lz4(app: FastAPI, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("TOAST is PostgreSQL's")
    query = sa.text(
        "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'runs'::regclass "
        "AND attname IN ('inputs', 'outputs', 'extra', 'metadata')"
    )
    with app_ctx(app).db.engine.connect() as conn:
        found = {r[0]: r[1] for r in conn.execute(query)}
    assert found == {"inputs": "l", "outputs": "l", "extra": "l", "metadata": ""}


# -- the codec alone ------------------------------------------------------------------------------
def _codec_with_dictionary() -> tuple[PayloadCodec, dict[int, bytes]]:
    rng = random.Random(3)
    samples = [orjson.dumps({"q": _text(rng, 60), "n": i}) for i in range(300)]
    stored = {
        payload_codec.FIRST_ID: payload_codec.with_id(
            payload_codec.train(samples, 1), payload_codec.FIRST_ID
        )
    }
    codec = PayloadCodec(stored.get)
    codec.use(payload_codec.FIRST_ID, stored[payload_codec.FIRST_ID])
    return codec, stored


def test_codec_compresses_long_documents_naming_their_dictionary() -> None:
    codec, stored = _codec_with_dictionary()
    text = orjson.dumps({"q": "refund order parcel " * 20}).decode()
    frame = codec.compress(text)
    assert isinstance(frame, bytes)
    assert payload_codec.is_frame(frame)
    assert len(frame) < len(text) / 3
    assert payload_codec.frame_dictionary(frame) == payload_codec.FIRST_ID
    assert codec.compress('{"q": "short"}') == '{"q": "short"}'
    # another process's codec fetches the dictionary the frame names
    fetched: list[int] = []

    def load(dict_id: int) -> bytes | None:
        fetched.append(dict_id)
        return stored.get(dict_id)

    reader = PayloadCodec(load)
    assert reader.decompress(frame).decode() == text
    assert reader.decompress(frame).decode() == text
    assert fetched == [payload_codec.FIRST_ID]  # once


def test_codec_reads_a_frame_it_cannot_decode_as_the_reason() -> None:
    codec, _ = _codec_with_dictionary()
    frame = codec.compress(orjson.dumps({"q": "refund order parcel " * 20}).decode())
    assert isinstance(frame, bytes)
    damaged = frame[:-6] + bytes(6)
    reason = orjson.loads(codec.decompress(damaged))[payload_codec.UNREADABLE_KEY]
    assert "does not decompress with dictionary 32768" in reason
    nobody = PayloadCodec(lambda _id: None)
    assert orjson.loads(nobody.decompress(frame)) == {
        payload_codec.UNREADABLE_KEY: "payload dictionary 32768 is missing from the database"
    }
    assert (
        "not a valid zstd frame"
        in orjson.loads(nobody.decompress(payload_codec.FRAME_MAGIC))[payload_codec.UNREADABLE_KEY]
    )
    with pytest.raises(zstandard.ZstdError):
        payload_codec.train([b"{}"] * 3, payload_codec.FIRST_ID)


async def test_ingest_workers_compress_new_runs_off_the_server_process(
    sqlite_only: None,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async for pooled, c in _second_app(dataclasses.replace(settings, ingest_processes=1)):
        pool = app_ctx(pooled).ingest_pool
        assert pool is not None
        assert pool.wait_ready(60)
        await _train(pooled, c)
        jobs = pool.jobs
        # the server process compresses nothing: frames can only come from the worker
        monkeypatch.setattr(payload_store, "compress_values", lambda *args: None)
        sent = await _send_llm(c)
        assert pool.jobs == jobs + 1
        assert _stored_kinds(pooled) == {(TRACE, "blob", "blob")}
        (exported,) = await _exported(c, "oi-svc")
        assert _attributes(exported) == sent
        assert await _matches(c, 'inputs ~ "hotel aurora"') == {TRACE}
    capsys.readouterr()  # the bootstrap banner


TRICKY = [
    "Crème BRÛLÉE at the ÉCOLE",
    "100% sure_thing",
    'say "hi" now',
    "a back\\slash and a tab\there",
    "smile 😀 please",
    "MiXeD CaSe Words",
]
NEEDLES = [
    "crème",
    "CRÈME",
    "brûlée",
    "BRÛLÉE",
    "école",
    "100%",
    "0% s",
    "sure_",
    "e_t",
    'say "hi"',
    "back\\slash",
    "tab\there",
    "😀",
    "mixed case",
    "absent",
]


def _tricky_runs(prefix: str) -> list[dict[str, Any]]:
    padding = " and some more words to pass the compression threshold" * 4
    return [
        {
            "id": f"{prefix}-{i}",
            "trace_id": f"{prefix}-{i}",
            "name": "tricky",
            "kind": "chain",
            "start_time": 1_764_150_816_000_000 + i,
            "inputs": {"text": text + padding},
            "outputs": {"answer": padding + text},
        }
        for i, text in enumerate(TRICKY)
    ]


async def test_text_filters_match_compressed_runs_exactly_as_text_ones(
    sqlite_only: None, app: FastAPI, client: httpx.AsyncClient
) -> None:
    r = await client.post("/api/v1/runs/batch", json={"project": "a", "runs": _tricky_runs("a")})
    assert r.status_code == 202
    await _train(app, client)
    r = await client.post("/api/v1/runs/batch", json={"project": "b", "runs": _tricky_runs("b")})
    assert r.status_code == 202
    query = sa.text(
        "SELECT DISTINCT substr(id, 1, 1), typeof(inputs) FROM runs WHERE name = 'tricky'"
    )
    with app_ctx(app).db.engine.connect() as conn:
        kinds = {tuple(row) for row in conn.execute(query)}
    assert kinds == {("a", "text"), ("b", "blob")}
    for needle in NEEDLES:
        for field in ("text", "inputs", "outputs"):
            for op in ("~", "!~"):
                text = f"{field} {op} {orjson.dumps(needle).decode()}"
                as_text = {t[2:] for t in await _matches(client, text, project="a")}
                compressed = {t[2:] for t in await _matches(client, text, project="b")}
                assert compressed == as_text, text
    assert {t[2:] for t in await _matches(client, 'text ~ "crème"', project="b")} == {"0"}
    assert await _matches(client, 'text ~ "brûlée"', project="b") == set()  # SQLite folds ASCII
    assert {t[2:] for t in await _matches(client, 'inputs ~ "0% s"', project="b")} == {"1"}
