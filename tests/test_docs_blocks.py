"""Every code block in README.md and docs/*.md runs, or says why it cannot.

The convention (also for whoever writes a new page):

- Every fenced block has a language. ``python``, ``sh`` and ``bash`` blocks are **run**;
  ``json``, ``text``, ``yaml``, ``nginx``, ``toml`` and ``ini`` blocks are data or output shown
  to the reader and are not run. A block with no language, or another one, fails this test.
- A block that cannot run (it installs packages, starts a server in the foreground, needs
  PostgreSQL or another service, is a fragment with ``...`` or a synopsis with ``[OPTIONS]``)
  is preceded by an HTML comment giving the reason, which the rendered page does not show::

      <!-- docs-test: skip (starts the server in the foreground) -->

  When the reason names a test file (``run by tests/test_x.py``), that file must exist.
- The runnable blocks of one page run in order, as one ``bash`` session (``set -euo
  pipefail``; a ``python`` block is piped to ``python -``), so an ``export`` or a variable from
  one block is there in the next, as for a reader following the page in one terminal. Each page
  gets a fresh server (the real app on 127.0.0.1, SQLite) whose data directory is
  ``./.goldloop`` of the session's working directory, as after the quickstart; the session
  starts with ``GOLDLOOP_ENDPOINT``, ``GOLDLOOP_API_KEY`` and ``KEY`` (the admin key) set.
  A page that reads data without creating it first gets it from a setup in ``SETUPS``
  (named after the page), and ``CHECKS`` can check a page's outcome through the API.
- Before running, ``http://127.0.0.1:8700`` and ``localhost:8700`` become the test server's
  address, ``.venv/bin/`` is dropped, and the key placeholders ``gl_...``/``gl_…`` become the
  admin key. ``goldloop`` runs this checkout's CLI; ``curl`` fails on an HTTP error status
  (``--fail-with-body``), so a block whose request the server refuses fails the test.

A failure names the page and the line of the block that failed, with the session's output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from goldloop.settings import load_settings
from live_api import LiveApi, live_api

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# Generated from the code (and checked current by tests/test_reference_docs.py and
# tests/test_settings.py); their blocks are --help texts.
GENERATED = {"cli.md", "api-reference.md", "configuration.md"}
RUN = {"python", "sh", "bash"}
DATA = {"json", "text", "yaml", "nginx", "toml", "ini"}
PAGE_TIMEOUT_S = 120

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"<!--\s*docs-test:(.*?)-->")
_SKIP = re.compile(r"^\s*skip\s*\((.+)\)\s*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the reason, when marked
    marker_error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in GENERATED)
    return [ROOT / "README.md", *docs]


def blocks(path: Path) -> list[Block]:
    lines = path.read_text().split("\n")
    name = str(path.relative_to(ROOT))
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        skip, error = _marker_above(lines, i)
        code = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(name, i + 1, fence.group(1), code, skip, error))
        i = end + 1
    return found


def _marker_above(lines: list[str], fence: int) -> tuple[str | None, str | None]:
    """The skip reason from the HTML comments right above a fence (blank lines allowed)."""
    k = fence - 1
    while k >= 0 and (not lines[k].strip() or lines[k].strip().startswith("<!--")):
        marker = _MARKER.search(lines[k])
        if marker:
            skip = _SKIP.match(marker.group(1))
            if not skip:
                return None, f"unreadable marker {lines[k].strip()!r}"
            return skip.group(1).strip(), None
        k -= 1
    return None, None


ALL = [b for p in pages() for b in blocks(p)]


def test_every_block_is_run_or_says_why_not() -> None:
    problems = []
    for b in ALL:
        if b.marker_error:
            problems.append(f"{b.where}: {b.marker_error}")
        elif not b.lang:
            problems.append(f"{b.where}: a block needs a language (`text` for output)")
        elif b.lang not in RUN | DATA:
            problems.append(f"{b.where}: language {b.lang!r} is neither run nor data")
        elif b.skip is not None and b.lang in DATA:
            problems.append(f"{b.where}: a {b.lang} block is never run; drop the marker")
        if b.skip is not None:
            for test_file in re.findall(r"tests/[\w/]+\.py", b.skip):
                if not (ROOT / test_file).exists():
                    problems.append(f"{b.where}: the reason names {test_file}, which is missing")
    assert not problems, "\n".join(problems)
    assert sum(1 for b in ALL if b.lang in RUN and b.skip is None) >= 20


def _runnable_pages() -> list[str]:
    return sorted({b.page for b in ALL if b.lang in RUN and b.skip is None})


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[LiveApi, Path]]:
    work = tmp_path / "work"
    work.mkdir()
    settings = load_settings(
        {"data_dir": work / ".goldloop", "workers_in_process": False}, environ={}
    )
    with live_api(settings) as api:
        yield api, work


def _bin_dir(tmp: Path) -> Path:
    """``goldloop``, ``python`` and ``python3`` of this checkout, first on PATH."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, args in (("goldloop", "-m goldloop "), ("python", ""), ("python3", "")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args}"$@"\n')
        shim.chmod(0o755)
    return bin_dir


def _substitute(code: str, api: LiveApi) -> str:
    hostport = api.endpoint.removeprefix("http://")
    code = code.replace("http://127.0.0.1:8700", api.endpoint)
    code = code.replace("localhost:8700", hostport).replace("127.0.0.1:8700", hostport)
    code = code.replace(".venv/bin/", "")
    return code.replace("gl_...", api.key).replace("gl_…", api.key)


def _script(page_blocks: list[Block], api: LiveApi) -> str:
    parts = [
        "set -euo pipefail",
        'curl() { command curl --fail-with-body --max-time 60 "$@"; }',
    ]
    for n, b in enumerate(page_blocks):
        code = _substitute(b.code, api)
        parts.append(f"echo '>>> block {b.where}' >&2")
        if b.lang == "python":
            delimiter = f"GOLDLOOP_DOCS_PY_{n}"
            parts.append(f"python - <<'{delimiter}'\n{code}{delimiter}")
        else:
            parts.append(code)
        parts.append("echo >&2")
    parts.append("echo '>>> done' >&2")
    return "\n".join(parts) + "\n"


def run_page(page: str, api: LiveApi, work: Path) -> subprocess.CompletedProcess[str]:
    page_blocks = [b for b in ALL if b.page == page and b.lang in RUN and b.skip is None]
    env = {
        **os.environ,
        "PATH": f"{_bin_dir(work.parent)}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(SRC),
        "GOLDLOOP_ENDPOINT": api.endpoint,
        "GOLDLOOP_API_KEY": api.key,
        "KEY": api.key,
    }
    for name in ("GOLDLOOP_DATA_DIR", "GOLDLOOP_DATABASE_URL", "GOLDLOOP_TRACING"):
        env.pop(name, None)
    return subprocess.run(
        ["bash"],
        input=_script(page_blocks, api),
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=PAGE_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("page", _runnable_pages())
def test_page_blocks_run(page: str, session: tuple[LiveApi, Path]) -> None:
    api, work = session
    SETUPS.get(page, lambda api: None)(api)
    done = run_page(page, api, work)
    if done.returncode != 0:
        started = re.findall(r"^>>> block (\S+)$", done.stderr, flags=re.M)
        failed = started[-1] if started else "?"
        pytest.fail(
            f"the block at {failed} failed (exit {done.returncode})\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
    assert done.stderr.rstrip().endswith(">>> done")
    CHECKS.get(page, lambda api: None)(api)


def _quickstart_outcome(api: LiveApi) -> None:
    """The quickstart's trace was stored as a tree, and its correction became an example."""
    with httpx.Client(base_url=api.endpoint, headers={"x-api-key": api.key}, timeout=60) as c:
        runs = c.get("/api/v1/runs", params={"project": "agent-support", "filter": ""}).json()
        by_name = {r["name"]: r for r in runs["items"]}
        assert set(by_name) == {"answer", "lookup_rate"}
        assert by_name["lookup_rate"]["parent_id"] == by_name["answer"]["id"]
        examples = c.get("/api/v1/datasets/support-golden/examples").json()["items"]
    assert len(examples) == 1
    assert examples[0]["outputs"]["answer"].startswith("This rate is non-refundable")
    assert examples[0]["lineage"]["run_id"] == by_name["answer"]["id"]


def _agent_support_traffic(api: LiveApi) -> None:
    """A page that reads runs without sending any first gets a trace in agent-support."""
    runs = [
        {"id": "r1", "trace_id": "t1", "name": "answer", "kind": "agent",
         "start_time": "2026-11-26T10:00:00Z", "end_time": "2026-11-26T10:00:03Z",
         "inputs": {"question": "Can I cancel?"}, "outputs": {"answer": "No refund."}},
        {"id": "r2", "trace_id": "t1", "parent_id": "r1", "name": "chat", "kind": "llm",
         "start_time": "2026-11-26T10:00:00Z", "end_time": "2026-11-26T10:00:02.5Z",
         "tags": ["prod"]},
    ]  # fmt: skip
    with httpx.Client(base_url=api.endpoint, headers={"x-api-key": api.key}, timeout=60) as c:
        sent = c.post("/api/v1/runs/batch", json={"project": "agent-support", "runs": runs})
    assert sent.status_code == 202, sent.text


def _otel_program_landed(api: LiveApi) -> None:
    """docs/ingestion.md's OpenTelemetry program: an agent run and its LLM call, with tokens."""
    with httpx.Client(base_url=api.endpoint, headers={"x-api-key": api.key}, timeout=60) as c:
        runs = c.get(
            "/api/v1/runs", params={"project": "agent-support", "filter": 'kind = "llm"'}
        ).json()["items"]
        llm = next(r for r in runs if r["name"] == "chat gpt-4o-mini")
        assert llm["model"] == "gpt-4o-mini"
        assert llm["usage"]["total_tokens"] == 145
        parent = c.get(f"/api/v1/runs/{llm['parent_id']}").json()
    assert (parent["name"], parent["kind"]) == ("answer", "agent")


def test_pages_name_only_files_that_exist() -> None:
    """A relative link, or a FILE.md named in code, points at a file of this repository."""
    missing = []
    for page in pages():
        text = page.read_text()
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.name}: link to {target}")
        for name in re.findall(r"`([A-Z][A-Z_]+\.md)`", text):
            if not (ROOT / name).exists():
                missing.append(f"{page.name}: names {name}")
    assert not missing, "\n".join(missing)


CHECKS = {"docs/quickstart.md": _quickstart_outcome, "docs/ingestion.md": _otel_program_landed}
SETUPS = {"docs/query-api.md": _agent_support_traffic}
