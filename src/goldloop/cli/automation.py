"""`goldloop rules ...` and `goldloop alerts ...`: automation on a running server over HTTP."""

from __future__ import annotations

import json
from typing import Any

import click

from goldloop.cli.groups import Group
from goldloop.cli.remote import api_errors, http_options
from goldloop.client import Client


def _show(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


@click.group(cls=Group)
def rules() -> None:
    """Automation rules: create, list, enable/disable, delete, history, backfill."""


@rules.command("list")
@http_options
@click.option("--project-id", default=None, help="Only this project's rules.")
@api_errors
def rules_list(endpoint: str, api_key: str | None, project_id: str | None) -> None:
    """One line per rule: id, state, trigger, sample rate, lag, outcomes, name."""
    with Client(endpoint, api_key) as client:
        for r in client.list_rules(project_id):
            state = "enabled" if r["enabled"] else "paused"
            outcomes = " ".join(f"{k}={v}" for k, v in sorted(r["outcomes"].items())) or "-"
            lag = "-" if r["lag_ms"] is None else f"{r['lag_ms']}ms"
            click.echo(
                f"{r['id']}  {state:7}  {r['trigger']:8}  {r['sample_rate']:.2f}  "
                f"lag {lag:>8}  {outcomes}  {r['name']}"
            )


@rules.command("show")
@http_options
@click.argument("rule_id")
@api_errors
def rules_show(endpoint: str, api_key: str | None, rule_id: str) -> None:
    """The rule as JSON, with its status, watermark and lag."""
    with Client(endpoint, api_key) as client:
        _show(client.get_rule(rule_id))


@rules.command("create")
@http_options
@click.argument("file", type=click.File("r"))
@api_errors
def rules_create(endpoint: str, api_key: str | None, file: Any) -> None:
    """Create a rule from a JSON file (or - for stdin) holding the body of POST /api/v1/rules."""
    try:
        body = json.load(file)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{file.name} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise click.UsageError(f"{file.name} must hold a JSON object")
    with Client(endpoint, api_key) as client:
        try:
            rule = client.create_rule(**body)
        except TypeError as exc:
            raise click.UsageError(f"{file.name}: {exc}") from None
    click.echo(rule["id"])
    if any(a.get("type") == "webhook" for a in rule.get("actions") or []):
        click.echo(
            f"webhook signing secret (shown once; verify with goldloop.webhooks.verify): "
            f"{rule.get('signing_secret')}",
            err=True,
        )


def _set_enabled(endpoint: str, api_key: str | None, rule_id: str, enabled: bool) -> None:
    with Client(endpoint, api_key) as client:
        rule = client.set_rule_enabled(rule_id, enabled)
    click.echo(f"{rule['id']} {'enabled' if rule['enabled'] else 'paused'}")


@rules.command("enable")
@http_options
@click.argument("rule_id")
@api_errors
def rules_enable(endpoint: str, api_key: str | None, rule_id: str) -> None:
    """Resume a paused rule from where it stopped in the run log."""
    _set_enabled(endpoint, api_key, rule_id, True)


@rules.command("disable")
@http_options
@click.argument("rule_id")
@api_errors
def rules_disable(endpoint: str, api_key: str | None, rule_id: str) -> None:
    """Pause a rule (it keeps its place in the run log)."""
    _set_enabled(endpoint, api_key, rule_id, False)


@rules.command("delete")
@http_options
@click.argument("rule_id")
@api_errors
def rules_delete(endpoint: str, api_key: str | None, rule_id: str) -> None:
    """Delete a rule and its action history."""
    with Client(endpoint, api_key) as client:
        client.delete_rule(rule_id)
    click.echo(f"deleted {rule_id}")


@rules.command("history")
@http_options
@click.argument("rule_id")
@click.option("--status", type=click.Choice(["pending", "done", "failed", "skipped"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@api_errors
def rules_history(
    endpoint: str, api_key: str | None, rule_id: str, status: str | None, limit: int
) -> None:
    """The rule's latest actions with their outcome, newest first."""
    with Client(endpoint, api_key) as client:
        for a in client.rule_history(rule_id, status=status, limit=limit):
            detail = json.dumps(a["detail"], sort_keys=True) if a["detail"] else ""
            click.echo(
                f"{a['updated_at']}  {a['status']:7}  {a['action_type']:14}  {a['object_id']}  "
                f"{detail}"
            )


@rules.command("backfill")
@http_options
@click.argument("rule_id")
@click.option("--start", required=True, help="ISO-8601 start of the run start-time range.")
@click.option("--end", required=True, help="ISO-8601 end (exclusive).")
@api_errors
def rules_backfill(endpoint: str, api_key: str | None, rule_id: str, start: str, end: str) -> None:
    """Apply a rule to past runs; runs it already handled are not handled again."""
    with Client(endpoint, api_key) as client:
        res = client.backfill_rule(rule_id, start, end)
    click.echo(f"scanned {res['runs_scanned']} runs, queued {res['runs_queued']}")


@click.group(cls=Group)
def alerts() -> None:
    """Alert rules: list, events, acknowledge."""


@alerts.command("list")
@http_options
@click.option("--project-id", default=None, help="Only this project's alert rules.")
@api_errors
def alerts_list(endpoint: str, api_key: str | None, project_id: str | None) -> None:
    """One line per alert rule: id, state, metric, last evaluation, name."""
    with Client(endpoint, api_key) as client:
        for a in client.list_alert_rules(project_id):
            reason = (a["last_evaluation"] or {}).get("reason", "not evaluated yet")
            click.echo(
                f"{a['id']}  {a['state']:6}  {a['metric']['kind']:18}  {reason}  {a['name']}"
            )


@alerts.command("events")
@http_options
@click.argument("alert_rule_id")
@api_errors
def alerts_events(endpoint: str, api_key: str | None, alert_rule_id: str) -> None:
    """Fired, acknowledged and resolved events with their numbers."""
    with Client(endpoint, api_key) as client:
        for e in client.alert_events(alert_rule_id):
            click.echo(f"{e['at']}  {e['kind']:12}  {e['reason']}")


@alerts.command("ack")
@http_options
@click.argument("alert_rule_id")
@click.option("--by", required=True, help="Who takes the alert.")
@api_errors
def alerts_ack(endpoint: str, api_key: str | None, alert_rule_id: str, by: str) -> None:
    """Acknowledge a firing alert."""
    with Client(endpoint, api_key) as client:
        rule = client.acknowledge_alert(alert_rule_id, by)
    click.echo(f"{rule['id']} acknowledged by {rule['acknowledged_by']}")


def _estimate(est: dict[str, Any] | None, percent: bool = True) -> str:
    if not est or est.get("value") is None:
        return "-"

    def fmt(x: float) -> str:
        return f"{x * 100:.1f}%" if percent else f"{x:.3f}"

    return f"{fmt(est['value'])} [{fmt(est['low'])}, {fmt(est['high'])}] n={est['n']}"


def alignment_text(doc: dict[str, Any]) -> list[str]:
    """The alignment report as lines a person reads (the CLI's default output)."""
    head = (
        f"judge key {doc['judge_key']!r} vs people's {doc['human_key']!r}: "
        f"{doc['n']} runs scored by both ({doc['judged_runs']} judged, "
        f"{doc['labelled_runs']} labelled)"
    )
    lines = [head]
    a = doc.get("alignment")
    if a is None:
        lines.append("no run carries both a judge score and a person's label")
        return lines
    if a["kind"] == "binary":
        c = a["confusion"]
        lines += [
            f"TPR       {_estimate(a['tpr'])}   (judge passes what people pass)",
            f"TNR       {_estimate(a['tnr'])}   (judge fails what people fail)",
            f"accuracy  {_estimate(a['accuracy'])}",
            f"kappa     {_estimate(a['kappa'], percent=False)}",
            "confusion             people pass  people fail",
            f"  judge pass  {c['judge_pass_human_pass']:>20}  {c['judge_pass_human_fail']:>11}",
            f"  judge fail  {c['judge_fail_human_pass']:>20}  {c['judge_fail_human_fail']:>11}",
        ]
    else:
        lines += [
            f"pearson   {_estimate(a['pearson'], percent=False)}",
            f"spearman  {a['spearman'] if a['spearman'] is None else round(a['spearman'], 3)}",
            f"mean difference (judge - people) {a['mean_difference']:.4f}",
        ]
    rate = doc.get("pass_rate")
    if rate:
        corrected = rate["corrected"]
        lines.append(f"judge pass rate       {_estimate(rate['raw'])}")
        lines.append(
            f"corrected pass rate   {_estimate(corrected)}"
            if corrected.get("value") is not None
            else f"corrected pass rate   - ({rate['reason']})"
        )
    if len(doc["by_judge"]) > 1:
        lines.append("per judge:")
        for j in doc["by_judge"]:
            who = " ".join(f"{k}={j[k]}" for k in ("evaluator", "model", "prompt_hash") if j[k])
            fig = j["alignment"]
            main = fig.get("kappa") if fig["kind"] == "binary" else fig.get("pearson")
            label = "kappa" if fig["kind"] == "binary" else "pearson"
            lines.append(f"  {who or 'unknown'}: {label} {_estimate(main, percent=False)}")
    if doc["disagreements_total"]:
        lines.append(f"{doc['disagreements_total']} disagreement(s), largest first:")
        for d in doc["disagreements"][:10]:
            lines.append(
                f"  run {d['run_id']} trace {d['trace_id']}: "
                f"judge {d['judge_score']:g}, people {d['human_score']:g}"
            )
    return lines


@click.command("judge-alignment")
@http_options
@click.option("--judge-key", required=True, help="The feedback key the judge writes.")
@click.option("--human-key", default=None, help="The key people label (default: the same).")
@click.option("--rule", "rule_id", default=None, help="Only this online rule's judge scores.")
@click.option("--evaluator", default=None, help="Only this evaluator's scores.")
@click.option("--project-id", default=None, help="Only runs of this project.")
@click.option("--since", default=None, help="Feedback created at or after (ISO or µs).")
@click.option("--until", default=None, help="Feedback created before (ISO or µs).")
@click.option(
    "--threshold",
    type=float,
    default=0.5,
    show_default=True,
    help="A judge score at or above this passes (pass/fail keys).",
)
@click.option("--include-api", is_flag=True, help="Count source=api feedback as people's too.")
@click.option("--json", "as_json", is_flag=True, help="The whole report as JSON.")
@api_errors
def judge_alignment(
    endpoint: str,
    api_key: str | None,
    judge_key: str,
    human_key: str | None,
    rule_id: str | None,
    evaluator: str | None,
    project_id: str | None,
    since: str | None,
    until: str | None,
    threshold: float,
    include_api: bool,
    as_json: bool,
) -> None:
    """How far a judge agrees with people: TPR, TNR and kappa with 95% intervals (or
    correlations), per judge model and prompt, the disagreements, and the corrected pass rate."""
    with Client(endpoint, api_key) as client:
        doc = client.judge_alignment(
            judge_key,
            human_key=human_key,
            rule_id=rule_id,
            evaluator=evaluator,
            project_id=project_id,
            since=since,
            until=until,
            threshold=threshold,
            include_api=include_api,
        )
    if as_json:
        _show(doc)
        return
    for line in alignment_text(doc):
        click.echo(line)
