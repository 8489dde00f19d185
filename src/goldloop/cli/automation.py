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
