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


def make_project(project: Path, tests: str, examples: int) -> None:
    """A pytest project using the plugin: ``tests`` and a golden.jsonl of ``examples``."""
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_quality.py").write_text(tests)
    (project / "pytest.ini").write_text("[pytest]\n")
    lines = [
        orjson.dumps({"id": f"q{i}", "inputs": {"q": i}, "outputs": {"answer": f"a{i}"}})
        for i in range(examples)
    ]
    (project / "golden.jsonl").write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.slow
def test_plugin_gates_a_test_suite_against_a_saved_baseline(tmp_path: Path) -> None:
    make_project(tmp_path, TESTS, 100)

    first = run_pytest(tmp_path, "--goldloop-save-dir", "baselines")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "baselines" / "test_agent_quality.json").exists()

    same = run_pytest(tmp_path, "--goldloop-baseline-dir", "baselines")
    assert same.returncode == 0, same.stdout + same.stderr

    worse = run_pytest(tmp_path, "--goldloop-baseline-dir", "baselines", broken=True)
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "[FAIL] no regression correct" in worse.stdout
    assert "10 regressed" in worse.stdout


WRONG_KEY_TESTS = """
import os

WRONG = os.environ.get("AGENT_BROKEN") == "1"


def agent(inputs):  # the candidate answers under the wrong key on 13 of 22 examples
    q = inputs["q"]
    return {"text": "a%d" % q} if WRONG and q < 13 else {"answer": "a%d" % q}


def correct(outputs, reference_outputs):
    return {"key": "correct", "score": outputs["answer"] == reference_outputs["answer"]}


def test_agent_quality(goldloop_gate):
    goldloop_gate(agent, "golden.jsonl", [correct], min_mean={"correct": 0.9}, must_catch=0.5)
"""


@pytest.mark.slow
def test_plugin_counts_evaluator_errors_against_the_candidate(tmp_path: Path) -> None:
    make_project(tmp_path, WRONG_KEY_TESTS, 22)
    first = run_pytest(tmp_path, "--goldloop-save-dir", "baselines")
    assert first.returncode == 0, first.stdout + first.stderr
    worse = run_pytest(tmp_path, "--goldloop-baseline-dir", "baselines", broken=True)
    out = worse.stdout
    assert worse.returncode == 1, out + worse.stderr
    assert "[FAIL] min mean correct: mean 0.4091 vs minimum 0.9" in out
    assert "13 candidate example(s) errored, counted as 0" in out
    assert "[FAIL] no regression correct" in out
    assert "[pass] can catch a drop of 0.5" in out
