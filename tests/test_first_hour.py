"""Issue 26's acceptance: the README's commands, then docs/quickstart.md's, in the order they are
written, in one shell, as a newcomer runs them: `goldloop serve` in "terminal 1" (in the
background here), the API tried with the key it saved, a second `goldloop demo` while that
server holds the port, then the first trace, its feedback and its golden example.

The virtualenv: the README's first command creates `.venv` and installs Goldloop into it. A
fresh install takes over a minute and needs the package index, so this test does not repeat
it: the clone's `.venv` is the virtualenv the suite runs in, which under `.ci/run` is the one
the README's own commands just created from scratch (`rm -rf .venv`, then the quickstart
commands verbatim). The install part of the serve block is therefore left out; everything else
runs as written, with `.venv/bin/...` paths and nothing of the virtualenv on PATH, so a block
that said plain `goldloop` or `python` would fail here as it did for the newcomer.

The port: 8700 in the pages becomes a free port, given to the server as GOLDLOOP_PORT (so
tests running in parallel never collide); the demo, which wants the same port, must find it
held and move to another, saying so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from live_api import LiveApi
from test_docs_blocks import ROOT, Block, _quickstart_outcome, blocks
from test_serve import free_port

pytestmark = pytest.mark.slow

WAIT_ROUNDS = 600  # x 0.5 s: the longest the script waits for the server or the demo


def _background(name: str, command: str, ready: str) -> str:
    """``command`` as in another terminal: in the background, its output in NAME.log, waited for
    until ``ready`` (a shell condition) holds or it exits."""
    return f"""
( {command} ) > {name}.log 2>&1 &
{name.upper()}_PID=$!
ok=0
for _ in $(seq 1 {WAIT_ROUNDS}); do
  if {ready}; then ok=1; break; fi
  kill -0 ${name.upper()}_PID 2>/dev/null || break
  sleep 0.5
done
if [ "$ok" != 1 ]; then cat {name}.log >&2; echo "{name} did not get ready" >&2; exit 1; fi
"""


def _step(b: Block, port: int) -> str:
    code = b.code.replace("127.0.0.1:8700", f"127.0.0.1:{port}")
    head = f"echo '>>> {b.where}' >&2\n"
    if "goldloop serve" in code:  # the install (see the module doc), then terminal 1
        serve = code.strip().split(" && ")[-1]
        assert serve == ".venv/bin/goldloop serve", serve
        ready = f"command curl -fsS http://127.0.0.1:{port}/readyz >/dev/null 2>&1"
        return head + _background("serve", serve, ready)
    if "goldloop demo" in code:  # terminal 2: up until Ctrl-C
        demo = code.strip()
        assert demo == ".venv/bin/goldloop demo", demo
        ready = "grep -q 'Ctrl-C to stop' demo.log"
        stop = 'kill -INT "$DEMO_PID"; wait "$DEMO_PID"\n'
        return head + _background("demo", demo, ready) + stop
    if b.lang == "python":  # as the page says: saved as first_trace.py, run with .venv's Python
        return head + f"cat > first_trace.py <<'PY'\n{code}PY\n.venv/bin/python first_trace.py\n"
    return head + code


def _page_steps(page: str, port: int) -> list[str]:
    steps = []
    for b in blocks(ROOT / page):
        if b.lang not in ("sh", "bash", "python"):
            continue
        if "pytest" in b.code:  # the suite itself: .ci/run runs it
            continue
        if page != "README.md" and b.skip is not None:  # install and serve: done above
            continue
        steps.append(_step(b, port))
    return steps


def test_readme_and_quickstart_in_one_shell(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / ".venv").symlink_to(Path(sys.prefix))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOLDLOOP_", "VIRTUAL_ENV"))}
    env.update(PATH=path, GOLDLOOP_PORT=str(port), TMPDIR=str(tmp))
    env.pop("PYTHONPATH", None)
    script = "\n".join(
        [
            "set -euo pipefail",
            'curl() { command curl --fail-with-body --max-time 60 "$@"; }',
            *_page_steps("README.md", port),
            *_page_steps("docs/quickstart.md", port),
            "echo '>>> done' >&2",
        ]
    )
    shell = subprocess.Popen(
        ["bash"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=clone,
        env=env,
        start_new_session=True,  # its background "terminals" too: stopped below as one group
    )
    try:
        out, err = shell.communicate(script, timeout=1200)
        key = (clone / ".goldloop" / "admin-key").read_text().strip()
        if shell.returncode == 0:
            _quickstart_outcome(LiveApi(f"http://127.0.0.1:{port}", key))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(60)
    serve_log = (clone / "serve.log").read_text() if (clone / "serve.log").exists() else ""
    demo_log = (clone / "demo.log").read_text() if (clone / "demo.log").exists() else ""
    report = (
        f"--- stdout\n{out[-3000:]}\n--- stderr\n{err[-5000:]}\n--- demo.log\n{demo_log[-3000:]}"
    )
    assert shell.returncode == 0, report
    assert err.rstrip().endswith(">>> done"), report

    # 1. The demo found the port held by `goldloop serve`, said so, and moved.
    assert f"port {port} on 127.0.0.1 is in use by 'goldloop serve' (pid " in demo_log, report
    assert "so the demo listens on port " in demo_log
    assert "The loop is closed." in demo_log
    # The curl against the server of terminal 1 worked with the key it saved (the demo's own
    # key is another), and the banner said one thing about that key.
    assert '"name":"agent-support"' in out.replace(" ", "")
    assert "saved in .goldloop/admin-key (mode 0600); this is the only time it is printed" in (
        serve_log
    )
    # The demo kept its own data in a temporary directory, not in ./.goldloop.
    assert [p.name.startswith("goldloop-demo-") for p in tmp.iterdir()] == [True]
