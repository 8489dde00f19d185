"""The rule action runner of one worker: a pool of threads, leases renewed while it lives.

Each ``tick`` records what finished, claims due actions for the free threads (when half of them
are free, or none is busy, or a thread has been free for ``WAIT_S``), fairly between rules
(``rule_actions.claim``), and waits briefly for one to finish. The deterministic online
evaluations of a claim (``rule_actions.batchable``) run together in batches of up to
``BATCH_MAX``, each batch's scores stored in one transaction (``rule_actions.run_many``), on
``BATCH_THREADS`` threads of their own (one batch is evaluated while another waits on the
database; more would only contend for the interpreter with the rule tailer); every other action
(a judge call, a webhook) runs on a thread of its own. A thread is one claim slot, and so is a
batch: behind a backlog of deterministic evaluations a claim takes up to ``BATCH_MAX`` of them per
free slot, so the claims, transactions and commits per action fall as the backlog grows.
Outcomes are recorded in one transaction per tick. A heartbeat thread renews the leases of every
action the runner holds every fifth of ``rule_action_lease_s``, so a judge call
slower than the lease is never started a second time by another worker; when the process dies
the heartbeat stops with it, and its actions are due again one lease later.

The runner's evaluators share one HTTP transport (``rule_evaluators.SharedTransport``), built on
the first judge request and closed by :meth:`ActionRunner.close`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from goldloop.services import rule_actions
from goldloop.services.context import ServiceContext
from goldloop.services.rule_evaluators import SharedTransport

log = logging.getLogger("goldloop.workers")

Row = dict[str, Any]
# How long a tick waits for a running action to finish before it returns (the loop then calls
# it again at once): bounds how long stop() waits for the loop.
WAIT_S = 0.2
# Leases are renewed this many times per lease, so a few missed beats do not lose one.
BEATS_PER_LEASE = 5
# A claim's batchable actions (deterministic online evaluations) run in batches of at most
# BATCH_MAX (one thread each), and in two when there are fewer than 2 * BATCH_MAX, each of at
# least BATCH_MIN.
BATCH_MIN = 4
BATCH_MAX = 32
# Threads that perform the batches (the others queue for them, holding their slot).
BATCH_THREADS = 2


def _batches(together: list[rule_actions.Claimed]) -> list[list[rule_actions.Claimed]]:
    """The batches to perform a claim's batchable actions in: at least two (one is evaluated
    while the other waits on the database), at most ``BATCH_MAX`` actions each. The rules take
    turns in them (one action of each, then the next of each), so a rule with a few actions is
    in the first batch, not queued behind another rule's backlog."""
    size = min(BATCH_MAX, max(BATCH_MIN, (len(together) + 1) // 2))
    per_rule: dict[str, list[rule_actions.Claimed]] = {}
    for claimed in together:
        per_rule.setdefault(str(claimed.action["rule_id"]), []).append(claimed)
    turns = itertools.zip_longest(*per_rule.values())
    order = [c for turn in turns for c in turn if c is not None]
    return [order[i : i + size] for i in range(0, len(order), size)]


def _run_one(ctx: ServiceContext, claimed: rule_actions.Claimed) -> list[Row]:
    return [rule_actions.run(ctx, claimed)]


class ActionRunner:
    def __init__(self, ctx: ServiceContext, *, threads: int | None = None) -> None:
        # DNS through the caller's context at send time, as every other outgoing request does
        self.transport = SharedTransport(ctx.settings, lambda host, port: ctx.resolve(host, port))
        self.ctx = dataclasses.replace(ctx, evaluator_transport=self.transport)
        self.owner = rule_actions.new_owner()
        self.threads = threads or ctx.settings.rule_action_threads
        self._pool: ThreadPoolExecutor | None = None
        self._batch_pool: ThreadPoolExecutor | None = None
        # each future performs one action, or a batch of them (``rule_actions.run_many``)
        self._running: dict[Future[list[Row]], list[rule_actions.Claimed]] = {}
        self._held: set[int] = set()
        self._held_lock = threading.Lock()
        self._write_lock = threading.Lock()  # a renewal and a finish of ours never overlap
        self._unrecorded: list[tuple[Row, Row]] = []
        self._beat: threading.Thread | None = None
        self._closing = threading.Event()
        self._turn = 0
        self._claimed_at = 0.0
        self.claimed = 0
        self.finished = 0
        self.renewals = 0
        self.lost = 0

    @property
    def in_flight(self) -> int:
        """Actions claimed and not finished yet."""
        return sum(len(batch) for batch in self._running.values())

    @property
    def busy(self) -> int:
        """Threads at work: one per action or batch of actions running."""
        return len(self._running)

    def held(self) -> list[int]:
        """The pks of the actions this runner holds the lease of."""
        with self._held_lock:
            return sorted(self._held)

    def tick(self) -> int:
        """One round (see the module docstring); returns the work done, 0 only when idle."""
        done = self._collect()
        claimed = 0
        free = self.threads - self.busy
        now = time.monotonic()
        # Claim in batches (half the threads) while actions finish quickly, but never leave a
        # free thread idle longer than WAIT_S: behind slow judge calls, the next action of a
        # cheap rule waits for one free thread, not for half of them.
        batch = free * 2 >= self.threads or not self._running or now - self._claimed_at >= WAIT_S
        if free > 0 and batch and not self._closing.is_set():
            self._claimed_at = now
            claimed = self._claim(free)
        if not self._running:
            return done + claimed
        wait(list(self._running), timeout=WAIT_S, return_when=FIRST_COMPLETED)
        done += self._collect()
        return max(1, done + claimed)  # still busy: come back at once

    def flush(self) -> int:
        """Run ticks until every due action is done; returns how many were attempted."""
        total = 0
        while (n := self.tick()) > 0:
            total += n
        return total

    def close(self, timeout: float = 10.0) -> None:
        """Claim nothing more, let running actions finish (up to ``timeout``), record them,
        stop the heartbeat and close the shared transport. Actions still running after the
        timeout keep their leases until those end; those not started by then are given back
        (due at once for any worker)."""
        self._closing.set()
        if self._running:
            wait(list(self._running), timeout=timeout)
            self._collect()
        if self._beat is not None:
            self._beat.join(timeout)
            self._beat = None
        for pool in (self._pool, self._batch_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._batch_pool = None
        unstarted = [c for f, part in self._running.items() if f.cancelled() for c in part]
        if unstarted:
            try:
                rule_actions.release(self.ctx, self.owner, [int(c.action["pk"]) for c in unstarted])
            except Exception as exc:  # the database is away: they come back after the lease
                log.warning(
                    "worker %s: releasing %d rule action(s) failed: %r",
                    self.owner,
                    len(unstarted),
                    exc,
                )
        self.transport.shutdown()

    def _claim(self, free: int) -> int:
        batch = rule_actions.claim(self.ctx, self.owner, free, turn=self._turn, batch=BATCH_MAX)
        self._turn += 1
        if not batch:
            return 0
        with self._held_lock:
            self._held.update(int(c.action["pk"]) for c in batch)
        self._start_heartbeat()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="goldloop-action")
        if self._batch_pool is None:
            self._batch_pool = ThreadPoolExecutor(
                BATCH_THREADS, thread_name_prefix="goldloop-batch"
            )
        together = [c for c in batch if rule_actions.batchable(c)]
        for part in _batches(together):
            future = self._batch_pool.submit(rule_actions.run_many, self.ctx, part)
            self._running[future] = part
        for claimed in batch:
            if not rule_actions.batchable(claimed):
                future = self._pool.submit(_run_one, self.ctx, claimed)
                self._running[future] = [claimed]
        self.claimed += len(batch)
        return len(batch)

    def _collect(self) -> int:
        """Record the outcomes of the actions that finished (one transaction). If that fails
        (the database is away), the outcomes are kept, their leases still renewed, and the next
        tick tries again: a finished action is never left to be run a second time."""
        finished = [f for f in self._running if f.done()]
        for future in finished:
            claimed = self._running.pop(future)
            exc = future.exception()
            if exc is not None:  # run() records handler errors itself; this is a bug
                log.error("rule action(s) %s: %r", [c.action["pk"] for c in claimed], exc)
                failed: Row = {"status": "failed", "detail": {"reason": repr(exc)[:500]}}
                outcomes = [{**failed, "updated_at": self.ctx.clock()} for _ in claimed]
            else:
                outcomes = future.result()
            self._unrecorded += [(c.action, o) for c, o in zip(claimed, outcomes, strict=True)]
        if not self._unrecorded:
            return 0
        results = sorted(self._unrecorded, key=lambda r: int(r[0]["pk"]))
        with self._write_lock:  # never beside a renewal of the same rows (lock order)
            recorded = rule_actions.finish(self.ctx, self.owner, results)
            self._unrecorded = []
            with self._held_lock:
                self._held.difference_update(int(a["pk"]) for a, _ in results)
        self.finished += recorded
        self.lost += len(results) - recorded
        return len(results)

    def _start_heartbeat(self) -> None:
        if self._beat is None or not self._beat.is_alive():
            self._beat = threading.Thread(
                target=self._heartbeat, name="goldloop-action-leases", daemon=True
            )
            self._beat.start()

    def _heartbeat(self) -> None:
        interval = self.ctx.settings.rule_action_lease_s / BEATS_PER_LEASE
        while not self._closing.wait(interval):
            try:
                with self._write_lock:  # the held set only grows meanwhile (new claims)
                    pks = self.held()
                    if not pks:
                        continue
                    lost = set(pks) - rule_actions.renew(self.ctx, self.owner, pks)
            except Exception as exc:  # the database is away: try again on the next beat
                log.warning(
                    "worker %s: renewing %d lease(s) failed: %s",
                    self.owner,
                    len(pks),
                    type(exc).__name__,
                )
                continue
            self.renewals += 1
            if lost:
                log.warning(
                    "worker %s: the lease of %d rule action(s) was lost", self.owner, len(lost)
                )
