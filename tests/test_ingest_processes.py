"""Ingestion against a real `goldloop serve` process: unmodified OpenTelemetry SDK exporters
(protobuf and JSON), and a SIGKILL during sustained ingestion losing nothing acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import (
    OTLPSpanExporter as JsonSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as ProtoSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from goldloop.domain.otel.dedupe import restore_content
from goldloop.settings import Settings
from goldloop.store import run_rows
from goldloop.store.database import Database
from test_serve import SRC, start_server

pytestmark = pytest.mark.slow


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[subprocess.Popen[str], str, str, Settings]]:
    extra = ["--database-url", settings.database_url] if settings.database_url else []
    proc, base = start_server(settings.data_dir, *extra)
    key = settings.admin_key_path.read_text().strip()
    yield proc, base, key, settings
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)  # also closes the output pipe


def _rows_of_workspace(settings: Settings, trace_id: str) -> list[dict[str, Any]]:
    db = Database(settings.effective_database_url)
    try:
        from goldloop.store.schema import runs

        ws = db.read(lambda c: c.execute(runs.select().limit(1)).first())
        assert ws is not None
        return db.read(lambda c: run_rows.rows_by_trace(c, ws.workspace_id, trace_id))
    finally:
        db.engine.dispose()


def _emit(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("support-bot", "2.1")
    with tracer.start_as_current_span("invoke_agent support") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", "support")
        agent.set_attribute("gen_ai.conversation.id", "conv-7")
        with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.provider.name", "openai")
            llm.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            llm.set_attribute("gen_ai.usage.input_tokens", 120)
            llm.set_attribute("gen_ai.usage.output_tokens", 8)
            llm.set_attribute("gen_ai.request.stop_sequences", ["\n\n", "END"])
            llm.set_attribute(
                "gen_ai.input.messages",
                '[{"role":"user","parts":[{"type":"text","content":"refund?"}]}]',
            )
        with tracer.start_as_current_span("execute_tool lookup_order") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "lookup_order")
            tool.set_attribute("gen_ai.tool.call.arguments", '{"order": 42}')
            tool.record_exception(KeyError("order 42"))
            tool.set_status(Status(StatusCode.ERROR, "no such order"))


def _send(exporter: Any, service: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _emit(provider)
    assert provider.force_flush(30_000)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _check_landed(base: str, key: str, sent: list[ReadableSpan]) -> list[dict[str, Any]]:
    """Read the trace back through the query API and compare it with what the SDK recorded."""
    trace_hex = format(sent[0].context.trace_id, "032x")
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as c:
        answer = c.get(f"/api/v1/traces/{trace_hex}")
    assert answer.status_code == 200, answer.text
    runs = {r["id"]: r for r in answer.json()["runs"]}
    assert len(runs) == len(sent) == 3
    for s in sent:
        run = runs[format(s.context.span_id, "016x")]
        parent = format(s.parent.span_id, "016x") if s.parent else None
        assert run["parent_id"] == parent
        assert run["name"] == s.name
        assert run["start_time"] == s.start_time // 1000  # type: ignore[operator]
        assert run["end_time"] == s.end_time // 1000  # type: ignore[operator]
        attrs = {k: _plain(v) for k, v in (s.attributes or {}).items()}
        otel = run["extra"]["otel"]
        assert restore_content(otel["attributes"], otel.get("moved", {}), run) == attrs
        assert otel["scope"]["name"] == "support-bot"
    by_name = {r["name"]: r for r in runs.values()}
    agent, llm, tool = (
        by_name["invoke_agent support"],
        by_name["chat gpt-4o-mini"],
        by_name["execute_tool lookup_order"],
    )
    assert (agent["kind"], llm["kind"], tool["kind"]) == ("agent", "llm", "tool")
    assert agent["session_id"] == "conv-7"
    assert llm["usage"]["total_tokens"] == 128
    assert llm["cost"] is not None
    assert tool["status"] == "error"
    assert tool["error"]["type"] == "KeyError"
    assert tool["error"]["message"] == "no such order"
    return list(runs.values())


def _comparable(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    skip = {"seq", "id", "trace_id", "parent_id", "start_time", "end_time", "latency_ms"}
    skip |= {"start_time_iso", "end_time_iso", "project_id", "extra", "children"}
    out = []
    for r in sorted(runs, key=lambda r: r["name"]):
        item = {k: v for k, v in r.items() if k not in skip}
        otel = dict(r["extra"]["otel"])
        otel.pop("events", None)  # exception events carry timestamps
        otel["resource"] = {k: v for k, v in otel["resource"].items() if k not in ("service.name",)}
        item["otel"] = otel
        if item["error"]:
            item["error"] = {k: v for k, v in item["error"].items() if k != "stacktrace"}
        out.append(item)
    return out


def test_unmodified_sdk_exporters_protobuf_and_json(
    served: tuple[subprocess.Popen[str], str, str, Settings],
) -> None:
    _, base, key, _ = served
    proto = ProtoSpanExporter(endpoint=f"{base}/v1/traces", headers={"x-api-key": key})
    sent_pb = _send(proto, "svc-proto")
    json_exporter = JsonSpanExporter(
        endpoint=f"{base}/v1/traces", headers={"authorization": f"Bearer {key}"}
    )
    sent_js = _send(json_exporter, "svc-json")
    from_pb = _check_landed(base, key, sent_pb)
    from_js = _check_landed(base, key, sent_js)
    assert _comparable(from_pb) == _comparable(from_js)


def test_sigkill_during_ingestion_loses_nothing_acknowledged(
    served: tuple[subprocess.Popen[str], str, str, Settings],
) -> None:
    proc, base, key, settings = served
    acknowledged: list[str] = []
    enough = threading.Event()
    stop = threading.Event()

    def client(worker: int) -> None:
        n = 0
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=10) as c:
            while not stop.is_set():
                ids = [f"k{worker}-{n}-{i}" for i in range(50)]
                n += 1
                runs = [
                    {"id": i, "trace_id": "kill-trace", "name": "x", "inputs": {"p": "y" * 300}}
                    for i in ids
                ]
                try:
                    r = c.post("/api/v1/runs/batch", json={"runs": runs})
                except httpx.TransportError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 202:
                    acknowledged.extend(ids)
                    if len(acknowledged) >= 2000:
                        enough.set()

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    assert enough.wait(120), "the server acknowledged too little"
    proc.send_signal(signal.SIGKILL)  # requests are in flight right now
    proc.communicate(timeout=10)
    stop.set()
    for t in threads:
        t.join(30)
    extra = ["--database-url", settings.database_url] if settings.database_url else []
    proc2, _ = start_server(settings.data_dir, *extra)
    try:
        stored = {r["id"] for r in _rows_of_workspace(settings, "kill-trace")}
    finally:
        proc2.send_signal(signal.SIGTERM)
        proc2.communicate(timeout=30)
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged runs lost, e.g. {sorted(missing)[:3]}"
    assert len(stored) >= len(acknowledged)


def test_cli_export_then_import_restores_a_deleted_project(
    served: tuple[subprocess.Popen[str], str, str, Settings], tmp_path: Path
) -> None:
    from test_trace_export import NATIVE_TRACE, native_runs

    _, base, key, settings = served
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as c:
        assert (
            c.post("/api/v1/runs/batch", json={"project": "src", "runs": native_runs()}).status_code
            == 202
        )
    before = _rows_of_workspace(settings, NATIVE_TRACE)
    out = tmp_path / "src.otlp.jsonl"

    def cli(*args: str, via_env: bool = False) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": SRC}
        connection = ["--endpoint", base, "--api-key", key]
        if via_env:  # the same variables as the SDK and the other remote commands
            env.update(GOLDLOOP_ENDPOINT=base, GOLDLOOP_API_KEY=key)
            connection = []
        return subprocess.run(
            [sys.executable, "-m", "goldloop", "traces", *args, *connection],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    exported = cli("export", "--project", "src", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_bytes().count(b"\n") == 1
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as c:
        pid = c.get("/api/v1/projects", params={"name": "src"}).json()["items"][0]["id"]
        assert c.delete(f"/api/v1/projects/{pid}").json()["runs_deleted"] == 4
    imported = cli("import", str(out), via_env=True)
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 batches (0 spans rejected)" in imported.stderr
    after = _rows_of_workspace(settings, NATIVE_TRACE)
    volatile = ("pk", "seq", "created_at", "updated_at", "project_id")
    assert [{k: v for k, v in r.items() if k not in volatile} for r in after] == [
        {k: v for k, v in r.items() if k not in volatile} for r in before
    ]
    missing = cli("export", "--project", "nope")
    assert missing.returncode == 1
    assert "export failed: 404: no project with id or name 'nope'" in missing.stderr

    errors = tmp_path / "errors.jsonl"
    whole = cli(
        "export",
        "--project",
        "src",
        "--filter",
        'status = "error"',
        "--whole-traces",
        "-o",
        str(errors),
    )
    assert whole.returncode == 0, whole.stderr
    assert "exported 1 batches of runs matching 'status = \"error\"'" in whole.stderr
    assert errors.read_bytes().count(b'"spanId"') == 4  # the tool error's whole trace
    bad = tmp_path / "bad.jsonl"
    invalid = cli("export", "--project", "src", "--filter", "latency > 2", "-o", str(bad))
    assert invalid.returncode == 1
    assert "export failed: 400:" in invalid.stderr
    assert not bad.exists()  # refused before the file was made


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if stat[0] != "Z":  # a zombie has exited
                parents.setdefault(int(stat[1]), []).append(int(d.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo += parents.get(p, [])
    return found


def test_sigkill_with_ingest_workers_loses_nothing_and_leaves_no_process(
    served: tuple[subprocess.Popen[str], str, str, Settings],
) -> None:
    """OTLP through the ingest worker processes (the default), then SIGKILL: every
    acknowledged span is stored, and the workers do not outlive the server."""
    from otlp_builders import request, span

    proc, base, key, settings = served
    acknowledged: list[str] = []
    workers: list[int] = []
    stop = threading.Event()

    def client(worker: int) -> None:
        n = 0
        headers = {"x-api-key": key, "content-type": "application/x-protobuf"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as c:
            while not stop.is_set():
                ids = [f"{worker + 1:04x}{n:06x}{i:06x}" for i in range(50)]  # never all zero
                n += 1
                body = request(
                    [span("7" * 32, i, None, "x", {"input.value": "y" * 300}) for i in ids]
                ).SerializeToString()
                try:
                    r = c.post("/v1/traces", content=body)
                except httpx.TransportError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 200:
                    acknowledged.extend(ids)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60  # the pool starts on the first OTLP request
        while time.monotonic() < deadline and not workers:
            time.sleep(0.2)
            workers = [
                p
                for p in _descendants(proc.pid)
                if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
            ]
        assert workers, "no ingest worker process started"
        time.sleep(1.0)  # requests decoded by the workers are in flight now
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.1)
    alive = [p for p in workers if Path(f"/proc/{p}").exists()]
    assert not alive, f"ingest workers {alive} outlived the server"
    extra = ["--database-url", settings.database_url] if settings.database_url else []
    proc2, _ = start_server(settings.data_dir, *extra)
    try:
        stored = {r["id"] for r in _rows_of_workspace(settings, "7" * 32)}
    finally:
        proc2.send_signal(signal.SIGTERM)
        proc2.communicate(timeout=30)
    assert len(acknowledged) >= 50, "nothing was acknowledged before the kill"
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged spans lost, e.g. {sorted(missing)[:3]}"
