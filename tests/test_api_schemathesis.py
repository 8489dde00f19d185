"""The standing schema check of issue 22: schemathesis against the real server, both backends.

A bounded run (a fixed seed, a few examples per operation, a time budget) of generated requests
with the admin key over every operation of the OpenAPI schema, on a live server on 127.0.0.1.
It fails on any 5xx, on a status code the schema does not list for the operation, and on a
response whose body or content type does not match what the schema says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from goldloop.settings import Settings
from live_api import live_api

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_SECONDS = 45  # per backend; CI's budget holds two of these
EXAMPLES = 3  # per operation and phase


def test_generated_requests_get_no_5xx_and_conforming_answers(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_api(settings) as live:
        capsys.readouterr()  # the bootstrap banner
        done = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{live.endpoint}/api/v1/openapi.json",
                *("--header", f"x-api-key: {live.key}"),
                *("--checks", CHECKS),
                *("--max-examples", str(EXAMPLES)),
                *("--max-time", str(MAX_SECONDS)),
                *("--seed", "22"),
                *("--generation-database", "none"),  # no example store: every run the same
                *("--request-timeout", "20"),
                *("--workers", "1"),
                "--no-color",
                *("--report-dir", str(tmp_path / "reports")),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
            cwd=tmp_path,  # it writes nothing into the checkout
            timeout=MAX_SECONDS + 120,
        )
    summary = done.stdout[-12000:]
    assert done.returncode == 0, f"schemathesis found failures:\n{summary}\n{done.stderr[-2000:]}"
