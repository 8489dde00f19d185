"""Workspace export and import rates: `goldloop export` / `goldloop import` on --runs runs.

Grows a workspace of --runs runs (4 per trace, realistic inputs and outputs, 1 feedback per
trace), exports it with the export service (timed, with and without the OTLP file), imports the
export into an empty second database (timed), and checks that the runs arrived. Runs/s counts
runs only; the feedback rides along in the same pass.

    python bench/export.py                                         # SQLite, 20,000 runs
    python bench/export.py --database-url postgresql://postgres@127.0.0.1:5432/test

Prints the figures and writes bench/results/export-<time>.json. On PostgreSQL both databases are
private schemas dropped at the end; SQLite files live in a temporary directory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file

from goldloop.services import auth, projects, workspace_export, workspace_import
from goldloop.services.context import Principal, ServiceContext
from goldloop.settings import load_settings, normalize_database_url
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import feedback, runs


def _pg_schema(url: str) -> tuple[str, str]:
    schema = f"bench_export_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    admin.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(url: str, schema: str) -> None:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def _ctx(data: Path, url: str) -> ServiceContext:
    settings = load_settings({"data_dir": data, "database_url": url}, environ={})
    data.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    db.start()
    return ServiceContext(db=db, settings=settings)


def _grow(ctx: ServiceContext, ws: str, project: str, n: int) -> None:
    now = ctx.clock()
    chunk: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []

    def flush() -> None:
        rows, fb = list(chunk), list(notes)
        chunk.clear()
        notes.clear()

        def write(conn: sa.Connection) -> None:
            conn.execute(sa.insert(runs), rows)
            conn.execute(sa.insert(feedback), fb)

        ctx.db.write(write)

    for t in range(n // 4):
        start = now - 86_400_000_000 + t * 1000
        for i in range(4):
            chunk.append(
                {
                    "workspace_id": ws,
                    "project_id": project,
                    "id": f"r{t}-{i}",
                    "trace_id": f"t{t}",
                    "parent_id": None if i == 0 else f"r{t}-0",
                    "seq": t * 4 + i + 1,
                    "is_root": i == 0,
                    "name": "llm" if i else "agent",
                    "kind": "llm" if i else "chain",
                    "status": "success",
                    "start_time": start + i,
                    "end_time": start + i + 1_000_000,
                    "latency_us": 1_000_000,
                    "inputs": {"messages": [{"role": "user", "content": "question " * 20}]},
                    "outputs": {"messages": [{"role": "assistant", "content": "answer " * 40}]},
                    "model": "gpt-4o-mini" if i else None,
                    "input_tokens": 120 if i else None,
                    "output_tokens": 80 if i else None,
                    "metadata": {"customer": f"c{t % 1000}"},
                    "tags": ["prod"],
                    "created_at": start,
                    "updated_at": start,
                }
            )
        notes.append(
            {
                "workspace_id": ws,
                "id": str(uuid.uuid4()),
                "run_id": f"r{t}-0",
                "trace_id": f"t{t}",
                "key": "correctness",
                "score": float(t % 2),
                "score_is_bool": False,
                "has_correction": False,
                "source": "api",
                "request_hash": "0" * 64,
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(chunk) >= 5000:
            flush()
    if chunk:
        flush()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--database-url", default="", help="empty: SQLite in a temporary directory")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="goldloop-bench-export-"))
    base = normalize_database_url(args.database_url) if args.database_url else ""
    schemas: list[str] = []
    urls = ["", ""]
    if base:
        for i in range(2):
            urls[i], schema = _pg_schema(base)
            schemas.append(schema)
    source = _ctx(tmp / "source", urls[0])
    target = _ctx(tmp / "target", urls[1])
    figures: dict[str, Any] = {"backend": "postgresql" if base else "sqlite", "runs": args.runs}
    try:
        ws = auth.create_workspace(source, "bench")
        who = Principal(workspace_id=ws.id, key_id="bench", role="admin")
        project = projects.create(source, who, "support").id
        _grow(source, ws.id, project, args.runs)
        with source.db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")

        for otlp in (False, True):
            out = tmp / f"export-{otlp}"
            t0 = time.perf_counter()
            doc = workspace_export.export_workspace(source, "bench", out, otlp=otlp)
            seconds = time.perf_counter() - t0
            assert doc["files"]["runs.jsonl"]["rows"] == args.runs
            name = "export_with_otlp" if otlp else "export"
            figures[name] = {
                "seconds": round(seconds, 2),
                "runs_per_s": round(args.runs / seconds),
                "megabytes": round(_size(out) / 1e6, 1),
            }
            print(
                f"{name}: {seconds:.1f} s, {args.runs / seconds:,.0f} runs/s, "
                f"{_size(out) / 1e6:.1f} MB"
            )

        t0 = time.perf_counter()
        report = workspace_import.import_workspace(target, tmp / "export-True")
        seconds = time.perf_counter() - t0
        assert report.rows["runs"] == args.runs, report.rows
        count = target.db.read(
            lambda c: c.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
        )
        assert count == args.runs
        figures["import"] = {"seconds": round(seconds, 2), "runs_per_s": round(args.runs / seconds)}
        print(f"import: {seconds:.1f} s, {args.runs / seconds:,.0f} runs/s (check pass included)")
        figures["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        source.db.close()
        target.db.close()
        for schema in schemas:
            _drop_schema(base, schema)
        shutil.rmtree(tmp, ignore_errors=True)
    results_file.write("export", figures)


if __name__ == "__main__":
    main()
