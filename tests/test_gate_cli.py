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

def wrong_key(inputs):  # the refund incident: 13 answers come back under the wrong key
    q = inputs["q"]
    return {"text": "a%d" % q} if q < 13 else {"answer": "a%d" % q}

def answer_match(outputs, reference_outputs):  # a typical user evaluator
    return {"key": "correct", "score": outputs["answer"] == reference_outputs["answer"]}

ANSWER = [answer_match]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "gl_agents.py").write_text(AGENTS)
    lines = [
        orjson.dumps({"id": f"q{i}", "inputs": {"q": i}, "outputs": {"answer": f"a{i}"}})
        for i in range(100)
    ]
    (tmp_path / "golden.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "refund.jsonl").write_bytes(b"\n".join(lines[:22]) + b"\n")
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
    code, out = gate(
        "--target", "gl_agents:good", "--evaluator", EXACT, "--save", "base.json",
        "--max-failures", "0",
    )  # fmt: skip
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
    assert "p=0.000977 (one-sided)" in out  # 10 of 10 discordant pairs fell: 2**-10
    assert "smallest drop this comparison catches with 80% power" in out
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
              "--repetitions", "3", "--max-failures", "0")  # fmt: skip
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


def save(target: str, path: str, *extra: str) -> None:
    code, out = gate("--target", target, "--evaluator", EXACT, "--max-failures", "100",
                     "--save", path, *extra)  # fmt: skip
    assert code == 0, out


def test_compare_command(workdir: Path) -> None:
    save("gl_agents:good", "a.json")
    save("gl_agents:broken", "b.json")
    result = CliRunner().invoke(cli, ["compare", "a.json", "b.json", "--examples"])
    assert result.exit_code == 0, result.output
    assert "REGRESSION" in result.output
    assert "regressed q3: 1.000 -> 0.000" in result.output
    as_json = CliRunner().invoke(cli, ["compare", "a.json", "b.json", "--json"])
    [entry] = orjson.loads(as_json.output)
    assert entry["key"] == "correct"
    assert entry["regressed"] == 10
    assert entry["test"]["test"] == "tango-mcnemar"
    assert entry["verdict"]["regression"] is True
    assert entry["verdict"]["p_raw"] == entry["p_raw"] == pytest.approx(2**-10)
    assert "p (one-sided)" in result.output


def test_compare_several_candidates_with_one_baseline(workdir: Path) -> None:
    save("gl_agents:good", "a.json")
    save("gl_agents:good", "a2.json")
    save("gl_agents:broken", "b.json")
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


def test_broken_output_candidate_fails_and_names_the_errored_examples(workdir: Path) -> None:
    # The refund incident: 13 of 22 answers under the wrong key made the evaluator raise; the
    # gate used to PASS with "mean 1 (n=9)". Every example counts.
    common = ("--data", "refund.jsonl", "--evaluators", "gl_agents:ANSWER",
              "--min-mean", "correct=0.9")  # fmt: skip
    result = CliRunner().invoke(cli, ["gate", "--target", "gl_agents:good", *common,
                                      "--save", "base.json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["gate", "--target", "gl_agents:wrong_key", *common,
                                      "--baseline", "base.json"])  # fmt: skip
    out = result.output
    assert result.exit_code == 1, out
    assert "[FAIL] min mean correct: mean 0.4091 vs minimum 0.9 (n=22; 13 failed" in out
    assert "errored: q0, q1, q10, q11, q12, q2" in out
    assert "[FAIL] no regression correct" in out
    assert "13 candidate example(s) errored, counted as 0" in out
    assert "correct errored examples: baseline 0, candidate 13" in out
    excluded = CliRunner().invoke(
        cli,
        [
            "gate",
            "--target",
            "gl_agents:wrong_key",
            *common,
            "--baseline",
            "base.json",
            "--exclude-errors",
        ],
    )
    assert excluded.exit_code == 0, excluded.output  # the old answer, now said out loud
    assert "13 failed attempt(s) EXCLUDED" in excluded.output
    assert "errored examples EXCLUDED" in excluded.output


def test_edited_references_are_not_comparable(workdir: Path) -> None:
    # The same agent gated against its own earlier run after 9 reference answers were edited
    # must not read as "9 regressed".
    save("gl_agents:good", "base.json")
    lines = (workdir / "golden.jsonl").read_bytes().splitlines()
    edited = []
    for i, line in enumerate(lines):
        row = orjson.loads(line)
        if i < 9:
            row["outputs"] = {"answer": f"better answer {i}"}
        edited.append(orjson.dumps(row))
    (workdir / "golden.jsonl").write_bytes(b"\n".join(edited) + b"\n")
    code, out = gate("--target", "gl_agents:good", "--evaluator", EXACT, "--baseline", "base.json")
    assert code == 1, out
    assert "[FAIL] comparable correct: correct: NOT COMPARABLE" in out
    assert "the references of 9 paired example(s) differ" in out
    assert "q0, q1, q2, q3, q4, q5, q6, q7, q8" in out
    assert "significant regression" not in out
    code, out = gate("--target", "gl_agents:good", "--evaluator", EXACT, "--baseline", "base.json",
                     "--only-unchanged")  # fmt: skip
    assert code == 0, out
    assert "compared on the 91 of 100 examples whose references are unchanged" in out


def test_must_catch_says_how_many_examples_are_needed(workdir: Path) -> None:
    save("gl_agents:broken", "base.json")
    code, out = gate("--target", "gl_agents:broken", "--evaluator", EXACT, "--baseline",
                     "base.json", "--must-catch", "0.02")  # fmt: skip
    assert code == 1, out
    assert "[FAIL] can catch a drop of 0.02: correct: smallest detectable drop" in out
    assert "examples at 1 repetition(s)" in out
    code, out = gate("--target", "gl_agents:broken", "--evaluator", EXACT, "--baseline",
                     "base.json", "--must-catch", "0.2")  # fmt: skip
    assert code == 0, out
    assert "[pass] can catch a drop of 0.2" in out


def test_a_gate_with_nothing_to_check_or_an_unknown_key_is_a_usage_error(workdir: Path) -> None:
    code, out = gate("--target", "gl_agents:good", "--evaluator", EXACT)
    assert code == 2, out
    assert "nothing to check" in out
    code, out = gate("--target", "gl_agents:good", "--evaluator", EXACT, "--min-mean", "corect=0.9")
    assert code == 2, out
    assert "--min-mean names key(s) no evaluator produced: corect; the keys are: correct" in out
    code, out = gate("--target", "gl_agents:good", "--evaluator", EXACT, "--must-catch", "0.1",
                     "--max-failures", "0")  # fmt: skip
    assert code == 2, out
    assert "--must-catch needs a --baseline" in out
