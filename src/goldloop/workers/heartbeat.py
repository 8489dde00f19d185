"""A worker process's heartbeat: its row in ``worker_heartbeats`` refreshed every
``worker_heartbeat_s``, with each loop's tick and error counts; marked stopped on a clean stop.
A process that dies (killed, out of memory, a hung host) stops refreshing it, and /metrics shows
it dead after ``worker_dead_after_s``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from goldloop.services import server_health
from goldloop.services.context import ServiceContext
from goldloop.workers.base import LoopWorker

log = logging.getLogger("goldloop.workers")


class Heartbeat:
    def __init__(self, ctx: ServiceContext, loops: Sequence[LoopWorker]) -> None:
        self.ctx = ctx
        self.identity = server_health.WorkerIdentity(started_at=ctx.clock())
        self._loops = loops
        self._loop = LoopWorker("heartbeat", self._tick, ctx.settings.worker_heartbeat_s)
        self._started = False

    def _stats(self) -> dict[str, dict[str, int]]:
        return {w.name: {"ticks": w.ticks, "errors": w.errors} for w in self._loops}

    def _tick(self) -> int:
        server_health.beat(self.ctx, self.identity, self._stats())
        return 0  # nothing "done": the loop waits worker_heartbeat_s for the next one

    def start(self) -> None:
        self._started = True
        self._loop.start()

    def flush(self) -> int:
        """Write a heartbeat now."""
        return self._loop.flush()

    def stop(self, timeout: float = 10.0) -> None:
        self._loop.stop(timeout)
        if not self._started:
            return
        self._started = False
        try:
            server_health.beat(self.ctx, self.identity, self._stats(), stopped=True)
        except Exception:  # the database may be the reason we stop: then we show as dead
            log.warning("could not record that worker %s stopped", self.identity.id)
