"""`goldloop compare` and `goldloop gate`: experiments from the command line and in CI.

Exit codes of `gate`: 0 every check passed, 1 a check failed, 2 usage or infrastructure error
(bad arguments, a target that cannot be imported, a dataset or baseline that cannot be read).
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

from goldloop.cli.experiments_remote import fail_usage, load_experiment, tag_on_pass
from goldloop.cli.remote import http_options, unreachable
from goldloop.domain.errors import GoldloopError


def _fail_usage(message: str) -> None:
    fail_usage(message)


def _honesty_options(fn: Any) -> Any:
    """How a comparison treats errors, edited references, judges and clusters (gate and
    compare alike)."""
    options = [
        click.option(
            "--exclude-errors",
            is_flag=True,
            help="Leave out examples whose target or evaluator failed instead of counting a "
            "candidate failure as the key's worst score (the verdict line says so).",
        ),
        click.option(
            "--only-unchanged",
            is_flag=True,
            help="When the dataset version differs, compare on the examples whose references "
            "did not change instead of refusing the key.",
        ),
        click.option(
            "--allow-judge-change",
            is_flag=True,
            help="Compare a key even when its judge model or prompt differs between the two.",
        ),
        click.option(
            "--cluster-field",
            default=None,
            metavar="FIELD",
            help="Example metadata field whose equal values make one cluster (default: "
            "cluster, session_id, thread_id, conversation_id, else the source trace).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _policies(exclude_errors: bool, only_unchanged: bool, allow_judge_change: bool) -> Any:
    return {
        "errors": "exclude" if exclude_errors else "fail",
        "changed": "unchanged-only" if only_unchanged else "refuse",
        "judge_change": "allow" if allow_judge_change else "refuse",
    }


@click.command()
@click.argument("baseline")
@click.argument("candidates", nargs=-1, required=True, metavar="CANDIDATE...")
@click.option("--alpha", default=0.05, show_default=True, help="Significance level.")
@click.option("--lower-is-better", multiple=True, help="A key where lower scores are better.")
@click.option("--examples", is_flag=True, help="Also list every example that moved.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@_honesty_options
@http_options
def compare(
    baseline: str, candidates: tuple[str, ...], alpha: float, lower_is_better: tuple[str, ...],
    examples: bool, as_json: bool, exclude_errors: bool, only_unchanged: bool,
    allow_judge_change: bool, cluster_field: str | None, endpoint: str, api_key: str | None,
) -> None:  # fmt: skip
    """Compare experiments example by example with a baseline: counts, mean difference with a
    95% CI, one-sided paired test, verdict, and the smallest drop the comparison can detect.
    BASELINE and each CANDIDATE is a saved results file (from `evaluate(...).save()` or
    `gate --save`) or an experiment id or name on the server. With several candidates, each
    is compared with the baseline on its own (each verdict at --alpha: with many candidates,
    expect some false alarms, or lower --alpha)."""
    from goldloop.domain.comparison import regression_verdicts

    policies = _policies(exclude_errors, only_unchanged, allow_judge_change)
    a = load_experiment(baseline, endpoint=endpoint, api_key=api_key)
    blocks = []
    for candidate in candidates:
        b = load_experiment(candidate, endpoint=endpoint, api_key=api_key)
        comparisons = b.compare(
            a, lower_is_better=lower_is_better, alpha=alpha, cluster_field=cluster_field,
            **policies,
        )  # fmt: skip
        blocks.append((b, comparisons, regression_verdicts(comparisons, alpha=alpha)))
    if as_json:
        docs = [
            [
                {**c.to_dict(with_examples=examples), "verdict": v.to_dict()}
                for c, v in zip(comparisons, verdicts, strict=True)
            ]
            for _, comparisons, verdicts in blocks
        ]
        out: Any = docs[0] if len(docs) == 1 else [
            {"baseline": a.experiment, "candidate": b.experiment, "keys": doc}
            for (b, _, _), doc in zip(blocks, docs, strict=True)
        ]  # fmt: skip
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    for i, (b, comparisons, verdicts) in enumerate(blocks):
        if i:
            click.echo("")
        _print_comparison(a, b, comparisons, verdicts, examples)


def _version(e: Any) -> str:
    return "-" if e.dataset_version is None else str(e.dataset_version)


def _print_comparison(a: Any, b: Any, comparisons: Any, verdicts: Any, examples: bool) -> None:
    click.echo(f"A = {a.experiment} (dataset version {_version(a)})   "
               f"B = {b.experiment} (dataset version {_version(b)})")  # fmt: skip
    click.echo(
        f"{'key':24} {'pairs':>5} {'mean A':>8} {'mean B':>8} {'diff':>8} {'95% CI':>19} "
        f"{'+/-/=':>11} {'err A/B':>7} {'p (one-sided)':>13} {'p (Holm)':>8} {'MDE':>6}"
    )
    for c, v in zip(comparisons, verdicts, strict=True):
        counts = f"{c.improved}/{c.regressed}/{c.unchanged}"
        errs = f"{len(c.errored_a)}/{len(c.errored_b)}"
        holm = "-" if math.isnan(v.p_value) else f"{v.p_value:.3g}"
        flag = {"regression": "  REGRESSION", "not_comparable": "  NOT COMPARABLE"}.get(
            v.status, ""
        )
        click.echo(
            f"{c.key:24} {c.n_pairs:5d} {c.mean_a:8.3f} {c.mean_b:8.3f} {c.mean_diff:+8.3f} "
            f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}] {counts:>11} {errs:>7} "
            f"{c.test.p_value:13.3g} {holm:>8} {c.mde:6.3f}" + flag
        )
        click.echo(f"    {v.reason}")
        if c.judges_a or c.judges_b:
            click.echo(f"    judge: A {', '.join(c.judges_a) or '-'}; "
                       f"B {', '.join(c.judges_b) or '-'}")  # fmt: skip
        if examples:
            for e in c.examples:
                if e.outcome != "unchanged":
                    flag = "" if e.exceeds_noise is None else (
                        " (beyond noise)" if e.exceeds_noise else " (within noise)")  # fmt: skip
                    click.echo(
                        f"    {e.outcome:9} {e.example_id}: {e.a_mean:.3f} -> {e.b_mean:.3f}{flag}"
                    )


def _import_target(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        _fail_usage(f"--target must be module:function, got {spec!r}")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`: the working directory first
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        _fail_usage(f"cannot import {spec}: {type(exc).__name__}: {exc}")
    return obj


def _evaluators(specs: tuple[str, ...], from_module: str | None) -> list[Any]:
    from goldloop.evaluation import build_evaluator

    out: list[Any] = []
    for spec in specs:
        name, _, raw = spec.partition("=")
        try:
            config = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            _fail_usage(f"--evaluator {name}: config is not JSON: {exc}")
        try:
            out.append(build_evaluator(name, config))
        except GoldloopError as exc:
            _fail_usage(exc.message)
    if from_module:
        extra = _import_target(from_module)
        out.extend(extra if isinstance(extra, list | tuple) else [extra])
    if not out:
        _fail_usage("give at least one --evaluator or --evaluators")
    return out


def _is_file(spec: str) -> bool:
    return Path(spec).suffix in (".jsonl", ".json") and Path(spec).exists()


def _data(spec: str, store: bool, endpoint: str, api_key: str | None) -> Any:
    path = Path(spec)
    if path.suffix in (".jsonl", ".json") and path.exists():
        text = path.read_bytes()
        try:
            if path.suffix == ".json":
                return orjson.loads(text)
            return [orjson.loads(line) for line in text.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            _fail_usage(f"{spec} is not valid JSON: {exc}")
    import goldloop

    # a dataset on the server: endpoint and key as every remote command finds them; `store`
    # keeps the experiment there too (its runs and scores), whatever GOLDLOOP_TRACING says
    goldloop.configure(tracing=True if store else None, endpoint=endpoint, api_key=api_key)
    return spec


def _min_means(items: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            _fail_usage(f"--min-mean wants KEY=NUMBER, got {item!r}")
    return out


@click.command()
@click.option("--target", required=True, help="The agent to run, as module:function.")
@click.option(
    "--data", required=True, help="A dataset name (on the server) or a .json/.jsonl file."
)
@click.option("--as-of", default=None, help="Dataset version, tag or time (default: newest).")
@click.option(
    "--evaluator",
    "evaluator_specs",
    multiple=True,
    help='A built-in by name, with optional JSON config: exact_match or regex={"pattern": "x"}.',
)
@click.option(
    "--evaluators",
    "evaluators_from",
    default=None,
    help="module:attr holding a list of evaluators (your own functions).",
)
@click.option("--repetitions", default=1, show_default=True)
@click.option("--max-concurrency", default=8, show_default=True)
@click.option("--min-mean", multiple=True, help="KEY=NUMBER: fail when the key's mean is lower.")
@click.option("--max-failures", default=None, type=int, help="Fail when more target calls raise.")
@click.option(
    "--baseline",
    default=None,
    help="The baseline: a saved results file, an experiment id or name on the server, or "
    "tag:NAME (the experiment of --data carrying tag NAME). Fail on a significant regression "
    "against it.",
)
@click.option(
    "--tag-on-pass",
    "tag_on_pass_name",
    default=None,
    metavar="NAME",
    help="When every check passed, tag this experiment NAME on the server (e.g. main: the "
    "next gates' tag:main baseline).",
)
@click.option("--alpha", default=0.05, show_default=True, help="Significance level.")
@click.option(
    "--min-effect",
    default=0.0,
    show_default=True,
    help="Ignore significant drops smaller than this (score units).",
)
@click.option("--lower-is-better", multiple=True, help="A key where lower scores are better.")
@click.option(
    "--must-catch",
    default=None,
    type=float,
    metavar="DROP",
    help="The smallest drop (score units) the gate must be able to catch with 80% power; the "
    "gate fails, saying how many examples or repetitions it needs, when it cannot.",
)
@_honesty_options
@click.option("--save", default=None, type=click.Path(dir_okay=False), help="Write results JSON.")
@click.option(
    "--report", default=None, type=click.Path(dir_okay=False), help="Write the text report."
)
@click.option("--junit", default=None, type=click.Path(dir_okay=False), help="Write JUnit XML.")
@click.option(
    "--markdown",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write a Markdown summary (for a pull-request comment).",
)
@click.option("--experiment-prefix", default=None, help="Name prefix of the experiment.")
@http_options
def gate(
    target: str, data: str, as_of: str | None, evaluator_specs: tuple[str, ...],
    evaluators_from: str | None, repetitions: int, max_concurrency: int,
    min_mean: tuple[str, ...], max_failures: int | None, baseline: str | None, alpha: float,
    min_effect: float, lower_is_better: tuple[str, ...], must_catch: float | None,
    exclude_errors: bool, only_unchanged: bool, allow_judge_change: bool,
    cluster_field: str | None, save: str | None, report: str | None,
    junit: str | None, markdown: str | None, experiment_prefix: str | None,
    tag_on_pass_name: str | None, endpoint: str, api_key: str | None,
) -> None:  # fmt: skip
    """Run TARGET on a dataset, check the scores, and exit 0 (pass), 1 (fail) or 2 (error).

    \b
    Checks (at least one is needed): --min-mean, --max-failures, --baseline.
    A failed target call or evaluator counts as the key's worst score; a key whose
    references or judge changed since the baseline is "not comparable" and fails.
    \b
    A dataset name in --data, and a baseline that is not a file, are read from the server at
    --endpoint / GOLDLOOP_ENDPOINT (default http://127.0.0.1:8700) with --api-key /
    GOLDLOOP_API_KEY, else the key file of a local server (--key-file, default
    .goldloop/admin-key). See docs/experiments.md."""
    import goldloop
    from goldloop.evaluation._gate import GateUsageError, run_gate_checks

    fn = _import_target(target)
    evaluators = _evaluators(evaluator_specs, evaluators_from)
    thresholds = _min_means(min_mean)
    on_server = not _is_file(data)
    if tag_on_pass_name and not on_server:
        _fail_usage("--tag-on-pass needs --data to be a dataset on the server")
    if not thresholds and max_failures is None and not baseline and not tag_on_pass_name:
        _fail_usage(
            "nothing to check: give a threshold (--min-mean KEY=NUMBER, --max-failures N) "
            "or a baseline to compare with (--baseline)"
        )
    if must_catch is not None and (not baseline or must_catch <= 0):
        _fail_usage("--must-catch needs a --baseline and a positive drop")
    if not 0.0 < alpha < 1.0:
        _fail_usage("--alpha must be between 0 and 1")
    base = None
    if baseline:
        base = load_experiment(
            baseline, endpoint=endpoint, api_key=api_key, dataset=data if on_server else None
        )
    examples = _data(data, bool(tag_on_pass_name), endpoint, api_key)
    try:
        results = goldloop.evaluate(
            fn, examples, evaluators, repetitions=repetitions, max_concurrency=max_concurrency,
            experiment_prefix=experiment_prefix, as_of=as_of, progress=False,
        )  # fmt: skip
    except httpx.TransportError as exc:  # reading the dataset from the server
        _fail_usage(unreachable(exc))
    except (ValueError, TypeError, OSError) as exc:
        _fail_usage(f"the experiment could not run: {exc}")
    if save:
        results.save(save)
    try:
        outcome = run_gate_checks(
            results, min_mean=thresholds, max_failures=max_failures, baseline=base, alpha=alpha,
            min_effect=min_effect, lower_is_better=lower_is_better, must_catch=must_catch,
            cluster_field=cluster_field,
            establishes=f"becomes the baseline tagged {tag_on_pass_name!r}"
            if tag_on_pass_name else None,
            **_policies(exclude_errors, only_unchanged, allow_judge_change),
        )  # fmt: skip
    except GateUsageError as exc:
        _fail_usage(str(exc))
    text = outcome.text()
    click.echo(text, nl=False)
    for path, body in ((report, text), (junit, outcome.junit()), (markdown, outcome.markdown())):
        if path:
            Path(path).write_text(body, encoding="utf-8")
    if outcome.passed and tag_on_pass_name:
        click.echo(tag_on_pass(results.experiment, tag_on_pass_name, endpoint, api_key))
    sys.exit(0 if outcome.passed else 1)
