"""Notification bodies for each channel kind, built from one alert event (pure).

- ``webhook``: Goldloop's own JSON document (documented in docs/alerts.md);
- ``slack``: a Slack-compatible incoming-webhook body (``text`` plus ``blocks``);
- ``pagerduty``: a PagerDuty Events API v2 event (``trigger`` / ``resolve`` sharing one
  ``dedup_key`` per alert rule, so PagerDuty folds them into one incident).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHANNEL_KINDS = ("webhook", "slack", "pagerduty")


@dataclass(frozen=True, slots=True)
class AlertNotice:
    alert_rule_id: str
    alert_name: str
    project_name: str
    event: str  # fired | resolved
    at_iso: str
    reason: str
    numbers: dict[str, Any]
    worst_runs: list[dict[str, str]]  # [{"id", "url"}]
    alert_url: str


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary(n: AlertNotice) -> str:
    verb = "FIRING" if n.event == "fired" else "resolved"
    return f"[Goldloop] {verb}: {n.alert_name} on {n.project_name}: {n.reason}"


def webhook_body(n: AlertNotice) -> dict[str, Any]:
    return {
        "type": "goldloop.alert",
        "event": n.event,
        "alert": {"id": n.alert_rule_id, "name": n.alert_name, "url": n.alert_url},
        "project": n.project_name,
        "at": n.at_iso,
        "reason": n.reason,
        "numbers": n.numbers,
        "worst_runs": n.worst_runs,
        "summary": summary(n),
    }


def slack_body(n: AlertNotice) -> dict[str, Any]:
    nums = n.numbers
    facts = (
        f"*now* {_fmt(nums.get('value'))} over {_fmt(nums.get('samples'))} samples · "
        f"*baseline* {_fmt(nums.get('baseline'))} over {_fmt(nums.get('baseline_samples'))} · "
        f"*p* {_fmt(nums.get('p_value'))}"
    )
    runs = "\n".join(f"• <{r['url']}|{r['id']}>" for r in n.worst_runs[:5]) or "none"
    return {
        "text": summary(n),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{summary(n)}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": facts}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Worst runs:\n{runs}"}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{n.alert_url}|Open alert>"}],
            },
        ],
    }


def pagerduty_body(n: AlertNotice, routing_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if n.event == "fired" else "resolve",
        "dedup_key": f"goldloop-alert-{n.alert_rule_id}",
    }
    if n.event == "fired":
        body["payload"] = {
            "summary": summary(n)[:1024],
            "source": f"goldloop/{n.project_name}",
            "severity": "error",
            "timestamp": n.at_iso,
            "custom_details": {"reason": n.reason, **n.numbers},
        }
        body["links"] = [{"href": n.alert_url, "text": "Goldloop alert"}] + [
            {"href": r["url"], "text": f"run {r['id']}"} for r in n.worst_runs[:5]
        ]
    return body


def body_for(kind: str, notice: AlertNotice, secret: str | None) -> dict[str, Any]:
    if kind == "slack":
        return slack_body(notice)
    if kind == "pagerduty":
        return pagerduty_body(notice, secret or "")
    return webhook_body(notice)
