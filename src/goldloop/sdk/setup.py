"""``configure()``, ``flush()``, ``shutdown()``, ``exporter_stats()`` and the exit hook."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from goldloop.sdk import tracing as _tracing
from goldloop.sdk.config import Hook, RunHook, SDKConfig, load_config

if TYPE_CHECKING:  # the exporter (and httpx) load only when tracing is turned on
    import httpx

    from goldloop.sdk.exporter import BatchExporter

log = logging.getLogger("goldloop.sdk")

_lock = threading.RLock()
_exporter: BatchExporter | None = None
_config: SDKConfig | None = None
_atexit_registered = False
_told_tracing_off = False


def configure(
    *,
    tracing: bool | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    project: str | None = None,
    batch_size: int | None = None,
    queue_size: int | None = None,
    max_in_flight: int | None = None,
    max_batch_bytes: int | None = None,
    warn_interval_s: float | None = None,
    flush_interval_s: float | None = None,
    timeout_s: float | None = None,
    retry_s: float | None = None,
    shutdown_timeout_s: float | None = None,
    gzip: bool | None = None,
    capture_inputs: bool | None = None,
    capture_outputs: bool | None = None,
    redact_inputs: Hook | None = None,
    redact_outputs: Hook | None = None,
    process_run: RunHook | None = None,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
    _clock: Callable[[], float] | None = None,
    _sleep: Callable[[float], None] | None = None,
) -> SDKConfig:
    """Set up tracing. Arguments left as ``None`` come from ``GOLDLOOP_*`` env vars, read now.

    Calling it again replaces the previous set-up (whatever was queued is flushed first, for at
    most one second). ``redact_inputs``/``redact_outputs`` get a copy of a run's inputs/outputs
    dict and return what may be sent; ``process_run`` gets the whole run item and returns it
    (changed or not) or ``None`` to drop it. Hooks run in the exporter thread, before anything
    leaves the process; when one raises, the data it guarded is not sent.
    """
    overrides: dict[str, Any] = {
        "tracing": tracing,
        "endpoint": endpoint,
        "api_key": api_key,
        "project": project,
        "batch_size": batch_size,
        "queue_size": queue_size,
        "max_in_flight": max_in_flight,
        "max_batch_bytes": max_batch_bytes,
        "warn_interval_s": warn_interval_s,
        "flush_interval_s": flush_interval_s,
        "timeout_s": timeout_s,
        "retry_s": retry_s,
        "shutdown_timeout_s": shutdown_timeout_s,
        "gzip": gzip,
        "capture_inputs": capture_inputs,
        "capture_outputs": capture_outputs,
        "redact_inputs": redact_inputs,
        "redact_outputs": redact_outputs,
        "process_run": process_run,
        "transport": transport,
    }
    config = load_config(overrides, environ)
    extra: dict[str, Any] = {}
    if _clock is not None:
        extra["clock"] = _clock
    if _sleep is not None:
        extra["sleep"] = _sleep
    _install(config, **extra)
    return config


def configure_from_env() -> None:
    """The implicit set-up at the first traced call; a bad variable turns tracing off."""
    with _lock:
        if _config is not None:
            return
        try:
            config = load_config({})
        except ValueError as exc:
            log.warning("goldloop: tracing stays off: %s", exc)
            config = SDKConfig(tracing=False)
        _install(config)


def _quiet_tracing_off_notice() -> None:
    """For the `goldloop` CLI: there GOLDLOOP_ENDPOINT and GOLDLOOP_API_KEY name the server the
    command talks to, not one the process should trace to, so tracing off is no news."""
    global _told_tracing_off
    _told_tracing_off = True


def _tracing_off_notice(config: SDKConfig) -> None:
    """Once per process: a server is configured but tracing is off, so nothing will be sent."""
    global _told_tracing_off
    if config.tracing or _told_tracing_off:
        return
    configured = [
        name
        for name, given in (
            (f"endpoint {config.endpoint}", config.endpoint_source != "the default"),
            ("an API key", config.api_key is not None),
        )
        if given
    ]
    if configured:
        _told_tracing_off = True
        log.warning(
            "goldloop: tracing is off, so nothing is sent (%s configured, but GOLDLOOP_TRACING "
            "is not true): set GOLDLOOP_TRACING=true or call goldloop.configure(tracing=True)",
            " and ".join(configured),
        )


def _install(config: SDKConfig, **exporter_args: Any) -> None:
    global _exporter, _config, _atexit_registered
    with _lock:
        old = _exporter
        _tracing._set_sink(None)
        _exporter = None
        _config = config
        if old is not None:
            old.shutdown(1.0)
        if config.tracing:
            from goldloop.sdk.exporter import BatchExporter

            exporter = BatchExporter(config, **exporter_args)
            exporter.start()
            _exporter = exporter
            _tracing._capture_defaults(config.capture_inputs, config.capture_outputs)
            _tracing._set_sink(exporter)
        _tracing_off_notice(config)
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True


def flush(timeout: float = 10.0) -> bool:
    """Send everything traced so far; True when done within ``timeout`` seconds."""
    exporter = _exporter
    return True if exporter is None else exporter.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop the exporter (also done at interpreter exit); tracing is off afterwards."""
    global _exporter
    with _lock:
        exporter = _exporter
        _tracing._set_sink(None)
        _exporter = None
    if exporter is None:
        return True
    return exporter.shutdown(exporter.config.shutdown_timeout_s if timeout is None else timeout)


def exporter_stats() -> dict[str, Any]:
    """Counters of the exporter: enqueued, exported, dropped_* (by cause), retries, queue_depth…
    with ``tracing: True``; when tracing is off, ``tracing: False`` and ``reason``, why."""
    exporter = _exporter
    if exporter is not None:
        return {"tracing": True, **exporter.stats()}
    config = _config
    if config is None:
        reason = "not configured yet: the first traced call reads GOLDLOOP_* (GOLDLOOP_TRACING)"
    elif config.tracing:
        reason = "shut down: goldloop.shutdown() was called (configure() starts it again)"
    else:
        reason = "GOLDLOOP_TRACING is not true (or configure(tracing=False) was called)"
    return {"tracing": False, "reason": reason}


def current_config() -> SDKConfig | None:
    return _config


def _at_exit() -> None:
    try:
        shutdown()
    except Exception:  # never make interpreter exit fail
        log.exception("goldloop: error while flushing at exit")
