"""Goldloop watching itself: the alert metrics that read the server's own state.

- ``workers_alive``: worker processes whose heartbeat is younger than ``worker_dead_after_s``
  (every worker of the server, whichever workspace asks: a count, nothing more);
- ``rule_backlog``: online-evaluation actions still pending for the workspace's rules (or for
  ``metric.rule_id`` alone);
- ``rule_backlog_age``: seconds since the oldest of those was queued (0 when none is pending).

They are gauges, read at the moment of evaluation from the database (heartbeat rows, pending
action rows), so they are right when every worker is dead. Because a dead worker cannot evaluate
the alert that reports it, the server process evaluates these rules too, and delivers their
notifications (``workers.watchdog``), whether or not it runs the workers itself.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from goldloop.domain.alerts import GAUGES, MetricSpec, WindowStats
from goldloop.domain.errors import InvalidInput
from goldloop.services.context import ServiceContext
from goldloop.store import rules as rule_store
from goldloop.store import server_health as health_store

__all__ = ["GAUGES", "check_metric", "measure"]


def check_metric(conn: Connection, workspace_id: str, spec: MetricSpec) -> None:
    """A backlog metric's ``rule_id`` must name a rule of the workspace; a gauge takes no feedback
    key and no run filter (it reads no runs)."""
    if spec.kind not in GAUGES:
        return
    for name, given in (("key", spec.key), ("filter", spec.filter)):
        if given:
            raise InvalidInput(
                f"metric {spec.kind} reads the server's state, not runs: it takes no {name}",
                details={"field": f"metric.{name}"},
            )
    if spec.rule_id is None:
        return
    if spec.kind == "workers_alive":
        raise InvalidInput(
            "metric workers_alive counts every worker of the server: it takes no rule_id",
            details={"field": "metric.rule_id"},
        )
    if rule_store.get_rule(conn, workspace_id, spec.rule_id) is None:
        raise InvalidInput(
            f"no rule with id {spec.rule_id!r} in this workspace",
            details={"field": "metric.rule_id"},
        )


def measure(ctx: ServiceContext, workspace_id: str, spec: MetricSpec, now: int) -> WindowStats:
    """The gauge's value now, as one reading (``n`` = 1)."""
    if spec.kind == "workers_alive":
        dead_after = int(ctx.settings.worker_dead_after_s * 1_000_000)
        beats = ctx.db.read(health_store.heartbeats)
        alive = sum(1 for b in beats if b.stopped_at is None and now - b.last_seen_at <= dead_after)
        return WindowStats(1, float(alive))
    backlog = [
        b
        for b in ctx.db.read(lambda c: health_store.rule_backlog(c, workspace_id))
        if spec.rule_id is None or b.rule_id == spec.rule_id
    ]
    if spec.kind == "rule_backlog":
        return WindowStats(1, float(sum(b.pending for b in backlog)))
    oldest = [b.oldest_pending_at for b in backlog if b.oldest_pending_at is not None]
    return WindowStats(1, max(0.0, (now - min(oldest)) / 1_000_000) if oldest else 0.0)
