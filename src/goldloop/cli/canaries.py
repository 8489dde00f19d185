"""`goldloop canaries ...`: a judge rule's canary set and its history, over HTTP."""

from __future__ import annotations

import json
from typing import Any

import click

from goldloop.cli.groups import Group
from goldloop.cli.remote import api_errors, http_options
from goldloop.client import Client


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def run_line(run: dict[str, Any]) -> str:
    """One canary run as a line a person reads."""
    figures = run.get("figures") or {}
    if figures.get("kind") == "binary":
        kappa = (figures.get("kappa") or {}).get("value")
        main = (
            f"kappa {'-' if kappa is None else f'{kappa:.3f}'} "
            f"TPR {_pct((figures.get('tpr') or {}).get('value'))} "
            f"TNR {_pct((figures.get('tnr') or {}).get('value'))}"
        )
    elif figures:
        r = (figures.get("pearson") or {}).get("value")
        main = f"pearson {'-' if r is None else f'{r:.3f}'}"
    else:
        main = run.get("detail") or ""
    drift = run.get("drift")
    if run.get("is_baseline"):
        verdict = "baseline"
    elif drift is None:
        verdict = "-"
    else:
        verdict = "DRIFT" if drift["drifted"] else "ok"
        verdict += f" (p={drift['p_value']:.2g}, {drift['worse']} worse, {drift['better']} better)"
    return (
        f"{run['created_at']}  {run['status']:7}  {run['trigger']:13}  "
        f"{run.get('judge_model') or '?'}  n={run['n']}  {main}  {verdict}"
    )


@click.group(cls=Group)
def canaries() -> None:
    """Judge drift canaries: freeze a rule's labelled runs, see each re-scoring, accept one."""


@canaries.command("create")
@http_options
@click.argument("rule_id")
@click.option("--size", type=int, default=100, show_default=True, help="How many canaries.")
@click.option(
    "--selection",
    type=click.Choice(["balanced", "newest", "random"]),
    default="balanced",
    show_default=True,
    help="Which labelled runs: as many failing as passing, the newest, or a seeded sample.",
)
@click.option("--interval-s", type=int, default=None, help="Seconds between re-scorings.")
@click.option("--replace", is_flag=True, help="Replace the rule's existing canary set.")
@api_errors
def canaries_create(
    endpoint: str,
    api_key: str | None,
    rule_id: str,
    size: int,
    selection: str,
    interval_s: int | None,
    replace: bool,
) -> None:
    """Freeze the runs people labelled on RULE_ID's judge key as its canary set (admin key)."""
    with Client(endpoint, api_key) as client:
        doc = client.create_canaries(
            rule_id, size=size, selection=selection, interval_s=interval_s, replace=replace
        )
    click.echo(
        f"canary set {doc['id']}: {doc['size']} {doc['kind']} canaries on key "
        f"{doc['judge_key']!r}; first run due {doc['next_due_at']}"
    )


@canaries.command("list")
@http_options
@click.option("--rule", "rule_id", default=None, help="Only this rule's set.")
@api_errors
def canaries_list(endpoint: str, api_key: str | None, rule_id: str | None) -> None:
    """One line per canary set: id, rule, size, key, its latest run."""
    with Client(endpoint, api_key) as client:
        for s in client.list_canary_sets(rule_id=rule_id):
            latest = s.get("latest_run")
            tail = run_line(latest) if latest else "no run yet"
            click.echo(
                f"{s['id']}  {s.get('rule_name') or s['rule_id']}  {s['size']} canaries  "
                f"key {s['judge_key']}  latest: {tail}"
            )


@canaries.command("runs")
@http_options
@click.argument("set_id")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The runs as JSON, with every figure.")
@api_errors
def canaries_runs(
    endpoint: str, api_key: str | None, set_id: str, limit: int, as_json: bool
) -> None:
    """The set's runs, newest first: judge model, agreement figures and the drift verdict."""
    with Client(endpoint, api_key) as client:
        runs = client.canary_runs(set_id, limit=limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2, sort_keys=True))
        return
    for run in runs:
        click.echo(run_line(run))
        drift = run.get("drift")
        if drift and not run.get("is_baseline"):
            click.echo(f"    {drift['reason']}")


@canaries.command("run")
@http_options
@click.argument("set_id")
@api_errors
def canaries_run(endpoint: str, api_key: str | None, set_id: str) -> None:
    """Queue a re-scoring of the set now (admin key)."""
    with Client(endpoint, api_key) as client:
        run = client.run_canaries(set_id)
    click.echo(f"canary run {run['id']} queued")


@canaries.command("accept")
@http_options
@click.argument("set_id")
@click.option("--run-id", default=None, help="The run to accept (default: the latest done).")
@api_errors
def canaries_accept(endpoint: str, api_key: str | None, set_id: str, run_id: str | None) -> None:
    """Make a run the baseline drift is measured against: the judge's new behaviour is wanted."""
    with Client(endpoint, api_key) as client:
        doc = client.accept_canary_baseline(set_id, run_id)
    click.echo(f"baseline of {doc['id']} is now run {doc['baseline_run_id']}")
