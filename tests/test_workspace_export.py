"""`goldloop export` / `goldloop import` (docs/export.md): a workspace holding every kind of
object goes SQLite -> PostgreSQL -> SQLite and comes back field for field, ids kept; secrets stay
behind; broken exports and occupied workspaces are refused before anything is written."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi import FastAPI
from tests.receiver import Receiver

from goldloop.cli.main import cli
from goldloop.domain import export_format as fmt
from goldloop.domain.errors import Conflict, GoldloopError
from goldloop.http.app import create_app
from goldloop.services import alerts, auth, rules, workspace_export, workspace_import
from goldloop.services.context import ServiceContext
from goldloop.settings import Settings, load_settings
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import (
    alert_events,
    alert_rules,
    annotation_queue_items,
    annotation_queue_reviews,
    annotation_queues,
    attachments,
    audit_log,
    canary_items,
    canary_runs,
    canary_sets,
    channels,
    dataset_examples,
    dataset_tags,
    dataset_versions,
    datasets,
    deliveries,
    experiment_tags,
    feedback,
    feedback_history,
    feedback_keys,
    metadata,
    pairwise_items,
    pairwise_queues,
    projects,
    redaction_configs,
    retention_policies,
    rule_actions,
    rule_cursors,
    runs,
    workspaces,
)
from goldloop.store.schema import rules as rules_table

API = "/api/v1"
FILE_BYTES = b"\x89PNG the attached bytes"


def _settings(tmp: Path, url: str = "") -> Settings:
    return load_settings(
        {
            "data_dir": tmp,
            "database_url": url,
            "workers_in_process": False,
            "ingest_processes": 0,
            "outbound_allowed_hosts": "127.0.0.1",
        },
        environ={},
    )


def _ctx(settings: Settings) -> ServiceContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.effective_database_url)
    migrate.upgrade(database.engine)
    database.start()
    return ServiceContext(db=database, settings=settings)


async def _client(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    key = settings.admin_key_path.read_text().strip()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://goldloop.test", headers={"x-api-key": key}
    ) as c:
        yield c


def _multipart(*parts: tuple[str, str, bytes]) -> tuple[bytes, dict[str, str]]:
    out = b""
    for name, content_type, data in parts:
        head = (
            f'--lc\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        out += head.encode() + data + b"\r\n"
    return out + b"--lc--\r\n", {"content-type": "multipart/form-data; boundary=lc"}


async def _ok(r: Any) -> dict[str, Any]:
    response = await r
    assert response.is_success, response.text
    return response.json() if response.content else {}


async def _populate(c: httpx.AsyncClient, ctx: ServiceContext, hook: Receiver) -> None:
    """One of everything: runs (native, OTLP, with a file), feedback edited and deleted, a score
    config, a dataset with versions, tags, lineage and an example file, an experiment with
    results and a tag, rules, channels, an alert that fired, a retention policy, the audit log."""
    now = ctx.clock()
    native = [
        {
            "id": "root-1",
            "trace_id": "trace-1",
            "name": "answer",
            "kind": "chain",
            "start_time": now - 2_000_000,
            "end_time": now - 1_000_000,
            "inputs": {"question": "refund?", "n": 3},
            "outputs": "Yes, within 30 days.",
            "tags": ["prod"],
            "metadata": {"release": "r1", "nested": {"a": [1, 2.5]}},
            "session_id": "conv-1",
            "user_id": "u-9",
        },
        {
            "id": "llm-1",
            "trace_id": "trace-1",
            "parent_id": "root-1",
            "name": "ChatModel",
            "kind": "llm",
            "start_time": now - 1_900_000,
            "end_time": now - 1_100_000,
            "inputs": {"messages": [{"role": "user", "content": "refund?"}]},
            "outputs": {"messages": [{"role": "assistant", "content": "Yes"}]},
            "model": "gpt-4o-mini",
            "provider": "openai",
            "usage": {"input_tokens": 10, "output_tokens": 4},
        },
        {
            "id": "root-2",
            "trace_id": "trace-2",
            "name": "answer",
            "kind": "chain",
            "status": "error",
            "error": {"type": "Timeout", "message": "slow"},
            "start_time": now - 3_000_000,
            "end_time": now - 500_000,
            "inputs": {"question": "hours?"},
        },
    ]
    await _ok(c.post(f"{API}/runs/batch", json={"project": "support", "runs": native}))
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "otel-call",
        "kind": 3,
        "startTimeUnixNano": str((now - 1_000_000) * 1000),
        "endTimeUnixNano": str(now * 1000),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "m-1"}},
            {"key": "custom.attr", "value": {"intValue": "7"}},
        ],
    }
    otlp = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "x"}}]
                },
                "scopeSpans": [{"scope": {"name": "s"}, "spans": [span]}],
            }
        ]
    }
    r = await c.post(
        "/v1/traces",
        content=orjson.dumps(otlp),
        headers={"content-type": "application/json", "x-goldloop-project": "support"},
    )
    assert r.is_success, r.text
    run_id = str(uuid.uuid4())
    run = {
        "trace_id": run_id,
        "dotted_order": f"20261126T100000000000Z{run_id}",
        "name": "with-file",
        "run_type": "llm",
        "session_name": "support",
        "start_time": "2026-11-26T10:00:00+00:00",
        "inputs": {"q": "x"},
    }
    body, headers = _multipart(
        (f"post.{run_id}", "application/json", orjson.dumps(run)),
        (f"attachment.{run_id}.photo", "image/png", FILE_BYTES),
    )
    assert (await c.post("/langsmith/runs/multipart", content=body, headers=headers)).is_success

    await _ok(
        c.put(f"{API}/feedback-keys/correctness", json={"kind": "continuous", "min": 0, "max": 1})
    )
    fb = await _ok(
        c.post(
            f"{API}/feedback",
            json={
                "key": "correctness",
                "run_id": "root-1",
                "score": 0,
                "comment": "wrong",
                "correction": {"answer": "No"},
            },
        )
    )
    await _ok(c.patch(f"{API}/feedback/{fb['id']}", json={"comment": "wrong policy"}))
    gone = await _ok(
        c.post(f"{API}/feedback", json={"key": "thumbs", "trace_id": "trace-2", "score": True})
    )
    await _ok(c.delete(f"{API}/feedback/{gone['id']}"))
    await _ok(c.post(f"{API}/feedback", json={"key": "early", "run_id": "not-yet", "value": "a"}))

    ds = await _ok(
        c.post(f"{API}/datasets", json={"name": "golden", "inputs_schema": {"type": "object"}})
    )
    await _ok(
        c.post(
            f"{API}/datasets/golden/runs", json={"run_ids": ["root-1"], "prefer_correction": True}
        )
    )
    await _ok(
        c.post(
            f"{API}/datasets/golden/examples",
            json={
                "examples": [
                    {"id": "hand-1", "inputs": {"q": "a"}, "outputs": {"a": 1}, "splits": ["test"]},
                    {"id": "hand-2", "inputs": {"q": "b"}},
                ]
            },
        )
    )
    await _ok(c.put(f"{API}/datasets/golden/tags/v1", json={}))
    await _ok(c.patch(f"{API}/datasets/golden/examples/hand-1", json={"outputs": {"a": 2}}))
    await _ok(c.post(f"{API}/datasets/golden/examples/delete", json={"ids": ["hand-2"]}))
    example_id = str(uuid.uuid4())
    body, headers = _multipart(
        (example_id, "application/json", orjson.dumps({"metadata": {"m": 1}})),
        (f"{example_id}.inputs", "application/json", b'{"q": "with file"}'),
        (f"{example_id}.attachment.doc", "text/plain", b"example file"),
    )
    r = await c.post(
        f"/langsmith/v1/platform/datasets/{ds['id']}/examples", content=body, headers=headers
    )
    assert r.is_success, r.text

    exp = await _ok(c.post(f"{API}/experiments", json={"name": "exp-1", "dataset": "golden"}))
    await _ok(
        c.post(
            f"{API}/runs/batch",
            json={
                "project": "exp-1",
                "runs": [
                    {
                        "id": "exp-run-1",
                        "trace_id": "exp-run-1",
                        "name": "target",
                        "start_time": now,
                        "end_time": now + 5,
                        "reference_example_id": "hand-1",
                        "outputs": {"a": 2},
                    }
                ],
            },
        )
    )
    await _ok(
        c.post(f"{API}/feedback", json={"key": "correctness", "run_id": "exp-run-1", "score": 1})
    )
    await _ok(c.put(f"{API}/experiments/{exp['id']}/tags/main"))

    pid = (await c.get(f"{API}/projects", params={"name": "support"})).json()["items"][0]["id"]
    await _ok(
        c.put(f"{API}/projects/{pid}/retention", json={"keep_days": 30, "keep_in_datasets": True})
    )
    await _ok(
        c.post(
            f"{API}/rules",
            json={
                "project_id": pid,
                "name": "to hook",
                "actions": [{"type": "webhook", "url": hook.url}],
            },
        )
    )
    await _ok(
        c.post(
            f"{API}/rules",
            json={
                "project_id": pid,
                "name": "corrections",
                "trigger": "feedback",
                "actions": [{"type": "add_to_dataset", "dataset": "golden"}],
            },
        )
    )
    hook_channel = await _ok(
        c.post(f"{API}/channels", json={"name": "hook", "kind": "webhook", "url": hook.url})
    )
    await _ok(
        c.post(
            f"{API}/channels",
            json={
                "name": "pager",
                "kind": "pagerduty",
                "url": hook.url,
                "secret": "routing-key-123",
            },
        )
    )
    alert = await _ok(
        c.post(
            f"{API}/alert-rules",
            json={
                "project_id": pid,
                "name": "any traffic",
                "metric": {"kind": "volume"},
                "condition": {"type": "threshold", "op": ">", "value": 0, "min_samples": 1},
                "window_s": 3600,
                "every_s": 60,
                "channel_ids": [hook_channel["id"]],
            },
        )
    )
    fired = alerts.evaluate_due(ctx)
    assert (alert["id"], "fired") in fired

    queue = await _ok(
        c.post(
            f"{API}/annotation-queues",
            json={"name": "review", "keys": ["correctness"], "dataset": "golden"},
        )
    )
    await _ok(
        c.post(
            f"{API}/annotation-queues/{queue['id']}/items", json={"run_ids": ["root-2", "llm-1"]}
        )
    )
    item = await _ok(c.post(f"{API}/annotation-queues/{queue['id']}/next"))
    item_id = item["item"]["id"]
    await _ok(
        c.post(
            f"{API}/annotation-queues/{queue['id']}/items/{item_id}/reviews",
            json={"scores": {"correctness": {"score": 1}}, "comment": "fine"},
        )
    )
    pairwise = await _ok(
        c.post(
            f"{API}/annotation-queues/pairwise",
            json={"name": "which is better", "pairs": [{"run_a": "root-2", "run_b": "llm-1"}]},
        )
    )
    pair = await _ok(c.post(f"{API}/annotation-queues/{pairwise['queue']['id']}/next"))
    await _ok(
        c.post(
            f"{API}/annotation-queues/{pairwise['queue']['id']}/pairs/{pair['item']['id']}"
            "/preference",
            json={"preference": "B"},
        )
    )
    listed = (await c.get(f"{API}/rules")).json()
    rule_id = next(r["id"] for r in listed if r["name"] == "corrections")

    def direct(conn: sa.Connection) -> None:
        ws = conn.execute(
            sa.select(workspaces.c.id).where(workspaces.c.name == "default")
        ).scalar_one()
        conn.execute(
            sa.insert(redaction_configs).values(
                workspace_id=ws,
                project_id="",
                config={"detectors": ["email"], "mode": "placeholder"},
                updated_at=now,
            )
        )
        conn.execute(
            sa.insert(redaction_configs).values(
                workspace_id=ws,
                project_id=pid,
                config={"detectors": [], "custom": [{"name": "x", "pattern": "a+"}]},
                updated_at=now,
            )
        )
        conn.execute(
            sa.insert(canary_sets).values(
                id="canary-1",
                workspace_id=ws,
                rule_id=rule_id,
                judge_key="judge",
                human_key="correctness",
                kind="continuous",
                threshold=0.5,
                interval_s=3600,
                alpha=0.05,
                min_drop=0.1,
                size=2,
                baseline_run_id="crun-1",
                pending_run_id=None,
                next_due_at=now + 10,
                created_by="t",
                created_at=now,
            )
        )
        conn.execute(
            sa.insert(canary_items),
            [
                {
                    "set_id": "canary-1",
                    "run_id": "root-1",
                    "trace_id": "trace-1",
                    "human_score": 0.0,
                    "position": 0,
                },
                {
                    "set_id": "canary-1",
                    "run_id": "root-2",
                    "trace_id": "trace-2",
                    "human_score": 1.0,
                    "position": 1,
                },
            ],
        )
        conn.execute(
            sa.insert(canary_runs).values(
                id="crun-1",
                set_id="canary-1",
                workspace_id=ws,
                rule_id=rule_id,
                trigger="schedule",
                status="done",
                evaluator="judge",
                judge_model="m",
                prompt_hash="h" * 64,
                n=2,
                errors=0,
                verdicts=[{"run_id": "root-1", "score": 0.5}],
                figures={"mae": 0.5},
                drift=None,
                detail=None,
                created_at=now,
                finished_at=now + 1,
            )
        )

    ctx.db.write(direct)


def _truncate_pg(url: str) -> None:
    engine = sa.create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


def _rows(ctx: ServiceContext, ws_name: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the workspace, straight from the tables (not through the export code),
    without the columns the target assigns again (pk, seq, workspace_id)."""

    def read(conn: sa.Connection) -> dict[str, list[dict[str, Any]]]:
        ws = conn.execute(
            sa.select(workspaces.c.id).where(workspaces.c.name == ws_name)
        ).scalar_one()
        ds = sa.select(datasets.c.id).where(datasets.c.workspace_id == ws)
        ar = sa.select(alert_rules.c.id).where(alert_rules.c.workspace_id == ws)
        wheres: dict[str, tuple[sa.Table, Any]] = {
            t.name: (t, t.c.workspace_id == ws)
            for t in (
                projects,
                runs,
                feedback,
                feedback_history,
                feedback_keys,
                datasets,
                attachments,
                retention_policies,
                channels,
                alert_rules,
                rules_table,
                audit_log,
            )
        }
        for t in (dataset_versions, dataset_tags, dataset_examples, experiment_tags):
            wheres[t.name] = (t, t.c.dataset_id.in_(ds))
        wheres["alert_events"] = (alert_events, alert_events.c.alert_rule_id.in_(ar))
        for t in (
            redaction_configs,
            annotation_queues,
            annotation_queue_items,
            annotation_queue_reviews,
            canary_sets,
            canary_runs,
        ):
            wheres[t.name] = (t, t.c.workspace_id == ws)
        wheres["pairwise_queues"] = (pairwise_queues, pairwise_queues.c.workspace_id == ws)
        queued = sa.select(annotation_queue_items.c.id).where(
            annotation_queue_items.c.workspace_id == ws
        )
        wheres["pairwise_items"] = (pairwise_items, pairwise_items.c.item_id.in_(queued))
        sets = sa.select(canary_sets.c.id).where(canary_sets.c.workspace_id == ws)
        wheres["canary_items"] = (canary_items, canary_items.c.set_id.in_(sets))
        out = {}
        for name, (table, where) in wheres.items():
            cols = [col for col in table.c if col.name not in ("pk", "seq", "workspace_id")]
            # runs in log order per project: an import keeps that order (pk is storage detail)
            order = (
                [runs.c.project_id, runs.c.seq]
                if table is runs
                else [table.c.pk]
                if "pk" in table.c
                else cols[:1]
            )
            found = [
                dict(r._mapping)
                for r in conn.execute(sa.select(*cols).where(where).order_by(*order))
            ]
            out[name] = (
                found
                if "pk" in table.c
                else sorted(
                    found,
                    key=lambda r: orjson.dumps(
                        r, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
                    ),
                )
            )
        return out

    return ctx.db.read(read)


def _secretless(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """What an import of these rows must hold: channels cut and keyless, rules masked (and off
    when they need a secret), signing keys new (compared separately), audit entries added."""
    out = {k: [dict(r) for r in v] for k, v in rows.items()}
    for ch in out["channels"]:
        ch.update(
            url=ch["url"].split("/", 3)[0] + "//" + ch["url"].split("/", 3)[2] + "/…",
            secret=None,
            signing_secret=None,
        )
    for rule in out["rules"]:
        rule.pop("signing_secret")
        if any(a.get("type") == "webhook" for a in rule["actions"]):
            rule["enabled"] = False
            for a in rule["actions"]:
                if a.get("type") == "webhook":
                    a["url"] = a["url"].split("/", 3)[0] + "//" + a["url"].split("/", 3)[2] + "/…"
    return out


def _comparable(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out = {k: [dict(r) for r in v] for k, v in rows.items()}
    for rule in out["rules"]:
        secret = rule.pop("signing_secret", "whsec_ (popped by _secretless)")
        assert str(secret).startswith("whsec_")
    # the import's own entry (and a bootstrap's) come on top of the exported history
    out["audit_log"] = [a for a in out["audit_log"] if a["action"] not in ("workspace.imported",)]
    return out


@pytest.mark.postgres
async def test_round_trip_sqlite_postgres_sqlite(
    tmp_path: Path, pg_url: str, hook: Receiver
) -> None:
    source_settings = _settings(tmp_path / "a")
    app = create_app(source_settings)
    async with app.router.lifespan_context(app):
        ctx: ServiceContext = app.state.ctx
        async for c in _client(app, source_settings):
            await _populate(c, ctx, hook)
        # another workspace's objects stay out of the export
        other = auth.create_workspace(ctx, "other")
        other_key = auth.create_key(ctx, other.id, "k", "admin").secret
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://goldloop.test",
            headers={"x-api-key": other_key},
        ) as oc:
            await _ok(
                oc.post(
                    f"{API}/runs/batch",
                    json={
                        "project": "theirs",
                        "runs": [{"id": "their-run", "trace_id": "their-run", "name": "theirs"}],
                    },
                )
            )
        original = _rows(ctx, "default")
        assert all(original[k] for k in original), [k for k in original if not original[k]]
        first = tmp_path / "export-1"
        manifest = workspace_export.export_workspace(ctx, "default", first)
        assert b"their-run" not in (first / "runs.jsonl").read_bytes()
        assert b"routing-key-123" not in b"".join(
            p.read_bytes() for p in first.iterdir() if p.is_file()
        )
        assert manifest["files"]["runs.jsonl"]["rows"] == len(original["runs"])
        digest = hashlib.sha256(FILE_BYTES).hexdigest()
        assert (first / "attachments" / digest).read_bytes() == FILE_BYTES
        # the export itself is on record (after the audit file was written)
        assert _rows(ctx, "default")["audit_log"][-1]["action"] == "workspace.exported"
        # the same export into its own, occupied, workspace is refused; merged, its ids clash
        with pytest.raises(Conflict, match="not empty"):
            workspace_import.import_workspace(ctx, first)
        with pytest.raises(Conflict, match="exists on this server"):
            workspace_import.import_workspace(ctx, first, workspace="default", merge=True)

    # into PostgreSQL, a server with no workspace at all
    _truncate_pg(pg_url)
    pg = _ctx(_settings(tmp_path / "b", pg_url))
    try:
        report = workspace_import.import_workspace(pg, first)
        assert sorted(report.disabled_channels) == ["hook", "pager"]
        assert report.disabled_rules == ["to hook"]
        on_pg = _rows(pg, "default")
        assert _comparable(on_pg) == _comparable(_secretless(original))
        assert (
            pg.db.read(
                lambda c: c.execute(
                    sa.select(sa.func.count()).select_from(rule_cursors)
                ).scalar_one()
            )
            == 2
        )
        second = tmp_path / "export-2.tar.gz"
        result = CliRunner().invoke(
            cli,
            [
                "export",
                str(second),
                "--database-url",
                pg_url,
                "--data-dir",
                str(tmp_path / "b"),
                "--quiet",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "exported workspace 'default'" in result.output
    finally:
        pg.db.close()

    # back into SQLite: a fresh server's empty default workspace, through the CLI
    target = _settings(tmp_path / "c")
    app = create_app(target)
    async with app.router.lifespan_context(app):
        # bootstrap: the default workspace and its admin key (and their audit entry)
        before = _rows(app.state.ctx, "default")["audit_log"]
    result = CliRunner().invoke(cli, ["import", str(second), "--data-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "channel 'hook' is disabled" in result.output
    back = _ctx(target)
    try:
        imported = _rows(back, "default")
        assert imported["audit_log"][: len(before)] == before
        imported["audit_log"] = imported["audit_log"][len(before) :]
        assert _comparable(imported) == _comparable(_secretless(original))
        # imported rules start at the head of the logs: the imported history is not replayed
        assert rules.tail_once(back) == 0
        assert (
            back.db.read(
                lambda c: c.execute(
                    sa.select(sa.func.count()).select_from(rule_actions)
                ).scalar_one()
            )
            == 0
        )
        # channels without their URL are skipped: a firing alert notifies nobody
        back.db.write(
            lambda c: c.execute(sa.update(alert_rules).values(state="ok", last_evaluated_at=None))
        )
        assert [event for _, event in alerts.evaluate_due(back)] == ["fired"]
        assert (
            back.db.read(
                lambda c: c.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one()
            )
            == 0
        )
        assert (
            back.settings.attachments_path.joinpath(digest[:2], digest[2:4], digest).read_bytes()
            == FILE_BYTES
        )
    finally:
        back.db.close()


def _tiny_export(tmp_path: Path) -> tuple[ServiceContext, Path]:
    ctx = _ctx(_settings(tmp_path / "src"))
    ws = auth.create_workspace(ctx, "default")
    now = ctx.clock()

    def write(conn: sa.Connection) -> None:
        conn.execute(
            sa.insert(projects).values(id="p-1", workspace_id=ws.id, name="p", created_at=now)
        )
        conn.execute(
            sa.insert(runs),
            [
                {
                    "workspace_id": ws.id,
                    "project_id": "p-1",
                    "id": f"r-{i}",
                    "trace_id": f"r-{i}",
                    "seq": i + 1,
                    "is_root": True,
                    "name": "n",
                    "kind": "chain",
                    "status": "ok",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(5)
            ],
        )

    ctx.db.write(write)
    out = tmp_path / "export"
    workspace_export.export_workspace(ctx, "default", out)
    return ctx, out


def test_broken_exports_are_refused_naming_what_is_wrong(tmp_path: Path) -> None:
    ctx, out = _tiny_export(tmp_path)
    ctx.db.close()
    target = _ctx(_settings(tmp_path / "dst"))
    try:
        manifest = orjson.loads((out / fmt.MANIFEST).read_bytes())
        (out / fmt.MANIFEST).write_bytes(orjson.dumps({**manifest, "schema_version": 99}))
        with pytest.raises(GoldloopError, match="schema version 99"):
            workspace_import.import_workspace(target, out)
        (out / fmt.MANIFEST).write_bytes(orjson.dumps(manifest))

        lines = (out / "runs.jsonl").read_bytes().splitlines(keepends=True)
        (out / "runs.jsonl").write_bytes(b"".join([*lines[:2], b'{"id": "r-2", \n', *lines[3:]]))
        with pytest.raises(GoldloopError, match=r"runs.jsonl line 3: not valid JSON"):
            workspace_import.import_workspace(target, out)
        (out / "runs.jsonl").write_bytes(
            b"".join([*lines[:3], lines[3].replace(b'"n"', b'"m"'), *lines[4:]])
        )
        with pytest.raises(GoldloopError, match=re.escape("runs.jsonl does not match its SHA-256")):
            workspace_import.import_workspace(target, out)
        (out / "runs.jsonl").write_bytes(b"".join(lines[:4]))
        with pytest.raises(
            GoldloopError, match=re.escape("runs.jsonl has 4 lines, the manifest says 5")
        ):
            workspace_import.import_workspace(target, out)
        (out / "runs.jsonl").write_bytes(
            b"".join([*lines[:4], lines[4].replace(b'"name"', b'"nom"')])
        )
        with pytest.raises(
            GoldloopError, match=re.escape("runs.jsonl line 5: unknown field 'nom'")
        ):
            workspace_import.import_workspace(target, out)
        # an archive whose member would land outside its folder is refused, nothing unpacked
        evil = tmp_path / "evil.tar.gz"
        with tarfile.open(evil, "w:gz") as tar:
            tar.add(out / fmt.MANIFEST, arcname="../escaped.json")
        with pytest.raises(GoldloopError, match="not a directory or a readable tar archive"):
            workspace_import.import_workspace(target, evil)
        assert not (tmp_path.parent / "escaped.json").exists()
        # nothing was written by any of them
        assert (
            target.db.read(
                lambda c: c.execute(sa.select(sa.func.count()).select_from(projects)).scalar_one()
            )
            == 0
        )
        (out / "runs.jsonl").write_bytes(b"".join(lines))
        report = workspace_import.import_workspace(target, out, workspace="copy")
        assert report.rows["runs"] == 5
    finally:
        target.db.close()


def test_a_selection_exports_only_those_projects(tmp_path: Path) -> None:
    ctx = _ctx(_settings(tmp_path / "src"))
    try:
        ws = auth.create_workspace(ctx, "default")
        now = ctx.clock()

        def write(conn: sa.Connection) -> None:
            for pid in ("p-1", "p-2"):
                conn.execute(
                    sa.insert(projects).values(id=pid, workspace_id=ws.id, name=pid, created_at=now)
                )
                conn.execute(
                    sa.insert(runs).values(
                        workspace_id=ws.id,
                        project_id=pid,
                        id=f"run-{pid}",
                        trace_id=f"t-{pid}",
                        seq=1 if pid == "p-1" else 2,
                        is_root=True,
                        name="n",
                        kind="chain",
                        status="ok",
                        created_at=now,
                        updated_at=now,
                    )
                )
                conn.execute(
                    sa.insert(feedback).values(
                        workspace_id=ws.id,
                        id=f"fb-{pid}",
                        run_id=f"run-{pid}",
                        key="k",
                        score=1.0,
                        score_is_bool=False,
                        has_correction=False,
                        source="api",
                        request_hash="x",
                        created_at=now,
                        updated_at=now,
                    )
                )

        ctx.db.write(write)
        out = tmp_path / "only-p2"
        doc = workspace_export.export_workspace(ctx, "default", out, project_refs=["p-2"])
        assert doc["selection"] == {"projects": ["p-2"], "datasets": []}
        assert [orjson.loads(x)["id"] for x in (out / "runs.jsonl").read_bytes().splitlines()] == [
            "run-p-2"
        ]
        assert [
            orjson.loads(x)["id"] for x in (out / "feedback.jsonl").read_bytes().splitlines()
        ] == ["fb-p-2"]
        with pytest.raises(GoldloopError, match="no project 'nope'"):
            workspace_export.export_workspace(ctx, "default", tmp_path / "x", project_refs=["nope"])
        with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as tar:
            tar.add(out, arcname="only-p2")
        workspace_export.export_workspace(
            ctx, "default", tmp_path / "only-p1", project_refs=["p-1"]
        )
    finally:
        ctx.db.close()
    target = _ctx(_settings(tmp_path / "dst"))
    try:
        report = workspace_import.import_workspace(target, tmp_path / "a.tar.gz")
        assert report.rows == {
            **dict.fromkeys(report.rows, 0),
            "projects": 1,
            "runs": 1,
            "feedback": 1,
        }
        # the other project into the same, now occupied, workspace: only with --merge
        args = ["import", str(tmp_path / "only-p1"), "--data-dir", str(tmp_path / "dst")]
        refused = CliRunner().invoke(cli, args)
        assert refused.exit_code == 1
        assert "workspace 'default' is not empty (it has projects, feedback)" in refused.output
        assert "Traceback" not in refused.output
        merged = CliRunner().invoke(cli, [*args, "--merge", "--quiet"])
        assert merged.exit_code == 0, merged.output
        ids = target.db.read(lambda c: sorted(c.scalars(sa.select(runs.c.id))))
        assert ids == ["run-p-1", "run-p-2"]
    finally:
        target.db.close()


def test_every_file_and_field_is_documented() -> None:
    """docs/export.md has a table for each file, with a row for each of its fields, so a reader
    can parse an export without Goldloop."""
    from goldloop.store.workspace_export import SPECS

    page = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text()
    sections = page.split("\n### ")
    for file in fmt.FILES:
        found = [s for s in sections if s.startswith(f"`{file}`")]
        assert found, f"docs/export.md has no section for {file}"
        for field in SPECS[fmt.kind_of(file)].fields:
            assert f"| `{field}` |" in found[0], f"{file}: field {field!r} is not documented"
    manifest = next(s for s in sections if s.startswith("manifest.json"))
    doc = fmt.manifest(
        version="x",
        created_at="",
        workspace={"id": "i", "name": "n"},
        selection=None,
        files={},
        attachments={},
        notes=[],
    )
    for key in doc:
        assert f"| `{key}` |" in manifest, f"manifest field {key!r} is not documented"


async def test_an_admin_downloads_the_workspace_over_http(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    ctx: ServiceContext = app.state.ctx
    run = {"id": "mine", "trace_id": "mine", "name": "n"}
    await _ok(client.post(f"{API}/runs/batch", json={"project": "p", "runs": [run]}))
    default = auth.workspace_by_name(ctx, "default")
    member = auth.create_key(ctx, default.id, "m", "member").secret
    other = auth.create_key(ctx, auth.create_workspace(ctx, "other").id, "o", "admin").secret
    theirs = {"id": "theirs", "trace_id": "theirs", "name": "n"}
    r = await client.post(
        f"{API}/runs/batch", json={"project": "q", "runs": [theirs]}, headers={"x-api-key": other}
    )
    assert r.is_success

    r = await client.get(f"{API}/export", params={"otlp": "false"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip"
    archive = settings.data_dir.parent / "download.tar.gz"
    archive.write_bytes(r.content)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        assert f"{top}/traces.otlp.jsonl" not in names
        found = tar.extractfile(f"{top}/runs.jsonl")
        assert found is not None
        ids = [orjson.loads(line)["id"] for line in found.read().splitlines()]
    assert ids == ["mine"]
    assert not list(settings.data_dir.glob(".export-*"))  # the temporary archive is gone
    # the other workspace's admin gets theirs only; a member key is refused; a bad name is 404
    r = await client.get(f"{API}/export", headers={"x-api-key": other})
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        runs_file = next(n for n in tar.getnames() if n.endswith("/runs.jsonl"))
        found = tar.extractfile(runs_file)
        assert found is not None
        assert [orjson.loads(x)["id"] for x in found.read().splitlines()] == ["theirs"]
    r = await client.get(f"{API}/export", headers={"x-api-key": member})
    assert r.status_code == 403
    r = await client.get(f"{API}/export", params={"project": "nope"})
    assert r.status_code == 404
    assert "no project 'nope'" in r.json()["error"]["message"]
    assert not list(settings.data_dir.glob(".export-*"))
