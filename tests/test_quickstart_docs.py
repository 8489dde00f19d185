"""docs/quickstart.md's Python example runs as written against a real server, and its trace is
read back through the API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.test_serve import SRC, start_server

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"


def test_quickstart_trace_example_runs(tmp_path: Path) -> None:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    exports = dict(re.findall(r"^export (GOLDLOOP_\w+)=(\S+)", text, flags=re.M))
    assert set(exports) == {
        "GOLDLOOP_TRACING",
        "GOLDLOOP_ENDPOINT",
        "GOLDLOOP_API_KEY",
        "GOLDLOOP_PROJECT",
    }
    data_dir = tmp_path / "data"
    server, base = start_server(data_dir)
    try:
        key = (data_dir / "admin-key").read_text().strip()
        env = {**os.environ, **exports, "PYTHONPATH": SRC}
        env.update(GOLDLOOP_ENDPOINT=base, GOLDLOOP_API_KEY=key)
        script = tmp_path / "quickstart.py"
        script.write_text(blocks[0])
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=60) as api:
            runs = api.get(
                "/api/v1/runs", params={"project": exports["GOLDLOOP_PROJECT"], "filter": ""}
            ).json()["items"]
        by_name = {r["name"]: r for r in runs}
        assert set(by_name) == {"answer", "lookup_rate"}
        assert by_name["lookup_rate"]["parent_id"] == by_name["answer"]["id"]
        assert "cannot be refunded" in by_name["answer"]["outputs"]["answer"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
