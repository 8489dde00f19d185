"""The CI gate's checks on an experiment and its reports (text, JUnit XML, Markdown).

Checks: a minimum mean per score key, a maximum number of failed target calls, and "no
statistically significant regression against the baseline" (paired tests, Holm-adjusted
across keys; see docs/statistics.md).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from goldloop.domain.comparison import KeyComparison, regression_verdicts
from goldloop.evaluation._results import ExperimentResults

__all__ = ["Check", "GateReport", "run_gate_checks"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    message: str


@dataclass(slots=True)
class GateReport:
    experiment: str
    checks: list[Check]
    comparisons: list[KeyComparison] = field(default_factory=list)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    baseline: str | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def text(self) -> str:
        lines = [
            f"goldloop gate: {'PASS' if self.passed else 'FAIL'} — experiment {self.experiment}"
        ]
        if self.baseline:
            lines.append(f"baseline: {self.baseline}")
        for key, s in self.summary.items():
            lines.append(f"  {key}: mean {s['mean']:.4g} (n={int(s['n'])})")
        for c in self.checks:
            lines.append(f"[{'pass' if c.passed else 'FAIL'}] {c.name}: {c.message}")
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        head = "✅ passed" if self.passed else "❌ failed"
        out = [f"### Goldloop gate {head}", "", f"Experiment `{self.experiment}`"]
        if self.baseline:
            out[-1] += f" against baseline `{self.baseline}`"
        out += ["", "| check | result | detail |", "|---|---|---|"]
        for c in self.checks:
            out.append(
                f"| {_md(c.name)} | {'pass' if c.passed else '**FAIL**'} | {_md(c.message)} |"
            )
        if self.comparisons:
            out += [
                "",
                "| key | baseline | candidate | diff (95% CI) | regressed / improved | p |",
                "|---|---:|---:|---|---:|---:|",
            ]
            for cmp in self.comparisons:
                out.append(
                    f"| {_md(cmp.key)} | {cmp.mean_a:.3f} | {cmp.mean_b:.3f} | "
                    f"{cmp.mean_diff:+.3f} ({cmp.ci_low:+.3f}, {cmp.ci_high:+.3f}) | "
                    f"{cmp.regressed} / {cmp.improved} | {cmp.test.p_value:.3g} |"
                )
        return "\n".join(out) + "\n"

    def junit(self) -> str:
        failures = sum(1 for c in self.checks if not c.passed)
        suite = ET.Element(
            "testsuite",
            name="goldloop-gate",
            tests=str(len(self.checks)),
            failures=str(failures),
            errors="0",
        )
        for c in self.checks:
            case = ET.SubElement(suite, "testcase", classname="goldloop.gate", name=c.name)
            if not c.passed:
                fail = ET.SubElement(case, "failure", message=c.message)
                fail.text = c.message
            else:
                ET.SubElement(case, "system-out").text = c.message
        root = ET.Element("testsuites")
        root.append(suite)
        return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _md(text: str) -> str:
    # table cells: no pipes or newlines from untrusted text, HTML escaped
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("|", "\\|").replace("\n", " ")
    )  # fmt: skip


def run_gate_checks(
    results: ExperimentResults,
    *,
    min_mean: Mapping[str, float] | None = None,
    max_failures: int | None = None,
    baseline: ExperimentResults | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    lower_is_better: Sequence[str] = (),
) -> GateReport:
    summary = results.summary()
    checks: list[Check] = []
    for key, threshold in (min_mean or {}).items():
        if key not in summary:
            checks.append(Check(f"min mean {key}", False, f"no scores for key {key!r}"))
            continue
        mean = summary[key]["mean"]
        ok = not math.isnan(mean) and mean >= threshold
        checks.append(Check(f"min mean {key}", ok, f"mean {mean:.4g} vs minimum {threshold:g}"))
    if max_failures is not None:
        failed = results.errors
        checks.append(
            Check(
                "max failures",
                failed <= max_failures,
                f"{failed} failed target call(s), at most {max_failures} allowed",
            )
        )
    comparisons: list[KeyComparison] = []
    if baseline is not None:
        comparisons = results.compare(baseline, lower_is_better=lower_is_better)
        if not comparisons:
            checks.append(Check("no regression", False, "no score key in common with the baseline"))
        elif all(c.n_pairs == 0 for c in comparisons):
            checks.append(Check("no regression", False, "no example in common with the baseline"))
        for verdict in regression_verdicts(comparisons, alpha=alpha, min_effect=min_effect):
            checks.append(
                Check(f"no regression {verdict.key}", not verdict.regression, verdict.reason)
            )
    return GateReport(
        experiment=results.experiment,
        checks=checks,
        comparisons=comparisons,
        summary={k: {"mean": v["mean"], "n": v["n"]} for k, v in summary.items()},
        baseline=baseline.experiment if baseline is not None else None,
    )
