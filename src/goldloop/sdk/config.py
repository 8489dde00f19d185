"""SDK configuration: ``configure()`` arguments, else ``GOLDLOOP_*`` environment variables.

The environment is read once, when the SDK is configured (an explicit ``goldloop.configure()``,
or implicitly at the first traced call) — never at import and never per call. Every variable the
SDK reads is listed in ``ENV_VARS`` and documented in docs/sdk.md (a test checks both).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx is imported only when tracing is turned on (it is not light)
    import httpx

DEFAULT_ENDPOINT = "http://127.0.0.1:8700"
MAX_IN_FLIGHT = 64
MIN_BATCH_BYTES = 64 * 1024

# (config field, environment variable, type, default, meaning) — the single source for docs.
ENV_VARS: tuple[tuple[str, str, type, Any, str], ...] = (
    ("tracing", "GOLDLOOP_TRACING", bool, False, "Turn tracing on (`true`/`false`)."),
    ("endpoint", "GOLDLOOP_ENDPOINT", str, DEFAULT_ENDPOINT, "Base URL of the Goldloop server."),
    ("api_key", "GOLDLOOP_API_KEY", str, None, "API key sent as `x-api-key`."),
    ("project", "GOLDLOOP_PROJECT", str, "default", "Project name runs go to."),
    (
        "batch_size",
        "GOLDLOOP_EXPORT_BATCH_SIZE",
        int,
        256,
        "Runs per request; a full batch wakes the exporter early.",
    ),
    (
        "queue_size",
        "GOLDLOOP_EXPORT_QUEUE_SIZE",
        int,
        10_000,
        "Runs held in memory waiting to be sent; beyond it new runs are dropped and counted.",
    ),
    (
        "max_in_flight",
        "GOLDLOOP_EXPORT_MAX_IN_FLIGHT",
        int,
        4,
        "Most export requests in flight at once (1-64); while a backlog lasts the exporter "
        "keeps this many going, so it drains at the rate the server accepts.",
    ),
    (
        "max_batch_bytes",
        "GOLDLOOP_EXPORT_MAX_BATCH_BYTES",
        int,
        4 * 1024 * 1024,
        "Largest request body before compression; batches grow with the backlog up to it. "
        "Keep it at or below the server's `max_request_bytes` (32 MiB by default); a 413 "
        "answer halves it.",
    ),
    (
        "warn_interval_s",
        "GOLDLOOP_EXPORT_WARN_INTERVAL_S",
        float,
        60.0,
        "At most one warning per this many seconds about dropped runs (and one about other "
        "export errors); every drop is counted in `exporter_stats()`.",
    ),
    (
        "flush_interval_s",
        "GOLDLOOP_EXPORT_INTERVAL_S",
        float,
        1.0,
        "Seconds between sends when no batch fills up.",
    ),
    (
        "timeout_s",
        "GOLDLOOP_EXPORT_TIMEOUT_S",
        float,
        10.0,
        "Timeout of one request to the server.",
    ),
    (
        "retry_s",
        "GOLDLOOP_EXPORT_RETRY_S",
        float,
        30.0,
        "How long one batch is retried (429/503/5xx/connection errors) before it is dropped.",
    ),
    (
        "shutdown_timeout_s",
        "GOLDLOOP_SHUTDOWN_TIMEOUT_S",
        float,
        5.0,
        "At interpreter exit, how long the exporter may spend sending what is left.",
    ),
    ("gzip", "GOLDLOOP_EXPORT_GZIP", bool, True, "Compress request bodies with gzip."),
    (
        "capture_inputs",
        "GOLDLOOP_CAPTURE_INPUTS",
        bool,
        True,
        "Record function arguments as run inputs.",
    ),
    (
        "capture_outputs",
        "GOLDLOOP_CAPTURE_OUTPUTS",
        bool,
        True,
        "Record return values as run outputs.",
    ),
)

Hook = Callable[[dict[str, Any]], dict[str, Any]]
RunHook = Callable[[dict[str, Any]], dict[str, Any] | None]


class ConfigError(ValueError):
    """A configure() argument or GOLDLOOP_* variable has a value the SDK cannot use."""


@dataclass(frozen=True)
class SDKConfig:
    tracing: bool = False
    endpoint: str = DEFAULT_ENDPOINT
    api_key: str | None = None
    project: str = "default"
    batch_size: int = 256
    queue_size: int = 10_000
    max_in_flight: int = 4
    max_batch_bytes: int = 4 * 1024 * 1024
    warn_interval_s: float = 60.0
    flush_interval_s: float = 1.0
    timeout_s: float = 10.0
    retry_s: float = 30.0
    shutdown_timeout_s: float = 5.0
    gzip: bool = True
    capture_inputs: bool = True
    capture_outputs: bool = True
    redact_inputs: Hook | None = None
    redact_outputs: Hook | None = None
    process_run: RunHook | None = None
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = field(
        default=None, repr=False
    )
    # What chose ``endpoint`` ("configure(endpoint=...)", "GOLDLOOP_ENDPOINT" or "the default"),
    # for the messages that name the server the SDK could not reach.
    endpoint_source: str = "the default"

    def __repr__(self) -> str:  # never show the key
        key = "set" if self.api_key else "unset"
        return (
            f"SDKConfig(tracing={self.tracing}, endpoint={self.endpoint!r}, api_key=<{key}>, "
            f"project={self.project!r})"
        )


def _parse(name: str, kind: type, raw: str) -> Any:
    text = raw.strip()
    if kind is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}={raw!r}: expected true or false")
    if kind is int or kind is float:
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: expected a number") from None
        if value <= 0:
            raise ConfigError(f"{name}={raw!r}: must be positive")
        return value
    return text or None


def load_config(
    overrides: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> SDKConfig:
    """Arguments (not None) win over environment variables, which win over defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for fname, var, kind, _default, _help in ENV_VARS:
        if overrides.get(fname) is not None:
            values[fname] = overrides[fname]
        elif var in env:
            parsed = _parse(var, kind, env[var])
            if parsed is not None:
                values[fname] = parsed
    for fname in ("redact_inputs", "redact_outputs", "process_run", "transport"):
        if overrides.get(fname) is not None:
            values[fname] = overrides[fname]
    unknown = (
        set(overrides)
        - {f[0] for f in ENV_VARS}
        - set(values)
        - {
            "redact_inputs",
            "redact_outputs",
            "process_run",
            "transport",
        }
    )
    if unknown:
        raise ConfigError(f"unknown configure() option(s): {', '.join(sorted(unknown))}")
    if overrides.get("endpoint") is not None:
        values["endpoint_source"] = "configure(endpoint=...)"
    elif "endpoint" in values:
        values["endpoint_source"] = "GOLDLOOP_ENDPOINT"
    config = SDKConfig(**values)
    if config.batch_size > config.queue_size:
        raise ConfigError("batch_size must not exceed queue_size")
    if not 1 <= config.max_in_flight <= MAX_IN_FLIGHT:
        raise ConfigError(
            f"max_in_flight (GOLDLOOP_EXPORT_MAX_IN_FLIGHT) must be between 1 and "
            f"{MAX_IN_FLIGHT}, got {config.max_in_flight}"
        )
    if config.max_batch_bytes < MIN_BATCH_BYTES:
        raise ConfigError(
            f"max_batch_bytes (GOLDLOOP_EXPORT_MAX_BATCH_BYTES) must be at least "
            f"{MIN_BATCH_BYTES}, got {config.max_batch_bytes}"
        )
    if config.warn_interval_s <= 0:
        raise ConfigError(
            f"warn_interval_s (GOLDLOOP_EXPORT_WARN_INTERVAL_S) must be positive, "
            f"got {config.warn_interval_s}"
        )
    if not config.endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"endpoint must start with http:// or https://, got {config.endpoint!r}")
    return config
