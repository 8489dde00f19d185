"""pytest plugin: the Goldloop gate inside a test suite.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["goldloop.pytest_plugin"]`` (or run
``pytest -p goldloop.pytest_plugin``), then::

    def test_agent_quality(goldloop_gate):
        goldloop_gate(agent, data="golden.jsonl", evaluators=[correct],
                      min_mean={"correct": 0.9}, max_failures=0, repetitions=3)

The test fails with the gate's report when a check fails. Baselines, as for `goldloop gate`:

- ``baseline=`` a results file, an :class:`ExperimentResults`, an experiment id or name on the
  server, or ``"tag:main"`` (the experiment of ``data``, a dataset on the server, tagged main);
- ``--goldloop-baseline SPEC`` the same for every gate that gives none (e.g. ``tag:main``);
- ``--goldloop-baseline-dir DIR`` compares each gate with ``DIR/<name>.json`` (name = the
  test's name unless given); ``--goldloop-save-dir DIR`` saves each experiment there;
- ``--goldloop-tag-on-pass NAME`` (or ``tag_on_pass=``): each passing gate on a server
  dataset stores its experiment on the server and tags it NAME, the next runs' ``tag:NAME``.

The server is ``GOLDLOOP_ENDPOINT`` / ``GOLDLOOP_API_KEY``. A baseline that cannot be found
fails the test with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from goldloop.domain.comparability import ChangedPolicy, JudgePolicy
from goldloop.domain.comparison import ErrorPolicy
from goldloop.evaluation._baselines import BaselineError, load_experiment, tag_experiment
from goldloop.evaluation._gate import GateReport, GateUsageError, run_gate_checks
from goldloop.evaluation._results import ExperimentResults
from goldloop.evaluation._runner import evaluate

__all__ = ["GoldloopGate"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("goldloop", "Goldloop quality gate")
    group.addoption(
        "--goldloop-baseline-dir",
        default=None,
        help="Directory of saved experiment results (NAME.json) that gates compare against.",
    )
    group.addoption(
        "--goldloop-baseline",
        default=None,
        metavar="SPEC",
        help="Baseline of every gate that names none: a results file, an experiment id or name "
        "on the server, or tag:NAME (the experiment of the gate's dataset tagged NAME).",
    )
    group.addoption(
        "--goldloop-tag-on-pass",
        default=None,
        metavar="NAME",
        help="Store each passing gate's experiment on the server and tag it NAME.",
    )
    group.addoption(
        "--goldloop-save-dir",
        default=None,
        help="Save each gated experiment's results here as NAME.json (the next baseline).",
    )


def _is_file(data: Any) -> bool:
    return isinstance(data, str | Path) and Path(data).suffix in (".json", ".jsonl")


def _load_data(data: Any) -> Any:
    if _is_file(data):
        raw = Path(data).read_bytes()
        if Path(data).suffix == ".json":
            return orjson.loads(raw)
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    return data


class GoldloopGate:
    """The ``goldloop_gate`` fixture: call it to run and check an experiment."""

    def __init__(self, config: pytest.Config, node: pytest.Item) -> None:
        self.config, self.node = config, node
        self.reports: list[GateReport] = []

    def __call__(
        self,
        target: Callable[..., Any],
        data: str | Path | Iterable[Any],
        evaluators: Sequence[Any],
        *,
        name: str | None = None,
        min_mean: Mapping[str, float] | None = None,
        max_failures: int | None = None,
        baseline: str | Path | ExperimentResults | None = None,
        tag_on_pass: str | None = None,
        alpha: float = 0.05,
        min_effect: float = 0.0,
        lower_is_better: Sequence[str] = (),
        repetitions: int = 1,
        max_concurrency: int = 8,
        errors: ErrorPolicy = "fail",
        changed: ChangedPolicy = "refuse",
        judge_change: JudgePolicy = "refuse",
        must_catch: float | None = None,
        cluster_field: str | None = None,
    ) -> GateReport:
        """Run ``target`` on ``data`` and check it like ``goldloop gate``: a failed target
        call or evaluator counts as the key's worst score (``errors="exclude"`` leaves them
        out), a key whose references or judge changed since the baseline fails as not
        comparable (``changed="unchanged-only"``, ``judge_change="allow"``), and
        ``must_catch`` fails the gate when it cannot detect a drop that large."""
        name = name or self.node.name
        dataset = data if isinstance(data, str) and not _is_file(data) else None
        tag = tag_on_pass or self.config.getoption("--goldloop-tag-on-pass")
        if tag:
            if dataset is None:
                pytest.fail("tag_on_pass needs data to be a dataset on the server", pytrace=False)
            import goldloop

            goldloop.configure(tracing=True)  # the experiment must be stored to be tagged
        base = self._baseline(name, baseline, dataset)
        results = evaluate(
            target,
            _load_data(data),
            evaluators,
            repetitions=repetitions,
            max_concurrency=max_concurrency,
            experiment_prefix=name,
            progress=False,
        )
        try:
            report = run_gate_checks(
                results,
                min_mean=min_mean,
                max_failures=max_failures,
                baseline=base,
                alpha=alpha,
                min_effect=min_effect,
                lower_is_better=lower_is_better,
                errors=errors,
                changed=changed,
                judge_change=judge_change,
                must_catch=must_catch,
                cluster_field=cluster_field,
                establishes=self._establishes(name, tag),
            )
        except GateUsageError as exc:
            pytest.fail(f"goldloop_gate: {exc}", pytrace=False)
        save_dir = self.config.getoption("--goldloop-save-dir")
        if save_dir:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            results.save(Path(save_dir) / f"{name}.json")
        self.reports.append(report)
        self.node.user_properties.append(("goldloop_gate", report.text()))
        if not report.passed:
            pytest.fail(report.text(), pytrace=False)
        if tag:
            try:
                moved = tag_experiment(results.experiment, tag)
            except BaselineError as exc:
                pytest.fail(str(exc), pytrace=False)
            self.node.user_properties.append(("goldloop_tag", moved))
        return report

    def _establishes(self, name: str, tag: str | None) -> str | None:
        """What a gate with no baseline yet and no threshold is for, if it is for anything."""
        if tag:
            return f"becomes the baseline tagged {tag!r}"
        save_dir = self.config.getoption("--goldloop-save-dir")
        if save_dir:
            return f"is saved as the next baseline ({Path(save_dir) / (name + '.json')})"
        return None

    def _baseline(
        self, name: str, baseline: str | Path | ExperimentResults | None, dataset: str | None
    ) -> ExperimentResults | None:
        if isinstance(baseline, ExperimentResults):
            return baseline
        if isinstance(baseline, Path):
            return ExperimentResults.load(baseline)
        spec = baseline if baseline is not None else self.config.getoption("--goldloop-baseline")
        if spec is not None:
            try:
                return load_experiment(str(spec), dataset=dataset)
            except BaselineError as exc:
                pytest.fail(f"baseline: {exc}", pytrace=False)
        directory = self.config.getoption("--goldloop-baseline-dir")
        if directory and (Path(directory) / f"{name}.json").exists():
            return ExperimentResults.load(Path(directory) / f"{name}.json")
        return None


@pytest.fixture
def goldloop_gate(request: pytest.FixtureRequest) -> GoldloopGate:
    """Run an experiment and fail the test when the gate's checks fail."""
    node = request.node
    assert isinstance(node, pytest.Item)
    return GoldloopGate(request.config, node)
