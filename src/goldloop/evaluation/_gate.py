"""The CI gate's checks on an experiment and its reports (text, JUnit XML, Markdown).

Checks: a minimum mean per score key (failed attempts count as the key's worst score), a
maximum number of failed target calls, "no statistically significant regression against the
baseline" (one-sided paired tests, Holm-adjusted across keys; a key whose references or judge
changed is *not comparable* and fails), and, when asked, "this gate can catch a drop of X"
(power). See docs/statistics.md.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from goldloop.domain.comparability import ChangedPolicy, JudgePolicy
from goldloop.domain.comparison import ErrorPolicy, KeyComparison, regression_verdicts
from goldloop.domain.inference import required_examples, required_repetitions
from goldloop.evaluation._results import ExperimentResults

__all__ = ["Check", "GateReport", "GateUsageError", "run_gate_checks"]


class GateUsageError(ValueError):
    """The gate was asked something it cannot check (nothing to check, an unknown key)."""


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
    notes: list[str] = field(default_factory=list)
    """What the reader needs to trust the verdict: dataset versions, judges, errors, power."""

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
            line = f"  {key}: mean {s['mean']:.4g} (n={int(s['n'])}"
            if s.get("failed"):
                line += f", {int(s['failed'])} failed attempt(s) counted as {s['worst']:g}"
            lines.append(line + ")")
        lines += [f"  {note}" for note in self.notes]
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
                "| key | baseline | candidate | diff (95% CI) | regressed / improved | "
                "errored (base / cand) | p (one-sided) | MDE |",
                "|---|---:|---:|---|---:|---:|---:|---:|",
            ]
            for cmp in self.comparisons:
                p = f"{cmp.test.p_value:.3g}" if cmp.comparable else "not comparable"
                out.append(
                    f"| {_md(cmp.key)} | {cmp.mean_a:.3f} | {cmp.mean_b:.3f} | "
                    f"{cmp.mean_diff:+.3f} ({cmp.ci_low:+.3f}, {cmp.ci_high:+.3f}) | "
                    f"{cmp.regressed} / {cmp.improved} | "
                    f"{len(cmp.errored_a)} / {len(cmp.errored_b)} | {p} | {cmp.mde:.3f} |"
                )
        if self.notes:
            out += [""] + [f"- {_md(note)}" for note in self.notes]
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


def _min_mean_checks(
    results: ExperimentResults, min_mean: Mapping[str, float], errors: ErrorPolicy
) -> list[Check]:
    checks = []
    for key, threshold in min_mean.items():
        mean, n, failed = results.key_mean(key, errors=errors)
        ok = not math.isnan(mean) and mean >= threshold
        detail = f"mean {mean:.4g} vs minimum {threshold:g} (n={n}"
        if failed and errors == "fail":
            detail += f"; {failed} failed attempt(s) counted as the worst score"
        elif failed:
            detail += f"; {failed} failed attempt(s) EXCLUDED (--exclude-errors)"
        detail += ")"
        failed_examples = results.failed(key)
        if failed_examples:
            shown = ", ".join(failed_examples[:10])
            more = len(failed_examples) - 10
            detail += f"; errored: {shown}" + (f" and {more} more" if more > 0 else "")
        checks.append(Check(f"min mean {key}", ok, detail))
    return checks


def _power_check(
    comparisons: Sequence[KeyComparison], must_catch: float, alpha: float, repetitions: int
) -> Check:
    short = []
    for cmp in comparisons:
        if not cmp.comparable or cmp.inference is None or not cmp.mde <= must_catch:
            needs = []
            if cmp.inference is not None and cmp.inference.units:
                n_req = required_examples(cmp.inference, must_catch, alpha)
                if n_req is not None:
                    unit = "clusters" if cmp.clusters else "examples"
                    needs.append(f"~{n_req} {unit} at {repetitions} repetition(s)")
                if cmp.noise is not None:
                    reps = required_repetitions(
                        cmp.inference, cmp.noise, repetitions, must_catch, alpha
                    )
                    if reps is not None:
                        needs.append(f"{reps} repetitions on these {cmp.inference.units}")
            need = f" (needs {' or '.join(needs)})" if needs else ""
            short.append(f"{cmp.key}: smallest detectable drop {cmp.mde:.3g}{need}")
    if short:
        return Check(
            f"can catch a drop of {must_catch:g}",
            False,
            "; ".join(short) + f" (80% power, one-sided alpha={alpha})",
        )
    return Check(
        f"can catch a drop of {must_catch:g}",
        True,
        ", ".join(f"{c.key}: detectable {c.mde:.3g}" for c in comparisons),
    )


def _notes(
    results: ExperimentResults, baseline: ExperimentResults, cmps: list[KeyComparison]
) -> list[str]:
    notes = [
        f"dataset {results.dataset or baseline.dataset or '(file)'}: baseline version "
        f"{baseline.dataset_version if baseline.dataset_version is not None else '-'}, "
        f"candidate version "
        f"{results.dataset_version if results.dataset_version is not None else '-'}"
    ]
    for cmp in cmps:
        if cmp.judges_a or cmp.judges_b:
            notes.append(
                f"{cmp.key} judged by: baseline {', '.join(cmp.judges_a) or '-'}; "
                f"candidate {', '.join(cmp.judges_b) or '-'}"
            )
        if cmp.errored_a or cmp.errored_b:
            notes.append(
                f"{cmp.key} errored examples: baseline {len(cmp.errored_a)}, "
                f"candidate {len(cmp.errored_b)}"
            )
        if cmp.clusters:
            notes.append(
                f"{cmp.key}: {cmp.n_pairs} examples in {cmp.clusters} clusters (shared "
                "conversation, session or source trace): cluster-robust interval and test"
            )
        if cmp.comparable and cmp.n_pairs:
            notes.append(
                f"{cmp.key}: smallest drop this comparison catches with 80% power: "
                f"{cmp.mde:.3g} (n={cmp.n_pairs}, alpha={cmp.alpha})"
            )
    return notes


def run_gate_checks(
    results: ExperimentResults,
    *,
    min_mean: Mapping[str, float] | None = None,
    max_failures: int | None = None,
    baseline: ExperimentResults | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    lower_is_better: Sequence[str] = (),
    errors: ErrorPolicy = "fail",
    changed: ChangedPolicy = "refuse",
    judge_change: JudgePolicy = "refuse",
    must_catch: float | None = None,
    cluster_field: str | None = None,
    establishes: str | None = None,
) -> GateReport:
    """Run the gate's checks. Raises :class:`GateUsageError` when there is nothing to check
    or a ``min_mean`` key was never scored (a typo must not read as a failing agent).

    ``establishes`` says what a run with nothing to check is for (e.g. "becomes the baseline
    tagged main"): the first run of a gate has no baseline yet, and that is not an error."""
    nothing = not min_mean and max_failures is None and baseline is None
    if nothing and not establishes:
        raise GateUsageError(
            "nothing to check: give a threshold (--min-mean KEY=NUMBER, --max-failures N) or "
            "a baseline to compare with (--baseline)"
        )
    if must_catch is not None and baseline is None and not establishes:
        raise GateUsageError("--must-catch needs a --baseline to compare with")
    known = results.score_keys()
    unknown = [k for k in (min_mean or {}) if k not in known]
    if unknown:
        raise GateUsageError(
            f"--min-mean names key(s) no evaluator produced: {', '.join(unknown)}; "
            f"the keys are: {', '.join(known) or '(none)'}"
        )
    checks = _min_mean_checks(results, min_mean or {}, errors)
    if nothing:
        checks.append(Check("no baseline yet", True, f"nothing to compare: this run {establishes}"))
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
    notes: list[str] = []
    if baseline is not None:
        comparisons = results.compare(
            baseline, lower_is_better=lower_is_better, alpha=alpha, errors=errors,
            changed=changed, judge_change=judge_change, cluster_field=cluster_field,
        )  # fmt: skip
        notes = _notes(results, baseline, comparisons)
        if not comparisons:
            checks.append(Check("no regression", False, "no score key in common with the baseline"))
        elif all(c.n_pairs == 0 for c in comparisons):
            checks.append(Check("no regression", False, "no example in common with the baseline"))
        for verdict in regression_verdicts(comparisons, alpha=alpha, min_effect=min_effect):
            if verdict.status == "not_comparable":
                checks.append(Check(f"comparable {verdict.key}", False, verdict.reason))
                continue
            checks.append(
                Check(f"no regression {verdict.key}", not verdict.regression, verdict.reason)
            )
        if must_catch is not None:
            checks.append(_power_check(comparisons, must_catch, alpha, results.repetitions))
    summary: dict[str, dict[str, float]] = {}
    for key in results.score_keys():
        mean, n, failed = results.key_mean(key, errors=errors)
        summary[key] = {
            "mean": mean,
            "n": n,
            "failed": failed if errors == "fail" else 0,
            "worst": results.worst_score(key),
        }
    return GateReport(
        experiment=results.experiment,
        checks=checks,
        comparisons=comparisons,
        summary=summary,
        baseline=baseline.experiment if baseline is not None else None,
        notes=notes,
    )
