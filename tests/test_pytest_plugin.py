"""The pytest plugin, run in a separate pytest process on a small project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import goldloop

SRC = str(Path(goldloop.__file__).resolve().parents[1])

CONFTEST = 'pytest_plugins = ["goldloop.pytest_plugin"]\n'

TESTS = """
import os

from goldloop.evaluation import build_evaluator

BROKEN = os.environ.get("AGENT_BROKEN") == "1"


def agent(inputs):
    if BROKEN and inputs["q"] % 10 == 3:
        return {"answer": "sorry"}
    return {"answer": "a%d" % inputs["q"]}


def test_agent_quality(goldloop_gate):
    report = goldloop_gate(
        agent, "golden.jsonl", [build_evaluator("exact_match", {"key": "correct"})],
        min_mean={"correct": 0.5}, max_failures=0,
    )
    assert report.passed
"""


def run_pytest(project: Path, *args: str, broken: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "AGENT_BROKEN": "1" if broken else "0"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_plugin_gates_a_test_suite_against_a_saved_baseline(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_quality.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    lines = [
        orjson.dumps({"id": f"q{i}", "inputs": {"q": i}, "outputs": {"answer": f"a{i}"}})
        for i in range(100)
    ]
    (tmp_path / "golden.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    first = run_pytest(tmp_path, "--goldloop-save-dir", "baselines")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "baselines" / "test_agent_quality.json").exists()

    same = run_pytest(tmp_path, "--goldloop-baseline-dir", "baselines")
    assert same.returncode == 0, same.stdout + same.stderr

    worse = run_pytest(tmp_path, "--goldloop-baseline-dir", "baselines", broken=True)
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "[FAIL] no regression correct" in worse.stdout
    assert "10 regressed" in worse.stdout
