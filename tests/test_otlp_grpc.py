"""OTLP over gRPC: the stock OpenTelemetry SDK and its stock gRPC exporter against a real server
on 127.0.0.1 (uvicorn for HTTP and the gRPC receiver on an ephemeral port), on both backends."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from goldloop.http.app import create_app
from goldloop.http.otlp_grpc import EXPORT_TRACES, OtlpGrpcReceiver
from goldloop.services import auth
from goldloop.settings import Settings, SettingsError, load_settings
from live_api import serve_app
from otlp_builders import request, span
from test_ingest_processes import _check_landed, _comparable, _send
from test_serve import SRC, free_port, start_server

pytestmark = pytest.mark.slow

TRACE = "5b8efff798038103d269b633813fc60c"


@dataclass(frozen=True)
class Live:
    base: str
    key: str
    grpc_target: str
    app: FastAPI

    @property
    def receiver(self) -> OtlpGrpcReceiver:
        receiver: OtlpGrpcReceiver = self.app.state.otlp_grpc
        return receiver


@contextmanager
def serving(settings: Settings) -> Iterator[Live]:
    """The app on real sockets: HTTP from uvicorn, gRPC from its own receiver (port 0)."""
    app = create_app(dataclasses.replace(settings, otlp_grpc=True, otlp_grpc_port=0))
    with serve_app(app, settings) as api:
        yield Live(api.endpoint, api.key, f"127.0.0.1:{app.state.otlp_grpc.port}", app)


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with serving(settings) as running:
        yield running


def _raw_call(
    target: str, body: bytes, metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[Any, str, dict[str, Any]]:
    """One Export call with these exact bytes: (status code, details, trailing metadata)."""
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary(EXPORT_TRACES)
        try:
            answer, call = export.with_call(body, metadata=metadata, timeout=30)
        except grpc.RpcError as err:
            return err.code(), err.details(), dict(err.trailing_metadata() or ())
        assert answer == b""  # an empty ExportTraceServiceResponse: nothing rejected
        return call.code(), call.details(), dict(call.trailing_metadata() or ())


def _one_span_request(trace: str = TRACE, size: int = 10) -> bytes:
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "x" * size}
    one = span(trace, "a1a2a3a4a5a6a7a8", None, "chat", attrs)
    return bytes(request([one]).SerializeToString())


def _trace_status(live: Live, key: str, trace: str = TRACE) -> int:
    with httpx.Client(base_url=live.base, headers={"x-api-key": key}, timeout=30) as c:
        return c.get(f"/api/v1/traces/{trace}").status_code


def _grpc_exporter(live: Live, headers: dict[str, str]) -> GrpcSpanExporter:
    return GrpcSpanExporter(endpoint=live.grpc_target, insecure=True, headers=headers)


def test_stock_grpc_exporter_lands_spans_as_http_does(live: Live) -> None:
    """One trace sent through the stock gRPC exporter and the stock HTTP exporter (both with
    BatchSpanProcessor defaults) is stored alike."""
    sent_grpc = _send(_grpc_exporter(live, {"x-api-key": live.key}), "svc-grpc")
    http = HttpSpanExporter(endpoint=f"{live.base}/v1/traces", headers={"x-api-key": live.key})
    sent_http = _send(http, "svc-http")
    from_grpc = _check_landed(live.base, live.key, sent_grpc)
    from_http = _check_landed(live.base, live.key, sent_http)
    assert _comparable(from_grpc) == _comparable(from_http)
    with httpx.Client(base_url=live.base, headers={"x-api-key": live.key}) as c:
        names = {p["name"] for p in c.get("/api/v1/projects").json()["items"]}
    assert {"svc-grpc", "svc-http"} <= names  # project from service.name, as over HTTP


def test_bearer_key_and_project_metadata(live: Live) -> None:
    """``authorization: Bearer`` is accepted, and ``x-goldloop-project`` picks the project."""
    headers = {"authorization": f"Bearer {live.key}", "x-goldloop-project": "chosen"}
    sent = _send(_grpc_exporter(live, headers), "svc-ignored")
    runs = _check_landed(live.base, live.key, sent)
    with httpx.Client(base_url=live.base, headers={"x-api-key": live.key}) as c:
        projects = {p["id"]: p["name"] for p in c.get("/api/v1/projects").json()["items"]}
    assert {projects[r["project_id"]] for r in runs} == {"chosen"}


def test_wrong_key_is_refused_before_decoding_and_nothing_is_stored(live: Live) -> None:
    for metadata in ((("x-api-key", "gl_not-a-key"),), (("authorization", "Bearer nope"),), ()):
        code, details, _ = _raw_call(live.grpc_target, _one_span_request(), metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED, details
        # garbage with a bad key: the key is checked first, the bytes never decoded
        code, _, _ = _raw_call(live.grpc_target, b"\xff\xff\xff\xff", metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED
    assert _trace_status(live, live.key) == 404
    assert live.receiver.refused["unauthenticated"] == 6
    # the stock exporter with a wrong key: its export fails (not retried) and nothing lands
    exporter = _grpc_exporter(live, {"x-api-key": "gl_wrong"})
    provider = TracerProvider(resource=Resource.create({"service.name": "intruder"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("refused") as s:
        trace_hex = format(s.get_span_context().trace_id, "032x")
    provider.force_flush(30_000)
    provider.shutdown()
    assert live.receiver.refused["unauthenticated"] == 7
    assert _trace_status(live, live.key, trace_hex) == 404


def test_oversize_message_is_refused(settings: Settings) -> None:
    with serving(dataclasses.replace(settings, max_request_bytes=64 * 1024)) as live:
        key = (("x-api-key", live.key),)
        code, details, _ = _raw_call(live.grpc_target, _one_span_request(size=100_000), key)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
        # the limit is on the decompressed message: 200 KB of gzip in ~0.5 KB is refused too
        gzip = grpc.Compression.Gzip
        with (
            grpc.insecure_channel(live.grpc_target, compression=gzip) as gz,
            pytest.raises(grpc.RpcError) as bomb,
        ):
            gz.unary_unary(EXPORT_TRACES)(_one_span_request(size=200_000), metadata=key, timeout=30)
        assert bomb.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _trace_status(live, live.key) == 404
        code, details, _ = _raw_call(live.grpc_target, _one_span_request(size=1000), key)
        assert code == grpc.StatusCode.OK, details
        assert _trace_status(live, live.key) == 200


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\x0a\xff", b"not protobuf at all" * 10],
)
def test_garbage_bytes_get_invalid_argument(live: Live, garbage: bytes) -> None:
    key = (("x-api-key", live.key),)
    code, details, _ = _raw_call(live.grpc_target, garbage, key)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert live.receiver.refused["invalid"] == 1
    # the receiver goes on serving
    code, details, _ = _raw_call(live.grpc_target, _one_span_request(), key)
    assert code == grpc.StatusCode.OK, details


def test_rejected_spans_are_reported_as_partial_success(live: Live) -> None:
    """As over HTTP: a span with an all-zero id is rejected, the rest stored, and the answer
    counts and names the rejected one."""
    good = span(TRACE, "a1a2a3a4a5a6a7a8", None, "kept", {})
    bad = span(TRACE, "0" * 16, None, "dropped", {})
    with grpc.insecure_channel(live.grpc_target) as channel:
        answer = channel.unary_unary(EXPORT_TRACES)(
            request([good, bad]).SerializeToString(),
            metadata=(("x-api-key", live.key),),
            timeout=30,
        )
    response = ExportTraceServiceResponse.FromString(answer)
    assert response.partial_success.rejected_spans == 1
    assert "span" in response.partial_success.error_message
    assert _trace_status(live, live.key) == 200


def test_workspaces_are_isolated(live: Live) -> None:
    ctx = live.app.state.ctx
    other = auth.create_key(ctx, auth.create_workspace(ctx, "other").id, "ingest").secret
    code, details, _ = _raw_call(live.grpc_target, _one_span_request(), (("x-api-key", other),))
    assert code == grpc.StatusCode.OK, details
    assert _trace_status(live, other) == 200
    assert _trace_status(live, live.key) == 404  # the default workspace sees nothing of it


def _held_call(target: str, key: str, release: threading.Event) -> tuple[Any, Any]:
    """A call that takes its slot and then sends its message only once ``release`` is set."""
    channel = grpc.insecure_channel(target)

    def messages() -> Iterator[bytes]:
        release.wait(60)
        yield _one_span_request("0" * 31 + "1")

    future = channel.stream_unary(EXPORT_TRACES).future(messages(), metadata=(("x-api-key", key),))
    return channel, future


def _wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_overload_answers_resource_exhausted_with_retry_info_and_the_exporter_retries(
    settings: Settings,
) -> None:
    with serving(dataclasses.replace(settings, ingest_max_inflight=1)) as live:
        release = threading.Event()
        channel, held = _held_call(live.grpc_target, live.key, release)
        _wait_for(lambda: live.receiver.inflight == 1, "the held call took no slot")
        code, _, trailers = _raw_call(
            live.grpc_target, _one_span_request(), (("x-api-key", live.key),)
        )
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert trailers["google.rpc.retryinfo-bin"] == b"\x0a\x02\x08\x01"  # retry_delay 1 s
        assert b"google.rpc.RetryInfo" in trailers["grpc-status-details-bin"]
        # the stock exporter meets the same refusal, waits as told and retries
        sent: list[Any] = []
        exporting = threading.Thread(
            target=lambda: sent.extend(
                _send(_grpc_exporter(live, {"x-api-key": live.key}), "svc-retry")
            )
        )
        exporting.start()
        _wait_for(lambda: live.receiver.refused["overloaded"] >= 2, "the exporter was not refused")
        release.set()
        assert held.result(timeout=30) == b""
        exporting.join(60)
        _check_landed(live.base, live.key, sent)
        channel.close()


def test_a_stalled_call_is_cancelled_at_its_deadline(settings: Settings) -> None:
    with serving(dataclasses.replace(settings, otlp_grpc_deadline_s=0.5)) as live:
        release = threading.Event()
        channel, held = _held_call(live.grpc_target, live.key, release)
        with pytest.raises(grpc.RpcError) as refused:
            held.result(timeout=30)
        assert refused.value.code() == grpc.StatusCode.CANCELLED
        assert live.receiver.refused["timeout"] == 1
        _wait_for(lambda: live.receiver.inflight == 0, "the slot was not given back")
        release.set()
        channel.close()


def test_settings_refuse_a_grpc_port_taken_by_the_server_itself() -> None:
    with pytest.raises(SettingsError, match="otlp_grpc_port"):
        load_settings({"otlp_grpc": True, "otlp_grpc_port": 8700}, environ={})
    with pytest.raises(SettingsError, match="otlp_grpc_deadline_s"):
        load_settings({"otlp_grpc_deadline_s": 0}, environ={})
    assert not load_settings({}, environ={}).otlp_grpc  # off unless asked for


def test_goldloop_serve_flag_starts_and_stops_the_receiver(tmp_path: Any) -> None:
    """``goldloop serve --otlp-grpc``: the banner names the port, the stock exporter lands spans,
    and a second server asking for the same port fails to start instead of sharing it."""
    grpc_port = str(free_port())
    proc, base = start_server(tmp_path / "one", "--otlp-grpc", "--otlp-grpc-port", grpc_port)
    try:
        key = (tmp_path / "one" / "admin-key").read_text().strip()
        exporter = GrpcSpanExporter(
            endpoint=f"127.0.0.1:{grpc_port}", insecure=True, headers={"x-api-key": key}
        )
        _check_landed(base, key, _send(exporter, "svc-serve"))
        second = subprocess.run(
            [
                *(sys.executable, "-m", "goldloop", "serve", "--port", str(free_port())),
                *("--data-dir", str(tmp_path / "two"), "--otlp-grpc", "--otlp-grpc-port"),
                grpc_port,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": SRC},
        )
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{grpc_port} (setting otlp_grpc_port)" in (
            second.stdout + second.stderr
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert f"OTLP/gRPC on 127.0.0.1:{grpc_port}" in output
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert _free(int(grpc_port))  # stopped with the server


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_redaction_applies_to_spans_over_grpc(live: Live) -> None:
    """A redacting workspace stores the placeholder whichever OTLP transport the span took."""
    email, card = "guest.name@example.com", "4111 1111 1111 1111"
    with httpx.Client(base_url=live.base, headers={"x-api-key": live.key}, timeout=30) as c:
        assert c.put("/api/v1/redaction", json={"builtins": "all"}).status_code == 200
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": f'[{{"role": "user", "content": "mail {email} card {card}"}}]',
        "guest.contact": email,
    }
    body = bytes(
        request([span(TRACE, "b1b2b3b4b5b6b7b8", None, "chat", attrs)]).SerializeToString()
    )
    code, details, _ = _raw_call(live.grpc_target, body, (("x-api-key", live.key),))
    assert code == grpc.StatusCode.OK, details
    with httpx.Client(base_url=live.base, headers={"x-api-key": live.key}, timeout=30) as c:
        stored = c.get(f"/api/v1/traces/{TRACE}").text
    assert email not in stored
    assert card not in stored
    assert "<EMAIL>" in stored
    assert "<CARD>" in stored
