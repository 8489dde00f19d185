"""The gate, `goldloop compare`, `goldloop experiments` and the SDK against a real server on a
real socket: baselines by tag (`--baseline tag:main`, `--tag-on-pass main`), by name, and the
errors that must exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from goldloop.cli.main import cli
from goldloop.client import Client
from goldloop.settings import Settings
from live_api import LiveApi, live_api
from sdk_state import reset_sdk
from test_gate_cli import AGENTS, EXACT
from test_serve import SRC


@pytest.fixture
def live(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveApi]:
    (tmp_path / "gl_agents.py").write_text(AGENTS)
    monkeypatch.chdir(tmp_path)
    with live_api(settings) as api:
        monkeypatch.setenv("GOLDLOOP_ENDPOINT", api.endpoint)
        monkeypatch.setenv("GOLDLOOP_API_KEY", api.key)
        monkeypatch.delenv("GOLDLOOP_TRACING", raising=False)
        headers = {"x-api-key": api.key}
        with httpx.Client(base_url=api.endpoint + "/api/v1", headers=headers, timeout=60) as http:
            assert http.post("/datasets", json={"name": "golden"}).status_code == 201
            examples = [
                {"id": f"q{i}", "inputs": {"q": i}, "outputs": {"answer": f"a{i}"}}
                for i in range(100)
            ]
            r = http.post("/datasets/golden/examples", json={"examples": examples})
            assert r.status_code == 201, r.text
        yield api
        reset_sdk()
    sys.modules.pop("gl_agents", None)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def gate(target: str, *args: str) -> tuple[int, str]:
    return run(
        "gate", "--target", f"gl_agents:{target}", "--data", "golden", "--evaluator", EXACT,
        "--evaluators", "gl_agents:EVALUATORS", *args,
    )  # fmt: skip


def experiment_of(output: str) -> str:
    head = output.splitlines()[0]  # goldloop gate: PASS — experiment NAME
    return head.rsplit(" ", 1)[-1]


@pytest.fixture
def client(live: LiveApi) -> Iterator[Client]:
    with Client(live.endpoint, live.key) as c:
        yield c


def test_tag_baselines_gate_pull_requests(client: Client) -> None:
    # push to main: no baseline yet; passing tags the experiment `main`
    code, out = gate("good", "--min-mean", "correct=0.95", "--tag-on-pass", "main")
    assert code == 0, out
    first = experiment_of(out)
    assert f"tagged experiment {first} as 'main'" in out
    stored = client.get_experiment(first)
    assert stored["tags"] == ["main"]
    assert (stored["dataset"], stored["dataset_version"], stored["run_count"]) == ("golden", 1, 100)
    assert stored["scores"]["correct"]["mean"] == 1.0

    # a pull request with 10% of the answers wrong: fails against tag:main, names the key
    code, out = gate("broken", "--baseline", "tag:main", "--tag-on-pass", "main")
    assert code == 1, out
    assert f"baseline: {first}" in out
    assert "[FAIL] no regression correct" in out
    assert "tagged experiment" not in out
    assert client.tagged_experiment("golden", "main")["name"] == first  # type: ignore[index]

    # the same agent again, its noisy judge flipping other verdicts: passes, and moves the tag
    code, out = gate("good", "--baseline", "tag:main", "--tag-on-pass", "main")
    assert code == 0, out
    assert "[pass] no regression correct" in out
    assert "[pass] no regression judge" in out
    second = experiment_of(out)
    assert f"tagged experiment {second} as 'main' (moved from {stored['id']})" in out
    assert client.get_experiment(first)["tags"] == []

    # a baseline given by name works as well
    code, out = gate("broken", "--baseline", first)
    assert code == 1, out
    assert "[FAIL] no regression correct" in out


def test_bad_baselines_exit_2(live: LiveApi, tmp_path: Path) -> None:
    code, out = gate("good", "--baseline", "tag:main")
    assert code == 2
    assert "no experiment of dataset 'golden' is tagged 'main'" in out
    code, out = gate("good", "--baseline", "agent-v0-gone")
    assert code == 2
    assert "'agent-v0-gone' is neither a results file nor an experiment" in out
    (tmp_path / "golden.jsonl").write_bytes(b'{"id": "q1", "inputs": {"q": 1}}\n')
    code, out = run(
        "gate", "--target", "gl_agents:good", "--data", "golden.jsonl", "--evaluator", EXACT,
        "--tag-on-pass", "main",
    )  # fmt: skip
    assert code == 2
    assert "--tag-on-pass needs --data to be a dataset on the server" in out
    code, out = run(
        "gate", "--target", "gl_agents:good", "--data", "golden.jsonl", "--evaluator", EXACT,
        "--baseline", "tag:main",
    )  # fmt: skip
    assert code == 2
    assert "needs the dataset on the server" in out
    code, out = run("compare", "nope-a", "nope-b")
    assert code == 2
    assert "'nope-a' is neither a results file nor an experiment" in out
    # a dataset that is not there: one line, not the server's JSON
    code, out = run("gate", "--target", "gl_agents:good", "--data", "nope", "--evaluator", EXACT,
                    "--max-failures", "0")  # fmt: skip
    assert code == 2, out
    assert f"no dataset named 'nope' on {live.endpoint}" in out
    assert "{" not in out


def test_compare_and_experiments_commands(client: Client) -> None:
    code, out = gate("good", "--tag-on-pass", "main", "--save", "good.json")
    assert code == 0, out
    good = experiment_of(out)
    code, out = gate("broken", "--tag-on-pass", "candidate", "--min-mean", "correct=0.5")
    assert code == 0, out
    broken = experiment_of(out)

    # server vs server, and a file vs the server: the same comparison
    code, remote = run("compare", good, broken, "--json")
    assert code == 0, remote
    code, mixed = run("compare", "good.json", broken, "--json")
    assert code == 0, mixed
    assert orjson.loads(remote) == orjson.loads(mixed)
    correct = next(c for c in orjson.loads(remote) if c["key"] == "correct")
    assert (correct["regressed"], correct["verdict"]["regression"]) == (10, True)

    # ... and the server's own comparison agrees with the SDK's local one
    local = client.experiment_results(broken).compare(client.experiment_results(good))
    served = client.compare_experiments(good, broken, examples=True)["comparisons"]
    for c in local:
        mirror = next(s for s in served if s["key"] == c.key)
        mirror.pop("verdict")
        assert mirror == orjson.loads(orjson.dumps(c.to_dict()))

    code, out = run("experiments", "list", "--dataset", "golden")
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [broken, good]
    assert "golden@v1\t100 runs\t0 errors\tcandidate\tcorrect=0.900 (n=100)" in lines[0]
    code, out = run("experiments", "show", good)
    assert code == 0, out
    assert "tags: main" in out
    assert "correct" in out
    code, out = run("experiments", "tag", broken, "main")
    assert code == 0, out
    assert f"tagged {broken} as 'main' (moved from" in out
    code, out = run("experiments", "list", "--tag", "main", "--json")
    assert [orjson.loads(line)["name"] for line in out.splitlines()] == [broken]
    code, out = run("experiments", "untag", broken, "main")
    assert code == 0, out
    code, out = run("experiments", "untag", broken, "main")
    assert code == 1
    assert "has no tag 'main'" in out


PLUGIN_TESTS = """
import gl_agents
from goldloop.evaluation import build_evaluator


def test_quality(goldloop_gate):
    goldloop_gate(
        getattr(gl_agents, AGENT), "golden",
        [build_evaluator("exact_match", {"key": "correct"})], name="quality",
    )
"""


def test_pytest_plugin_gates_against_a_tagged_baseline_on_the_server(live: LiveApi) -> None:
    """The pytest plugin does what `goldloop gate` does: --goldloop-tag-on-pass main promotes a
    passing experiment, and --goldloop-baseline tag:main fails the 10% regression."""
    project = Path.cwd()
    (project / "conftest.py").write_text('pytest_plugins = ["goldloop.pytest_plugin"]\n')
    (project / "pytest.ini").write_text("[pytest]\n")

    def suite(agent: str, *options: str) -> subprocess.CompletedProcess[str]:
        (project / "test_quality.py").write_text(f"AGENT = {agent!r}\n" + PLUGIN_TESTS)
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{project}"}
        env.pop("PYTEST_ADDOPTS", None)
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
            cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    first = suite("good", "--goldloop-baseline", "tag:main")
    assert first.returncode == 1
    assert "no experiment of dataset 'golden' is tagged 'main'" in first.stdout

    promoted = suite("good", "--goldloop-tag-on-pass", "main")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    with Client() as client:
        main = client.tagged_experiment("golden", "main")
        assert main is not None
        assert main["name"].startswith("quality-")

    regressed = suite("broken", "--goldloop-baseline", "tag:main", "--goldloop-tag-on-pass", "main")
    assert regressed.returncode == 1
    assert "correct" in regressed.stdout
    assert "regress" in regressed.stdout.lower()
    with Client() as client:  # a failing gate moves nothing
        assert client.tagged_experiment("golden", "main") == main

    again = suite("good", "--goldloop-baseline", "tag:main", "--goldloop-tag-on-pass", "main")
    assert again.returncode == 0, again.stdout + again.stderr
    with Client() as client:
        moved = client.tagged_experiment("golden", "main")
        assert moved is not None
        assert moved["id"] != main["id"]


def test_the_server_refuses_edited_references_and_counts_errors(
    live: LiveApi, client: Client
) -> None:
    # main passes on version 1; then 9 reference answers are corrected (version 2). The same
    # agent gated against main must hear "not comparable", naming the 9, not "9 regressed".
    code, out = gate("good", "--min-mean", "correct=0.95", "--tag-on-pass", "main")
    assert code == 0, out
    main = experiment_of(out)
    edits = [
        {"id": f"q{i}", "inputs": {"q": i}, "outputs": {"answer": f"corrected {i}"}}
        for i in range(9)
    ]
    headers = {"x-api-key": live.key}
    r = httpx.post(f"{live.endpoint}/api/v1/datasets/golden/examples", headers=headers,
                   json={"examples": edits, "upsert": True}, timeout=60)  # fmt: skip
    assert r.status_code in (200, 201), r.text
    code, out = gate("good", "--baseline", "tag:main", "--tag-on-pass", "candidate")
    assert code == 1, out
    candidate = experiment_of(out)  # stored on the server, but not tagged: it failed
    assert "[FAIL] comparable correct" in out
    assert "dataset versions 1 (baseline) and 2 (candidate)" in out
    assert "q0, q1, q2, q3, q4, q5, q6, q7, q8" in out
    assert "significant regression" not in out
    code, out = gate("good", "--baseline", "tag:main", "--only-unchanged")
    assert code == 0, out
    assert "compared on the 91 of 100 examples" in out
    # the server's own comparison says the same, from the runs' recorded reference hashes
    client.experiment_results(candidate)  # flushed and readable
    doc = client.compare_experiments(main, candidate)
    correct = next(c for c in doc["comparisons"] if c["key"] == "correct")
    assert correct["comparable"] is False
    assert correct["changed_examples"] == [f"q{i}" for i in range(9)]
    assert correct["verdict"]["status"] == "not_comparable"
    # an evaluator that raises on the candidate's answers counts against the candidate here
    # too (its error is stored under the evaluator's name; it belongs to the key it gives)
    code, out = run(
        "gate", "--target", "gl_agents:wrong_key", "--data", "golden", "--evaluators",
        "gl_agents:ANSWER", "--max-failures", "0", "--tag-on-pass", "wrong-key",
    )  # fmt: skip
    assert code == 0, out
    wrong = client.tagged_experiment("golden", "wrong-key")
    assert wrong is not None
    doc = client.compare_experiments(candidate, wrong["id"])
    [correct] = [c for c in doc["comparisons"] if c["key"] == "correct"]
    assert correct["comparable"] is True
    assert sorted(correct["errored_b"]) == sorted(f"q{i}" for i in range(13))
    assert correct["errored_a"] == []
    assert correct["worst"] == 0.0
    assert correct["regressed"] == 4  # q9..q12; q0..q8 scored 0 against the corrections anyway
    assert "answer_match" not in {c["key"] for c in doc["comparisons"]}


def test_gate_finds_the_local_key_file_and_names_an_unreachable_server(
    live: LiveApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # like every remote command: no --api-key, no GOLDLOOP_API_KEY, a local server's key file
    monkeypatch.delenv("GOLDLOOP_API_KEY")
    (tmp_path / ".goldloop").mkdir()
    (tmp_path / ".goldloop" / "admin-key").write_text(live.key + "\n")
    code, out = gate("good", "--min-mean", "correct=0.95", "--tag-on-pass", "main")
    assert code == 0, out
    assert "tagged experiment" in out
    code, out = run(
        "gate", "--target", "gl_agents:good", "--data", "golden", "--evaluator", EXACT,
        "--max-failures", "0", "--endpoint", "http://127.0.0.1:9",
    )  # fmt: skip
    assert code == 2, out
    assert "cannot reach the server at http://127.0.0.1:9 (from --endpoint)" in out
    assert "Traceback" not in out
