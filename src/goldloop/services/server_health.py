"""The server reporting on itself: worker heartbeats, and the Prometheus exposition of /metrics.

Worker liveness and the rule backlog come from the database (heartbeat rows, pending action
rows), so they are right when every worker is dead; request and ingest counters come from this
process's ``Telemetry`` (``ctx.telemetry``). A workspace's admin sees its own rules by name; the
metrics port (the operator's, see docs/self-hosting.md) sees every workspace's, labelled with
the workspace id.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from goldloop._version import __version__
from goldloop.domain.telemetry import DURATION_BUCKETS_S, Exposition, Telemetry
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import server_health as store

KEEP_STOPPED_S = 24 * 3600
"""Rows of workers that stopped cleanly are deleted after a day."""
KEEP_DEAD_S = 7 * 24 * 3600
"""Rows of workers silent for a week are deleted (until then they show as dead)."""

__all__ = ["WorkerIdentity", "beat", "exposition", "oldest_pending_ages", "worker_states"]


@dataclass(frozen=True)
class WorkerIdentity:
    """One worker process: host, pid, and a random part (a pid is reused across restarts)."""

    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: int = 0
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def id(self) -> str:
        return f"{self.host[:80]}:{self.pid}:{self.nonce}"


def beat(
    ctx: ServiceContext,
    worker: WorkerIdentity,
    loops: Mapping[str, Mapping[str, Any]],
    *,
    stopped: bool = False,
) -> None:
    """Record that ``worker`` is alive now (or, ``stopped``, that it stopped cleanly)."""
    now = ctx.clock()
    row = {
        "id": worker.id,
        "host": worker.host[:200],
        "pid": worker.pid,
        "version": __version__,
        "started_at": worker.started_at or now,
        "last_seen_at": now,
        "stopped_at": now if stopped else None,
        "loops": {name: dict(stats) for name, stats in loops.items()},
    }

    def write(conn: Any) -> None:
        store.beat(conn, row)
        store.forget_before(conn, now - KEEP_STOPPED_S * 1_000_000, now - KEEP_DEAD_S * 1_000_000)

    ctx.db.write(write)


@dataclass(frozen=True)
class WorkerState:
    heartbeat: store.Heartbeat
    state: str
    """alive, dead (no heartbeat for worker_dead_after_s) or stopped (stopped cleanly)."""
    silent_s: float


def worker_states(ctx: ServiceContext) -> list[WorkerState]:
    now = ctx.clock()
    dead_after_us = ctx.settings.worker_dead_after_s * 1_000_000
    out = []
    for hb in ctx.db.read(store.heartbeats):
        silent = max(0, now - hb.last_seen_at)
        if hb.stopped_at is not None:
            state = "stopped"
        else:
            state = "alive" if silent <= dead_after_us else "dead"
        out.append(WorkerState(hb, state, silent / 1_000_000))
    return out


def _requests(out: Exposition, telemetry: Telemetry) -> None:
    snap = telemetry.snapshot()
    out.family(
        "goldloop_http_requests_total",
        "counter",
        "HTTP requests answered by this server process, by method, route template and status.",
    )
    for (method, route, status), n in sorted(snap.requests.items()):
        out.sample(
            "goldloop_http_requests_total", n, {"method": method, "route": route, "status": status}
        )
    name = "goldloop_http_request_duration_seconds"
    out.family(name, "histogram", "Time to answer HTTP requests, by method and route template.")
    for (method, route), (count, total, buckets) in sorted(snap.durations.items()):
        labels = {"method": method, "route": route}
        for bound, n in zip(DURATION_BUCKETS_S, buckets, strict=True):
            out.sample(f"{name}_bucket", n, {**labels, "le": repr(bound)})
        out.sample(f"{name}_bucket", count, {**labels, "le": "+Inf"})
        out.sample(f"{name}_sum", total, labels)
        out.sample(f"{name}_count", count, labels)
    out.family(
        "goldloop_ingest_runs_total",
        "counter",
        "Runs written by ingestion (native, OTLP, LangSmith) in this server process; "
        "rate() of it is runs per second.",
    )
    out.sample("goldloop_ingest_runs_total", snap.ingested_runs)
    out.family(
        "goldloop_ingest_rejected_total",
        "counter",
        "Ingestion requests refused, by reason (overloaded, too_large, invalid, ...).",
    )
    for reason, n in sorted(snap.ingest_rejections.items()):
        out.sample("goldloop_ingest_rejected_total", n, {"reason": reason})
    out.family(
        "goldloop_redactions_total",
        "counter",
        "Values replaced by PII redaction at ingest in this server process, by detector "
        "(email, phone, card, iban, ip, secret; every custom rule counts as custom).",
    )
    for detector, n in sorted(snap.redactions.items()):
        out.sample("goldloop_redactions_total", n, {"detector": detector})


def _database(out: Exposition, ctx: ServiceContext) -> None:
    out.family("goldloop_write_queue_depth", "gauge", "Writes waiting for the SQLite writer.")
    out.sample("goldloop_write_queue_depth", ctx.db.write_queue_depth)
    stats = ctx.db.pool_stats()
    if stats:
        out.family("goldloop_db_pool_size", "gauge", "Connections the database pool keeps.")
        out.sample("goldloop_db_pool_size", stats["size"])
        out.family(
            "goldloop_db_pool_connections",
            "gauge",
            "Pool connections by state: in_use, idle, and overflow (in use beyond the size).",
        )
        for state, key in (("in_use", "checked_out"), ("idle", "idle"), ("overflow", "overflow")):
            out.sample("goldloop_db_pool_connections", stats[key], {"state": state})


def _workers(out: Exposition, ctx: ServiceContext) -> None:
    states = worker_states(ctx)
    out.family(
        "goldloop_worker_up",
        "gauge",
        "1 while a worker process heart-beats, 0 once silent for worker_dead_after_s "
        "(cleanly stopped workers are not listed).",
    )
    for w in states:
        if w.state != "stopped":
            hb = w.heartbeat
            labels = {"worker": hb.id, "host": hb.host, "pid": str(hb.pid)}
            out.sample("goldloop_worker_up", 1 if w.state == "alive" else 0, labels)
    out.family(
        "goldloop_worker_last_seen_seconds",
        "gauge",
        "Seconds since each worker process's last heartbeat.",
    )
    for w in states:
        if w.state != "stopped":
            out.sample("goldloop_worker_last_seen_seconds", round(w.silent_s, 3),
                       {"worker": w.heartbeat.id})  # fmt: skip
    out.family("goldloop_workers", "gauge", "Worker processes by state: alive, dead, stopped.")
    for state in ("alive", "dead", "stopped"):
        out.sample("goldloop_workers", sum(w.state == state for w in states), {"state": state})


def oldest_pending_ages(ctx: ServiceContext, who: Principal) -> list[tuple[str, str, float]]:
    """(rule id, rule name, age in seconds of its oldest pending action, 0 when none) for the
    caller's workspace, from the database."""
    now = ctx.clock()
    return [
        (b.rule_id, b.name, _age(now, b.oldest_pending_at))
        for b in ctx.db.read(lambda c: store.rule_backlog(c, who.workspace_id))
    ]


def _age(now: int, at: int | None) -> float:
    return round(max(0, now - at) / 1_000_000, 3) if at is not None else 0.0


def _backlog(out: Exposition, ctx: ServiceContext, workspace_id: str | None) -> None:
    now = ctx.clock()
    everyone = ctx.db.read(lambda c: store.rule_backlog(c, None))
    mine = [b for b in everyone if workspace_id is None or b.workspace_id == workspace_id]

    def age(at: int | None) -> float:
        return _age(now, at)

    def labels(b: store.RuleBacklog) -> dict[str, str]:
        own = {"rule_id": b.rule_id, "rule": b.name}
        return own if workspace_id is not None else {"workspace_id": b.workspace_id, **own}

    out.family(
        "goldloop_rule_pending_actions",
        "gauge",
        "Actions queued and not yet done, per rule (from the database).",
    )
    for b in mine:
        out.sample("goldloop_rule_pending_actions", b.pending, labels(b))
    out.family(
        "goldloop_rule_oldest_pending_age_seconds",
        "gauge",
        "Age of the rule's oldest pending action, 0 when none (from the database: it keeps "
        "growing when no worker runs).",
    )
    for b in mine:
        out.sample("goldloop_rule_oldest_pending_age_seconds", age(b.oldest_pending_at), labels(b))
    oldest = [b.oldest_pending_at for b in everyone if b.oldest_pending_at is not None]
    out.family("goldloop_actions_pending", "gauge", "Pending rule actions of the whole server.")
    out.sample("goldloop_actions_pending", sum(b.pending for b in everyone))
    out.family(
        "goldloop_actions_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest pending rule action of the whole server, 0 when none.",
    )
    out.sample("goldloop_actions_oldest_pending_age_seconds", age(min(oldest) if oldest else None))


def exposition(ctx: ServiceContext, who: Principal | None) -> str:
    """The /metrics text. ``who``: a workspace admin (its own rules by name), or None for the
    operator's metrics port (every workspace's rules, with a workspace_id label)."""
    out = Exposition()
    out.family("goldloop_build_info", "gauge", "The running Goldloop version.")
    out.sample("goldloop_build_info", 1, {"version": __version__})
    _requests(out, ctx.telemetry)
    _database(out, ctx)
    _workers(out, ctx)
    _backlog(out, ctx, who.workspace_id if who is not None else None)
    return out.text()
