"""The SDK's public surface: `__all__`, light imports, documented environment variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import goldloop
from goldloop.sdk.config import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
SRC = str(ROOT / "src")
SDK_DOC = ROOT / "docs" / "sdk.md"

PUBLIC = {
    "ApiError",
    "Client",
    "ConfigError",
    "ContextThreadPoolExecutor",
    "Run",
    "SDKConfig",
    "__version__",
    "aevaluate",
    "configure",
    "context",
    "continue_trace",
    "copy_context_wrapper",
    "evaluate",
    "exporter_stats",
    "flush",
    "get_current_run",
    "inject_headers",
    "shutdown",
    "trace",
    "traced",
    "wrap_openai",
}


def test_all_is_the_public_api() -> None:
    assert set(goldloop.__all__) == PUBLIC
    for name in goldloop.__all__:
        assert getattr(goldloop, name) is not None
    public_attrs = {n for n in vars(goldloop) if not n.startswith("_")}
    # submodules show up as attributes once imported; everything else must be in __all__
    modules = {n for n in public_attrs if type(getattr(goldloop, n)).__name__ == "module"}
    assert public_attrs - modules <= PUBLIC | {"annotations"}


def test_import_goldloop_stays_light() -> None:
    code = (
        "import sys, json, goldloop\n"
        "bare = sorted(sys.modules)\n"
        "goldloop.configure(tracing=True, endpoint='http://127.0.0.1:9')\n"
        "@goldloop.traced\n"
        "def f(): return 1\n"
        "f()\n"
        "goldloop.shutdown(0.1)\n"
        "print(json.dumps([bare, sorted(sys.modules)]))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    bare, after = json.loads(out.stdout)
    # a bare import loads no third-party package at all (httpx itself pulls in click when
    # the server extra is installed, so it is imported only once tracing is turned on)
    assert not {m.split(".")[0] for m in bare} & {"httpx", "orjson", "click"}
    loaded = set(after)
    heavy = {"fastapi", "sqlalchemy", "starlette", "alembic", "psycopg", "uvicorn", "pydantic"}
    assert not {m.split(".")[0] for m in loaded} & heavy
    # only the SDK's own modules (goldloop.sdk.*) and the shared private ones (goldloop._*)
    beyond_sdk = {
        m
        for m in loaded
        if m.startswith(("goldloop.", "goldloop_"))
        and not (m.split(".")[1].startswith("_") or m.split(".")[1] == "sdk")
    }
    assert not beyond_sdk, beyond_sdk
    assert "openai" not in loaded  # the OpenAI wrapper imports nothing until used


def test_every_sdk_env_var_is_documented() -> None:
    text = SDK_DOC.read_text()
    for field, var, _kind, _default, _help in ENV_VARS:
        assert f"`{var}`" in text, f"{var} ({field}) is not documented in docs/sdk.md"
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS"):
        assert var in text
