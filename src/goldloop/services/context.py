"""What every service needs: the database, the settings and a clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from goldloop.domain.clock import Clock, system_clock
from goldloop.domain.telemetry import Telemetry
from goldloop.services.outbound import Resolver, system_resolver
from goldloop.settings import Settings
from goldloop.store.database import Database

if TYPE_CHECKING:
    from goldloop.services.comparison_cache import StampedCache
    from goldloop.services.experiment_results import SideParts
    from goldloop.services.ingest_pool import IngestPool
    from goldloop.services.redaction import RedactorCache


def _side_cache() -> StampedCache[SideParts]:
    from goldloop.services.comparison_cache import StampedCache

    return StampedCache()


def _redactor_cache() -> RedactorCache:
    from goldloop.services.redaction import RedactorCache

    return RedactorCache()


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of one workspace. Every service call is scoped by it."""

    workspace_id: str
    key_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class ServiceContext:
    db: Database
    settings: Settings
    clock: Clock = field(default=system_clock)
    resolve: Resolver = field(default=system_resolver)
    """DNS for outgoing requests (checked against ``outbound_allowed_hosts``)."""
    ingest_pool: IngestPool | None = None
    """Worker processes that decode OTLP requests (``ingest_processes``); None: in process."""
    telemetry: Telemetry = field(default_factory=Telemetry)
    """This process's request and ingest counters (for /metrics)."""
    evaluator_transport: httpx.BaseTransport | None = None
    """The guarded HTTP transport a worker's rule evaluators share (one connection pool and
    TLS context per worker, see ``rule_evaluators.SharedTransport``); None: each evaluator
    builds its own."""
    redactors: RedactorCache = field(default_factory=_redactor_cache)
    """Each workspace's compiled PII redaction, cached for ``redaction_cache_s``."""
    comparison_sides: StampedCache[SideParts] = field(default_factory=_side_cache)
    """Experiments as the comparison read them, kept while their runs and scores are unchanged
    (``services.comparison_cache``)."""
