"""The set of loops a Goldloop worker runs, built from one ServiceContext."""

from __future__ import annotations

import httpx

from goldloop.services import alerts, canaries, deliveries, rules

# The built-in action handlers register themselves on import.
from goldloop.services import rule_handlers  # noqa: F401  # isort: skip
from goldloop.services import canary_runs  # noqa: F401  # isort: skip
from goldloop.services.context import ServiceContext
from goldloop.services.retention import RetentionWorker
from goldloop.services.rollups import RollupWorker
from goldloop.workers.actions import ActionRunner
from goldloop.workers.base import LoopWorker
from goldloop.workers.heartbeat import Heartbeat


class Workers:
    """Rule tailing, rule actions, alert evaluation, notification delivery, retention and the
    hourly rollups of runs."""

    def __init__(self, ctx: ServiceContext, *, http: httpx.Client | None = None) -> None:
        self.ctx = ctx
        # No proxies from the environment: every request is sent to the address that
        # services.outbound checked against outbound_allowed_hosts.
        self.http = http or httpx.Client(follow_redirects=False, trust_env=False)
        poll = ctx.settings.worker_poll_s
        self.rules = LoopWorker("rules", self._tail, poll)
        # rule actions: a pool of threads, its leases renewed while it lives (workers.actions)
        self.action_runner = ActionRunner(ctx)
        self.actions = LoopWorker("actions", self.action_runner.tick, poll)
        self.alerts = LoopWorker("alerts", lambda: len(alerts.evaluate_due(ctx)), poll)
        self.deliveries = LoopWorker("deliveries", self._deliver, poll)
        self.retention = LoopWorker("retention", RetentionWorker(ctx).tick, poll)
        self.rollups = LoopWorker("rollups", RollupWorker(ctx).tick, poll)
        self.loops = [
            self.rules,
            self.actions,
            self.alerts,
            self.deliveries,
            self.retention,
            self.rollups,
        ]
        self.heartbeat = Heartbeat(ctx, self.loops)  # this process's liveness row

    def _tail(self) -> int:
        queued = rules.tail_once(self.ctx) + canaries.schedule_due(self.ctx)
        if queued:  # new actions: the action loop need not wait out its poll
            self.actions.wake()
        return queued

    def _deliver(self) -> int:
        report = deliveries.dispatch_due(self.ctx, self.http)
        return report.sent + report.retrying + report.failed

    def start(self) -> None:
        for loop in self.loops:
            loop.start()
        self.heartbeat.start()

    def flush(self) -> int:
        return sum(loop.flush() for loop in self.loops)

    def stop(self, timeout: float = 10.0) -> None:
        for loop in self.loops:
            loop.stop(timeout)
        self.action_runner.close(timeout)
        self.heartbeat.stop(timeout)
        self.http.close()
