"""On-disk bytes per span after ingest, per backend and convention, with and without payload
compression; and what compression costs ingest CPU and text filters.

Each load (``openinference``, ``genai``: the two conventions of ``bench/otel_storage.py``) is
ingested through the real ingest service (``otlp.ingest_traces``, 500-span protobuf requests, in
process, no HTTP) into a fresh database, then measured:

- SQLite: the runs table and its indexes from ``dbstat`` (pages, so free space in them counts),
  after a checkpoint; and the stored bytes of each payload column (``length(CAST(col AS BLOB))``).
- PostgreSQL (``--database-url``): ``pg_total_relation_size('runs')`` split into the table, its
  TOAST relation and its indexes, and ``pg_column_size`` of each payload column.

Modes: SQLite ``text`` (``payload_compression`` off) and ``zstd`` (a dictionary trained on a
separate, differently seeded load of the same convention that was ingested first and deleted
again: a workspace that has its dictionary); PostgreSQL ``pglz`` (the columns' compression
before migration 0028) and ``lz4``, and ``lz4+target`` (lz4 with ``toast_tuple_target`` lowered
so TOAST compresses smaller rows too). Modes alternate round by round (``--rounds``); the ingest
CPU per span is the least of the rounds (``time.process_time`` of the ingest calls: this
process's CPU, the SQLite writer thread's included).

With ``--database-url``, ``pg_toast_time`` also times PostgreSQL's own compression of the
load's documents, pglz against lz4 (server time, EXPLAIN ANALYZE).

``--filter-runs N`` also ingests N GenAI spans into one SQLite file per mode and times text
filters (``text ~``, ``inputs ~``, ``outputs ~`` compiled by ``run_filters``, as a COUNT over the
workspace), least of 3, modes alternating.

    PYTHONPATH=src python bench/payload_disk.py [--traces 2000] [--rounds 2]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--filter-runs 100000]

Results go to bench/results/payload-disk-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import ingest as ingest_bench  # noqa: E402
import orjson  # noqa: E402
import results_file  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from ingest import build_traces, private_schema  # noqa: E402
from otel_storage import openinference_traces  # noqa: E402

from goldloop.domain import filters, payload_codec  # noqa: E402
from goldloop.domain.payload_codec import PayloadCodec  # noqa: E402
from goldloop.services import auth, payload_compression  # noqa: E402
from goldloop.services.context import Principal, ServiceContext  # noqa: E402
from goldloop.services.otlp import decode_and_map, ingest_traces  # noqa: E402
from goldloop.settings import load_settings, normalize_database_url  # noqa: E402
from goldloop.store import migrate, run_filters  # noqa: E402
from goldloop.store.database import Database  # noqa: E402
from goldloop.store.schema import runs  # noqa: E402
from otlp_builders import request  # noqa: E402

PROTOBUF = "application/x-protobuf"
PER = 500
COLUMNS = ("inputs", "outputs", "extra", "metadata", "error", "tags")
LOADS: dict[str, Callable[[int, int], list[list[Any]]]] = {
    "openinference": lambda n, seed: openinference_traces(n, 3000, seed=seed),
    "genai": lambda n, seed: build_traces(n, 3000, seed=seed),
}
FILTERS = ('text ~ "parcel delayed"', 'inputs ~ "zzz-absent"', 'outputs ~ "refund"')


def prose_words() -> list[str]:
    """Every word of some of Python's library sources (docstrings, comments, code), repeats
    kept: drawing from it gives words at their frequency there. Harder to compress than prose
    (no phrase repeats), much harder than the 10-word default."""
    import argparse as a
    import email.message as e
    import http.client as h
    import typing as t
    import unittest.case as u

    words: list[str] = []
    for module in (a, e, h, t, u):
        assert module.__file__ is not None
        words += re.findall(r"[A-Za-z]+", Path(module.__file__).read_text())
    return words


def bodies(traces: list[list[Any]]) -> list[bytes]:
    flat = [s for t in traces for s in t]
    return [request(flat[i : i + PER]).SerializeToString() for i in range(0, len(flat), PER)]


@contextlib.contextmanager
def fresh(url: str, compression: bool) -> Iterator[tuple[ServiceContext, Principal]]:
    """A migrated, started, empty database with one workspace."""
    tmp = Path(tempfile.mkdtemp(prefix="gl-disk-"))
    with private_schema(url) as schema_url:
        settings = load_settings(
            {
                "data_dir": tmp,
                "database_url": schema_url,
                "payload_compression": compression,
                "workers_in_process": False,
                "ingest_processes": 0,
            },
            environ={},
        )
        db = Database(settings.effective_database_url)
        migrate.upgrade(db.engine)
        db.start()
        ctx = ServiceContext(db=db, settings=settings)
        try:
            ws = auth.create_workspace(ctx, "bench")
            yield ctx, Principal(ws.id, "bench", "admin")
        finally:
            db.close()


def ingest(ctx: ServiceContext, who: Principal, requests: list[bytes]) -> float:
    """Ingest the requests; returns this process's CPU seconds for it."""
    cpu = time.process_time()
    for body in requests:
        ingest_traces(ctx, who, body, PROTOBUF)
    return time.process_time() - cpu


def pretrain(ctx: ServiceContext, who: Principal, load: str, n_traces: int) -> int:
    """Train the dictionary on a separate load of the same convention, then drop those runs."""
    ingest(ctx, who, bodies(LOADS[load](max(200, n_traces // 5), 99)))
    dict_id = payload_compression.train(ctx)
    assert dict_id is not None

    def drop(conn: sa.Connection) -> None:
        conn.execute(sa.delete(runs))

    ctx.db.write(drop)
    if ctx.db.is_sqlite:
        with ctx.db.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
    return dict_id


def sqlite_bytes(ctx: ServiceContext) -> dict[str, Any]:
    with ctx.db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = dict(
            conn.exec_driver_sql("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").all()
        )
        names = [r[1] for r in conn.exec_driver_sql("PRAGMA index_list('runs')").all()]
        columns = {
            c: conn.exec_driver_sql(
                f"SELECT coalesce(sum(length(CAST({c} AS BLOB))), 0) FROM runs"
            ).scalar_one()
            for c in COLUMNS
        }
        dictionaries = conn.exec_driver_sql(
            "SELECT coalesce(sum(length(data)), 0) FROM payload_dictionaries"
        ).scalar_one()
    return {
        "file": sum(pages.values()),
        "table": pages["runs"],
        "indexes": sum(pages.get(n, 0) for n in names),
        "columns": columns,
        "dictionaries": dictionaries,
    }


def pg_bytes(ctx: ServiceContext) -> dict[str, Any]:
    with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE runs")
        table, toast, indexes = conn.exec_driver_sql(
            "SELECT pg_relation_size('runs'), "
            "coalesce(pg_total_relation_size(nullif(reltoastrelid, 0)), 0), "
            "pg_indexes_size('runs') FROM pg_class WHERE oid = 'runs'::regclass"
        ).one()
        columns = {
            c: conn.exec_driver_sql(
                f"SELECT coalesce(sum(pg_column_size({c})), 0) FROM runs"
            ).scalar_one()
            for c in COLUMNS
        }
    return {"table": table + toast, "toast": toast, "indexes": indexes, "columns": columns}


def pg_mode(ctx: ServiceContext, mode: str) -> None:
    """``pglz`` / ``lz4``: the columns' compression; ``+target``: toast_tuple_target 256 (TOAST
    works on rows over 256 bytes, not ~2 KB); ``+main``: storage MAIN (compressed in the row,
    moved out of line only when it still does not fit a page)."""
    method = mode.split("+")[0]
    with ctx.db.engine.begin() as conn:
        for c in ("inputs", "outputs", "extra"):
            conn.exec_driver_sql(f"ALTER TABLE runs ALTER COLUMN {c} SET COMPRESSION {method}")
            if "+main" in mode:
                conn.exec_driver_sql(f"ALTER TABLE runs ALTER COLUMN {c} SET STORAGE MAIN")
        if "+target" in mode:
            conn.exec_driver_sql("ALTER TABLE runs SET (toast_tuple_target = 256)")


def measure(url: str, mode: str, load: str, requests: list[bytes], n: int) -> dict[str, Any]:
    with fresh(url, compression=mode != "text") as (ctx, who):
        if mode == "zstd":
            pretrain(ctx, who, load, n)
        if not ctx.db.is_sqlite:
            pg_mode(ctx, mode)
        cpu = ingest(ctx, who, requests)
        count = sa.select(sa.func.count()).select_from(runs)
        spans = ctx.db.read(lambda c: int(c.execute(count).scalar_one()))
        sizes = sqlite_bytes(ctx) if ctx.db.is_sqlite else pg_bytes(ctx)
    per = {k: round(v / spans) for k, v in sizes["columns"].items()}
    return {
        "spans": spans,
        "bytes_per_span": round((sizes["table"] + sizes["indexes"]) / spans),
        "table_per_span": round(sizes["table"] / spans),
        "indexes_per_span": round(sizes["indexes"] / spans),
        "toast_per_span": round(sizes.get("toast", 0) / spans),
        "file_per_span": round(sizes.get("file", 0) / spans),
        "dictionary_bytes": sizes.get("dictionaries", 0),
        "column_bytes_per_span": per,
        "ingest_cpu_us_per_span": round(cpu / spans * 1e6, 1),
    }


def codec_cpu(load: str, requests: list[bytes], n_traces: int, rounds: int = 5) -> dict[str, Any]:
    """Thread CPU per span of compressing the load's payload documents as the writer does, and
    of decompressing them as reads do (least of ``rounds``), with a dictionary trained on the
    pretraining load: the codec's own cost, without the machine's noise in a whole ingest."""

    def documents(requests: list[bytes]) -> tuple[list[str], int]:
        docs, spans = [], 0
        for body in requests:
            patches, _ = decode_and_map(body, PROTOBUF)
            spans += len(patches)
            for patch in patches:
                for value in (patch.fields.get("inputs"), patch.fields.get("outputs"), patch.extra):
                    if value is not None:
                        docs.append(orjson.dumps(value).decode())
        return docs, spans

    training, _ = documents(bodies(LOADS[load](max(200, n_traces // 5), 99)))
    measured, spans = documents(requests)
    codec = PayloadCodec(lambda _id: None)
    trained = payload_codec.train([d.encode() for d in training], payload_codec.FIRST_ID)
    codec.use(payload_codec.FIRST_ID, trained)
    best_c = best_d = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time()
        frames = [codec.compress(d) for d in measured]
        t1 = time.thread_time()
        for frame in frames:
            if isinstance(frame, bytes):
                codec.decompress(frame)
        t2 = time.thread_time()
        best_c, best_d = min(best_c, t1 - t0), min(best_d, t2 - t1)
    return {
        "compress_us_per_span": round(best_c / spans * 1e6, 1),
        "decompress_us_per_span": round(best_d / spans * 1e6, 1),
    }


def pg_toast_time(url: str, requests: list[bytes], rounds: int = 3) -> dict[str, Any]:
    """PostgreSQL's own time to TOAST-compress and to read back the load's payload documents,
    pglz against lz4: the documents are staged uncompressed (storage EXTERNAL), then copied
    into a table of each compression where every row over 128 bytes is compressed
    (``INSERT ... SELECT``) and read back whole (``sum(length(doc::text))``, which includes
    JSONB's text output), timed by EXPLAIN ANALYZE (server time, no client), least of
    ``rounds``, the two alternating."""
    docs = []
    for body in requests:
        for patch in decode_and_map(body, PROTOBUF)[0]:
            for value in (patch.fields.get("inputs"), patch.fields.get("outputs"), patch.extra):
                if value is not None:
                    docs.append(orjson.dumps(value).decode())

    def ms(conn: sa.Connection, sql: str) -> float:
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").scalar_one()
        return float(plan[0]["Execution Time"])

    best: dict[str, list[float]] = {m: [float("inf"), float("inf")] for m in ("pglz", "lz4")}
    with private_schema(url) as schema_url:
        engine = sa.create_engine(schema_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE staged (doc jsonb)")
            conn.exec_driver_sql("ALTER TABLE staged ALTER COLUMN doc SET STORAGE EXTERNAL")
            conn.execute(
                sa.text("INSERT INTO staged SELECT CAST(:d AS jsonb)"), [{"d": d} for d in docs]
            )
        for _ in range(rounds):
            for method in best:
                with engine.begin() as conn:
                    conn.exec_driver_sql("DROP TABLE IF EXISTS packed")
                    conn.exec_driver_sql(  # every row over 128 bytes is compressed
                        f"CREATE TABLE packed (doc jsonb COMPRESSION {method}) "
                        "WITH (toast_tuple_target = 128)"
                    )
                    write = ms(conn, "INSERT INTO packed SELECT doc FROM staged")
                with engine.begin() as conn:
                    read = ms(conn, "SELECT sum(length(doc::text)) FROM packed")
                best[method] = [min(best[method][0], write), min(best[method][1], read)]
        engine.dispose()
    return {
        m: {
            "write_us_per_doc": round(w / len(docs) * 1000, 2),
            "read_us_per_doc": round(r / len(docs) * 1000, 2),
        }
        for m, (w, r) in best.items()
    } | {"documents": len(docs)}


def time_filters(n_spans: int, rounds: int = 3) -> dict[str, Any]:
    """Text filters over ``n_spans`` GenAI runs, per mode: least of ``rounds`` seconds."""
    requests = bodies(build_traces(n_spans // 5, 3000, seed=5))
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        dbs = {}
        for mode in ("text", "zstd"):
            ctx, who = stack.enter_context(fresh("", compression=mode == "zstd"))
            if mode == "zstd":
                pretrain(ctx, who, "genai", n_spans // 5)
            ingest(ctx, who, requests)
            dbs[mode] = (ctx, who)
        for text in FILTERS:
            best = {mode: float("inf") for mode in dbs}
            counts = {}
            for _ in range(rounds):
                for mode, (ctx, who) in dbs.items():
                    cond = run_filters.compile_filter(
                        filters.parse(text), dialect="sqlite", workspace_id=who.workspace_id, now=0
                    )
                    query = sa.select(sa.func.count()).select_from(runs).where(cond)
                    t0 = time.perf_counter()
                    counts[mode] = ctx.db.read(lambda c, q=query: c.execute(q).scalar_one())
                    best[mode] = min(best[mode], time.perf_counter() - t0)
            assert counts["text"] == counts["zstd"], (text, counts)
            out[text] = {"matches": counts["text"], **{m: round(s, 3) for m, s in best.items()}}
            print(
                f"  filter {text!r:30} {counts['text']:>7} of {n_spans} runs: "
                f"text {best['text']:.3f} s, zstd {best['zstd']:.3f} s "
                f"({best['zstd'] / best['text']:.2f}x)"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--filter-runs", type=int, default=0)
    parser.add_argument("--pg-modes", default="pglz,lz4,lz4+target,pglz+main+target")
    parser.add_argument(
        "--words",
        choices=("bench", "prose"),
        default="bench",
        help="bench: the 10-word vocabulary of bench/ingest.py (compresses far better than real "
        "text); prose: words drawn with their frequencies from Python's own library sources",
    )
    args = parser.parse_args()
    if args.words == "prose":
        ingest_bench.WORDS = prose_words()
    backends = {"sqlite": ("", ("text", "zstd"))}
    if args.database_url:
        url = normalize_database_url(args.database_url)
        backends["postgresql"] = (url, tuple(args.pg_modes.split(",")))
    results: dict[str, Any] = {"traces": args.traces, "rounds": args.rounds}
    for load, make in LOADS.items():
        requests = bodies(make(args.traces, 3 if load == "openinference" else 1))
        for backend, (url, modes) in backends.items():
            seen: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            for _ in range(args.rounds):
                for mode in modes:
                    seen[mode].append(measure(url, mode, load, requests, args.traces))
            for mode, got in seen.items():
                best = min(got, key=lambda m: m["ingest_cpu_us_per_span"])
                results[f"{backend}/{load}/{mode}"] = best
                cols = best["column_bytes_per_span"]
                print(
                    f"{backend:10} {load:13} {mode:10} {best['bytes_per_span']:>6} B/span "
                    f"(table {best['table_per_span']}, toast {best['toast_per_span']}, indexes "
                    f"{best['indexes_per_span']}, file {best['file_per_span']}); "
                    f"inputs {cols['inputs']} outputs "
                    f"{cols['outputs']} extra {cols['extra']} metadata {cols['metadata']}; "
                    f"ingest CPU {best['ingest_cpu_us_per_span']} us/span"
                )
    if args.filter_runs:
        results["filters"] = time_filters(args.filter_runs)
    for load, make in LOADS.items():
        requests = bodies(make(args.traces, 3 if load == "openinference" else 1))
        results[f"codec/{load}"] = cpu = codec_cpu(load, requests, args.traces)
        print(
            f"{load:13} zstd with the dictionary, thread CPU per span: compress "
            f"{cpu['compress_us_per_span']} us, decompress {cpu['decompress_us_per_span']} us"
        )
        if args.database_url:
            results[f"toast/{load}"] = toast = pg_toast_time(
                normalize_database_url(args.database_url), requests
            )
            print(
                f"{load:13} PostgreSQL TOAST, server time per document (write, read back): "
                + ", ".join(
                    f"{m} {toast[m]['write_us_per_doc']} / {toast[m]['read_us_per_doc']} us"
                    for m in ("pglz", "lz4")
                )
            )
    results_file.write("payload-disk", results)


if __name__ == "__main__":
    main()
