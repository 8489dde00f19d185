"""Logs as JSON lines: `goldloop serve --log-format json` as a real process, its stderr read
line by line; and the mask that keeps keys and secrets out of every log line."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

import goldloop
from goldloop import log_format

SRC = str(Path(goldloop.__file__).resolve().parents[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_writes_one_json_object_per_line_with_request_ids_and_no_keys(
    tmp_path: Path,
) -> None:
    port = free_port()
    err_path, out_path = tmp_path / "stderr.log", tmp_path / "stdout.log"
    env = {**os.environ, "PYTHONPATH": SRC, "GOLDLOOP_LOG_FORMAT": "json"}
    with err_path.open("w") as err, out_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "goldloop", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data"), "--ingest-processes", "0"],
            stdout=out, stderr=err, env=env, text=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, err_path.read_text()
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
            key = (tmp_path / "data" / "admin-key").read_text().strip()
            with httpx.Client(base_url=base) as client:
                ok = client.get(
                    "/api/v1/projects", headers={"x-api-key": key, "x-request-id": "req-42.a"}
                )
                assert ok.status_code == 200
                assert ok.headers["x-request-id"] == "req-42.a"
                # a key where it does not belong: the query string, a wrong key, a bearer
                leaked = client.get("/api/v1/projects", params={"api_key": key})
                assert leaked.status_code == 401
                wrong = "gl_wrong-key-that-must-not-be-logged"
                assert client.get("/metrics", headers={"x-api-key": wrong}).status_code == 401
                bearer = client.get("/api/v1/projects", headers={"authorization": f"Bearer {key}"})
                assert bearer.status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    text = err_path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records
    for record in records:
        assert {"ts", "level", "logger", "message"} <= set(record)
        assert datetime.fromisoformat(record["ts"]).tzinfo is not None
    ours = [r for r in records if r.get("request_id") == "req-42.a"]
    assert len(ours) == 1
    assert ours[0]["route"] == "/api/v1/projects"
    assert ours[0]["status"] == 200
    assert ours[0]["method"] == "GET"
    assert isinstance(ours[0]["duration_ms"], float | int)
    assert ours[0]["duration_ms"] >= 0
    assert all(
        len(r["request_id"]) == 32 for r in records if "request_id" in r and r is not ours[0]
    )
    assert key not in text
    assert wrong not in text
    assert key in out_path.read_text()  # only the one-time banner on stdout has it


def test_keys_and_secrets_are_masked_in_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log_format.JsonFormatter())
    handler.addFilter(log_format.SecretMask())
    logger = logging.getLogger("goldloop.test_json_logs")
    logger.addHandler(handler)
    logger.propagate = False
    key, whsec = "gl_Secret_Key_0123456789abcdef", "whsec_S3cret_s1gning_0123456789"
    try:
        logger.warning("calling with %s and Bearer %s", f"api_key={key}", key)
        try:
            raise ValueError(f"refused {whsec} password=hunter2-long")
        except ValueError:
            logger.exception("delivery failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    for secret in (key, whsec, "hunter2-long", "Secret_Key", "S3cret"):
        assert secret not in text
    first, second = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    assert first["message"] == "calling with api_key=*** and Bearer ***"
    assert "ValueError: refused whsec_*** password=***" in second["exception"]


def test_the_text_format_is_one_readable_line_with_the_request_id() -> None:
    record = logging.LogRecord(
        "goldloop.http", logging.INFO, __file__, 1, "%s %s %d", ("GET", "/x", 200), None
    )
    record.request_id, record.route, record.status = "req-1", "/x", 200
    line = log_format.TextFormatter().format(record)
    assert "\n" not in line
    assert line.endswith(" INFO goldloop.http GET /x 200 route=/x request_id=req-1")
    assert datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).tzinfo
