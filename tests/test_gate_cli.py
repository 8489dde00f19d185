"""`goldloop gate` and `goldloop compare`: exit codes, reports, the two promises of the gate."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from goldloop.cli.main import cli

AGENTS = """
import random
import threading

def good(inputs):
    return {"answer": "a%d" % inputs["q"]}

def broken(inputs):  # 10% of the answers are now wrong
    return {"answer": "sorry" if inputs["q"] % 10 == 3 else "a%d" % inputs["q"]}

def crashing(inputs):
    if inputs["q"] == 5:
        raise RuntimeError("tool down")
    return good(inputs)

_lock = threading.Lock()
_calls = {}

def noisy_judge(outputs, reference_outputs):
    # flips 15% of its verdicts at random; the n-th call on an example always flips the same
    # way, so a run's per-example means do not depend on thread scheduling
    with _lock:
        n = _calls[outputs["answer"]] = _calls.get(outputs["answer"], 0) + 1
    flip = random.Random("%s-%d" % (outputs["answer"], n)).random() < 0.15
    return {"key": "judge", "score": (outputs == reference_outputs) != flip}

EVALUATORS = [noisy_judge]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "gl_agents.py").write_text(AGENTS)
    lines = [
        orjson.dumps({"id": f"q{i}", "inputs": {"q": i}, "outputs": {"answer": f"a{i}"}})
        for i in range(100)
    ]
    (tmp_path / "golden.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("gl_agents", None)


def gate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["gate", "--data", "golden.jsonl", *args])
    return result.exit_code, result.output


EXACT = 'exact_match={"key": "correct"}'


def test_gate_passes_and_writes_reports(workdir: Path) -> None:
    code, out = gate(
        "--target", "gl_agents:good", "--evaluator", EXACT, "--min-mean", "correct=0.95",
        "--max-failures", "0", "--save", "base.json", "--junit", "junit.xml",
        "--markdown", "summary.md", "--report", "report.txt",
    )  # fmt: skip
    assert code == 0, out
    assert "goldloop gate: PASS" in out
    assert "[pass] min mean correct: mean 1 vs minimum 0.95" in out
    suite = ET.parse(workdir / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "0")
    assert "passed" in (workdir / "summary.md").read_text()
    assert (workdir / "report.txt").read_text() == out
    assert orjson.loads((workdir / "base.json").read_bytes())["summary"]["correct"]["mean"] == 1.0


def test_gate_fails_on_an_injected_regression_and_names_it(workdir: Path) -> None:
    code, out = gate("--target", "gl_agents:good", "--evaluator", EXACT, "--save", "base.json")
    assert code == 0, out
    code, out = gate(
        "--target", "gl_agents:broken", "--evaluator", EXACT, "--baseline", "base.json",
        "--junit", "junit.xml", "--markdown", "summary.md",
    )  # fmt: skip
    assert code == 1, out
    assert "goldloop gate: FAIL" in out
    assert "[FAIL] no regression correct" in out
    assert "10 regressed" in out
    assert "significant regression" in out
    suite = ET.parse(workdir / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert "correct" in (failure.get("message") or "")
    md = (workdir / "summary.md").read_text()
    assert "failed" in md
    assert "| correct | 1.000 | 0.900 |" in md


def test_gate_passes_two_runs_of_the_same_agent_with_a_noisy_judge(workdir: Path) -> None:
    common = ("--target", "gl_agents:good", "--evaluators", "gl_agents:EVALUATORS",
              "--repetitions", "3")  # fmt: skip
    code, out = gate(*common, "--save", "base.json")
    assert code == 0, out
    code, out = gate(*common, "--baseline", "base.json")
    assert code == 0, out
    assert "[pass] no regression judge" in out


def test_gate_counts_failures(workdir: Path) -> None:
    code, out = gate("--target", "gl_agents:crashing", "--evaluator", EXACT, "--max-failures", "0")
    assert code == 1
    assert "1 failed target call(s), at most 0 allowed" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "gl_agents:nope", "--evaluator", "exact_match"], "cannot import"),
        (["--target", "no_colon", "--evaluator", "exact_match"], "module:function"),
        (["--target", "gl_agents:good", "--evaluator", "no_such"], "unknown evaluator"),
        (["--target", "gl_agents:good", "--evaluator", "regex={bad"], "not JSON"),
        (["--target", "gl_agents:good"], "at least one --evaluator"),
        (
            ["--target", "gl_agents:good", "--evaluator", "exact_match", "--min-mean", "x"],
            "KEY=NUMBER",
        ),
        (
            ["--target", "gl_agents:good", "--evaluator", "exact_match", "--baseline", "nope.json"],
            "cannot read experiment results",
        ),
    ],
)
def test_usage_errors_exit_2(workdir: Path, args: list[str], message: str) -> None:
    code, out = gate(*args)
    assert code == 2, out
    assert message in out


def test_compare_command(workdir: Path) -> None:
    assert gate("--target", "gl_agents:good", "--evaluator", EXACT, "--save", "a.json")[0] == 0
    assert gate("--target", "gl_agents:broken", "--evaluator", EXACT, "--save", "b.json")[0] == 0
    result = CliRunner().invoke(cli, ["compare", "a.json", "b.json", "--examples"])
    assert result.exit_code == 0, result.output
    assert "REGRESSION" in result.output
    assert "regressed q3: 1.000 -> 0.000" in result.output
    as_json = CliRunner().invoke(cli, ["compare", "a.json", "b.json", "--json"])
    [entry] = orjson.loads(as_json.output)
    assert entry["key"] == "correct"
    assert entry["regressed"] == 10
    assert entry["test"]["test"] == "mcnemar"
    assert entry["verdict"]["regression"] is True


def test_compare_several_candidates_with_one_baseline(workdir: Path) -> None:
    assert gate("--target", "gl_agents:good", "--evaluator", EXACT, "--save", "a.json")[0] == 0
    assert gate("--target", "gl_agents:good", "--evaluator", EXACT, "--save", "a2.json")[0] == 0
    assert gate("--target", "gl_agents:broken", "--evaluator", EXACT, "--save", "b.json")[0] == 0
    text = CliRunner().invoke(cli, ["compare", "a.json", "a2.json", "b.json"])
    assert text.exit_code == 0, text.output
    blocks = text.output.split("\n\n")
    assert len(blocks) == 2
    assert "REGRESSION" not in blocks[0]
    assert "REGRESSION" in blocks[1]
    as_json = CliRunner().invoke(cli, ["compare", "a.json", "a2.json", "b.json", "--json"])
    same, worse = orjson.loads(as_json.output)
    assert (same["keys"][0]["regressed"], same["keys"][0]["verdict"]["regression"]) == (0, False)
    assert (worse["keys"][0]["regressed"], worse["keys"][0]["verdict"]["regression"]) == (10, True)
    assert same["baseline"] == worse["baseline"] != same["candidate"] != worse["candidate"]
    missing = CliRunner().invoke(cli, ["compare", "a.json"])
    assert missing.exit_code == 2
