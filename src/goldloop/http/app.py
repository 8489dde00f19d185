"""``create_app(settings)``: the one ASGI application."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from goldloop._version import __version__
from goldloop.domain.clock import Clock, system_clock
from goldloop.domain.otel import decode as otel_decode
from goldloop.http import api_docs, dashboard, errors, langsmith
from goldloop.http.deps import get_principal
from goldloop.http.ingest_gate import IngestGateMiddleware, ingest_paths
from goldloop.http.langsmith.misrouted import MisroutedLangSmithMiddleware
from goldloop.http.limits import BodyBudget, BodyLimitMiddleware
from goldloop.http.metrics_port import MetricsPort
from goldloop.http.observability import ObservabilityMiddleware
from goldloop.http.request_guard import RequestGuardMiddleware
from goldloop.http.routes import (
    alerts,
    alignment,
    annotation_queues,
    attachments,
    canaries,
    dataset_files,
    datasets,
    examples,
    experiments,
    feedback,
    ingest_runs,
    metrics,
    otlp,
    pairwise_reviews,
    projects,
    redaction,
    retention,
    rules,
    run_queries,
    server_metrics,
    threads,
    trace_export,
)
from goldloop.services import auth, ingest, payload_compression
from goldloop.services.context import ServiceContext
from goldloop.services.ingest_pool import IngestPool, NewRunSettings
from goldloop.settings import Settings
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.workers.service_loops import Workers
from goldloop.workers.watchdog import Watchdog

log = logging.getLogger("goldloop.server")

API_PREFIX = "/api/v1"


def _api_router() -> APIRouter:
    """Every /api/v1 route; each one requires an API key."""
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(get_principal)])
    api.include_router(projects.router)
    api.include_router(feedback.router)
    api.include_router(alignment.router)
    api.include_router(pairwise_reviews.router)
    api.include_router(annotation_queues.router)
    api.include_router(ingest_runs.router)
    api.include_router(trace_export.router)
    api.include_router(alerts.router)
    api.include_router(datasets.router)
    api.include_router(examples.router)
    api.include_router(run_queries.router)
    api.include_router(threads.router)
    api.include_router(dataset_files.router)
    api.include_router(rules.router)
    api.include_router(canaries.router)
    api.include_router(metrics.router)
    api.include_router(experiments.router)
    api.include_router(attachments.router)
    api.include_router(retention.router)
    api.include_router(redaction.router)
    return api


@cache
def freeze_startup_objects() -> None:
    """Collect what start-up left as garbage, then freeze the rest (setting ``gc_freeze``):
    the collector's full passes, which a request building tens of thousands of rows triggers,
    then walk only what requests made, not the hundreds of thousands of objects the process
    keeps for its life. Frozen objects are never collected, so this runs once per process
    (``cache``), at the first start: a second app in the same process (tests, a benchmark)
    does not freeze what the first one left behind."""
    gc.collect()
    gc.freeze()
    log.info("garbage collector: %d start-up objects frozen", gc.get_freeze_count())


def create_app(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    db = Database(
        settings.effective_database_url,
        write_batch_max=settings.write_batch_max,
        write_queue_max=settings.write_queue_max,
    )
    pool = None
    if settings.ingest_processes > 0:
        new_runs = NewRunSettings(settings.max_run_payload_bytes, settings.model_prices_file)
        pool = IngestPool(
            settings.ingest_processes,
            new_runs=new_runs,
            c_decoder=settings.otlp_c_decoder,
            malloc_tuning=settings.malloc_tuning,
        )
    ctx = ServiceContext(db=db, settings=settings, clock=clock, ingest_pool=pool)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(start, ctx)
        c_decoder = settings.otlp_c_decoder and otel_decode.c_decode_trace_request is not None
        log.info("OTLP protobuf decoder: %s", "C" if c_decoder else "generated protobuf classes")
        workers = Workers(ctx) if settings.workers_in_process else None
        if workers is not None:
            workers.start()
        app.state.workers = workers
        # Self-watch alerts and deliveries from this process too: dead workers must still page.
        watchdog = Watchdog(ctx) if settings.watchdog_interval_s > 0 else None
        if watchdog is not None:
            watchdog.start()
        metrics_port = None
        if settings.metrics_port:
            metrics_port = MetricsPort(ctx, settings.metrics_host, settings.metrics_port)
            metrics_port.start()
        app.state.metrics_port = metrics_port
        otlp_grpc = None
        if settings.otlp_grpc:  # imported here: grpc loads only where it is used
            from goldloop.http.otlp_grpc import OtlpGrpcReceiver

            otlp_grpc = OtlpGrpcReceiver(ctx, settings.host, settings.otlp_grpc_port)
            otlp_grpc.start()
        app.state.otlp_grpc = otlp_grpc
        if settings.gc_freeze:
            freeze_startup_objects()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            log.info("shutting down: stopping workers, finishing in-flight writes")
            if otlp_grpc is not None:  # its calls in progress finish their writes first
                await run_in_threadpool(otlp_grpc.stop, settings.shutdown_timeout_s)
            if metrics_port is not None:
                await run_in_threadpool(metrics_port.stop)
            if watchdog is not None:
                await run_in_threadpool(watchdog.stop, settings.shutdown_timeout_s)
            if workers is not None:
                await run_in_threadpool(workers.stop, settings.shutdown_timeout_s)
            if pool is not None:  # no request is in flight any more: nothing is left to decode
                await run_in_threadpool(pool.close)
            await run_in_threadpool(db.close, settings.shutdown_timeout_s)

    app = FastAPI(
        title="Goldloop",
        version=__version__,
        summary="Traces, feedback, golden datasets, experiments, online evaluation and alerts.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by api_docs, from the package, under the dashboard's CSP
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.ready = False
    errors.install(app)
    api_docs.install(app, docs_url=f"{API_PREFIX}/docs", openapi_url=f"{API_PREFIX}/openapi.json")
    # innermost: read each body within its size, the process's byte budget and a deadline
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        public_max_bytes=settings.max_public_request_bytes,
        budget=BodyBudget(settings.max_body_bytes_in_flight),
        timeout_s=settings.body_timeout_s,
        min_rate=settings.body_min_rate,
    )
    # refuse ingestion beyond the bound before the body limit reads any body
    app.add_middleware(
        IngestGateMiddleware,
        max_inflight=settings.ingest_max_inflight,
        paths=ingest_paths(settings.otlp_path_prefix),
    )
    # the API key, from the headers, before a request takes an ingest slot or a body byte
    app.add_middleware(
        RequestGuardMiddleware,
        ctx=ctx,
        otlp_prefix=settings.otlp_path_prefix,
        max_per_client=settings.max_unauthenticated_per_client,
    )
    app.add_middleware(MisroutedLangSmithMiddleware)  # the LangSmith SDK without /langsmith
    # outermost: a request id, a duration, a log line and a count for every request
    app.add_middleware(
        ObservabilityMiddleware,
        telemetry=ctx.telemetry,
        ingest_paths=ingest_paths(settings.otlp_path_prefix)
        | {f"{p}/runs{s}" for p in langsmith.PREFIXES for s in ("", "/batch", "/multipart")},
    )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers; and the Goldloop version it runs."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Readiness: migrations applied, database reachable, writer running."""
        if not app.state.ready:
            return errors.error_response(503, "starting", "the server is starting")
        try:
            db.read(lambda c: c.exec_driver_sql("SELECT 1").scalar())
        except Exception as exc:  # the database is away: not ready, say why
            return errors.error_response(503, "database_unavailable", type(exc).__name__)
        return JSONResponse(
            {"status": "ready", "database": db.dialect, "write_queue_depth": db.write_queue_depth}
        )

    dashboard.install(app)  # the static assets
    app.include_router(_routes(settings.otlp_path_prefix))
    return app


@cache
def _routes(otlp_path_prefix: str) -> APIRouter:
    """Every route but the few above that belong to one app, built once per process and shared
    by every app made in it: FastAPI works out an included router's routes (dependencies,
    parameters, models) once per router, which took ~1 s per app, and tests make hundreds."""
    router = APIRouter()
    router.include_router(_api_router())
    router.include_router(attachments.signed_router)  # signed URLs: no API key
    router.include_router(server_metrics.router)  # /metrics: an admin key (or the metrics port)
    router.include_router(otlp.router)
    if otlp_path_prefix:
        router.include_router(otlp.router, prefix=otlp_path_prefix)
    router.include_router(dashboard.pages())
    for prefix in langsmith.PREFIXES:
        router.include_router(langsmith.router(), prefix=prefix)
    router.include_router(langsmith.v2_router(), prefix=langsmith.V2_PREFIX)
    return router


def start(ctx: ServiceContext) -> None:
    """Migrate, start the writer, and bootstrap an empty instance."""
    ctx.settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(ctx.db.engine)
    ingest.price_table(ctx)  # a broken model_prices_file fails the start, not each request
    ctx.db.start()
    payload_compression.start(ctx)
    if ctx.settings.bootstrap:
        key = auth.bootstrap(ctx)
        if key is not None:
            announce_bootstrap_key(key.secret, str(ctx.settings.admin_key_path))
        elif not ctx.settings.admin_key_path.exists():
            # Another server (or an earlier start elsewhere) created the first admin key: say
            # where it is and how to make another, instead of leaving the operator guessing.
            print(
                f"Goldloop: this database already has its admin key; it is not in "
                f"{ctx.settings.admin_key_path} but in the admin-key file of the server that "
                "started first. Or create one here: goldloop keys create --role admin "
                "(with the same --database-url).",
                flush=True,
            )


def announce_bootstrap_key(secret: str, path: str) -> None:
    # Printed to the terminal once, deliberately not logged: log files must never hold secrets.
    print(
        "\nGoldloop: created the default workspace and its admin API key, saved in "
        f"{path} (mode 0600); this is the only time it is printed:\n"
        f"    {secret}\n",
        flush=True,
    )
