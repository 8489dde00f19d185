"""The server process's watch over the workers: evaluate the self-watch alert rules and deliver
notifications, so that "every worker is dead" still pages someone.

``goldloop serve`` runs it on a thread whether or not it runs the workers itself (see
``services.self_watch``). Evaluating a rule is claimed per tick, and a delivery is leased, so the
workers' own alert and delivery loops and any number of servers can run beside it.
"""

from __future__ import annotations

import httpx

from goldloop.services import alerts, deliveries, self_watch
from goldloop.services.context import ServiceContext
from goldloop.workers.base import LoopWorker


class Watchdog:
    def __init__(self, ctx: ServiceContext, *, http: httpx.Client | None = None) -> None:
        self.ctx = ctx
        # As the workers' client: no proxies from the environment (see services.outbound).
        self.http = http or httpx.Client(follow_redirects=False, trust_env=False)
        self.loop = LoopWorker("watchdog", self.tick, ctx.settings.watchdog_interval_s)

    def tick(self) -> int:
        """Evaluate the due self-watch rules, then send what is due. Returns the work done."""
        evaluated = len(alerts.evaluate_due(self.ctx, kinds=self_watch.GAUGES))
        report = deliveries.dispatch_due(self.ctx, self.http)
        return evaluated + report.sent + report.retrying + report.failed

    def start(self) -> None:
        self.loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.loop.stop(timeout)
        self.http.close()
