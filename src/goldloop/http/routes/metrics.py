"""/api/v1/metrics: Prometheus text exposition of the workspace's automation health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from goldloop.http.deps import Ctx, Who
from goldloop.services import rules as rule_service
from goldloop.services import server_health

router = APIRouter(tags=["metrics"])


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(ctx: Ctx, who: Who) -> PlainTextResponse:
    """Rule lag, backlog (and its oldest action's age) and counters, and the write queue
    depth, for a Prometheus scrape (send the API key as a bearer token). The server's own
    health (workers, requests, ingest) is on /metrics, for an admin key."""
    lines = [
        "# HELP goldloop_rule_lag_seconds Ingest to action done, for the rule's latest action.",
        "# TYPE goldloop_rule_lag_seconds gauge",
    ]
    samples: dict[str, list[str]] = {"lag": [], "pending": [], "processed": [], "failed": []}
    for rule in rule_service.list_rules(ctx, who):
        detail = rule_service.get_rule(ctx, who, rule["id"])
        labels = f'rule_id="{_label(rule["id"])}",rule="{_label(rule["name"])}"'
        if detail.get("last_lag_ms") is not None:
            samples["lag"].append(
                f"goldloop_rule_lag_seconds{{{labels}}} {detail['last_lag_ms'] / 1000}"
            )
        outcomes = detail["outcomes"]
        samples["pending"].append(
            f"goldloop_rule_pending_actions{{{labels}}} {outcomes.get('pending', 0)}"
        )
        samples["failed"].append(
            f"goldloop_rule_failed_actions_total{{{labels}}} {outcomes.get('failed', 0)}"
        )
        samples["processed"].append(
            f"goldloop_rule_processed_total{{{labels}}} {detail['processed']}"
        )
    lines += samples["lag"]
    lines += [
        "# HELP goldloop_rule_pending_actions Actions queued and not yet done (the backlog).",
        "# TYPE goldloop_rule_pending_actions gauge",
        *samples["pending"],
        "# HELP goldloop_rule_oldest_pending_age_seconds Age of the rule's oldest pending action, "
        "0 when none (from the database: it keeps growing while no worker runs).",
        "# TYPE goldloop_rule_oldest_pending_age_seconds gauge",
        *(
            f'goldloop_rule_oldest_pending_age_seconds{{rule_id="{_label(rid)}",'
            f'rule="{_label(name)}"}} {age}'
            for rid, name, age in server_health.oldest_pending_ages(ctx, who)
        ),
        "# HELP goldloop_rule_failed_actions_total Actions that failed after their retries.",
        "# TYPE goldloop_rule_failed_actions_total counter",
        *samples["failed"],
        "# HELP goldloop_rule_processed_total Objects the rule's tailer has read.",
        "# TYPE goldloop_rule_processed_total counter",
        *samples["processed"],
        "# HELP goldloop_write_queue_depth Writes waiting for the SQLite writer.",
        "# TYPE goldloop_write_queue_depth gauge",
        f"goldloop_write_queue_depth {ctx.db.write_queue_depth}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
