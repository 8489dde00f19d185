"""The one settings object of the Goldloop server.

Built once at the edge (the CLI or ``create_app``) from, in order of precedence: explicit
arguments, ``GOLDLOOP_*`` environment variables, defaults. Frozen and passed down; nothing else
in the server reads the environment. Every field carries its documentation, and
``docs/configuration.md`` is generated from it (a test checks the file is current).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goldloop.domain.outbound import AllowList
from goldloop.domain.redaction import parse_builtins

ENV_PREFIX = "GOLDLOOP_"
LANGSMITH_INGEST_MODES = ("batch", "multipart", "multipart-zstd")
SECRET_SETTINGS = ("judge_api_key", "redaction_hash_key")
"""Settings that are credentials: never logged, printed as ``***``."""


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


def _doc(help_text: str, env: bool = True) -> dict[str, Any]:
    return {"help": help_text, "env": env}


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = field(
        default=Path(".goldloop"),
        metadata=_doc(
            "Directory for the embedded SQLite database and the bootstrap admin key file."
        ),
    )
    database_url: str = field(
        default="",
        metadata=_doc(
            "SQLAlchemy-style database URL. Empty means SQLite at DATA_DIR/goldloop.db. "
            "Use postgresql://user@host:5432/db for PostgreSQL (driver psycopg 3)."
        ),
    )
    host: str = field(default="127.0.0.1", metadata=_doc("Interface `goldloop serve` binds."))
    port: int = field(default=8700, metadata=_doc("TCP port `goldloop serve` listens on."))
    workers_in_process: bool = field(
        default=True,
        metadata=_doc(
            "Run background workers (rules, online evaluation, alerts) inside the server process."
        ),
    )
    max_request_bytes: int = field(
        default=32 * 1024 * 1024,
        metadata=_doc(
            "Largest accepted request body in bytes, after decompression; larger bodies get 413."
        ),
    )
    max_run_payload_bytes: int = field(
        default=1024 * 1024,
        metadata=_doc(
            "Largest inputs or outputs of one run, as JSON bytes. A larger field is stored "
            "truncated to this size with a marker saying so (never silently cut)."
        ),
    )
    ingest_max_inflight: int = field(
        default=64,
        metadata=_doc(
            "Most ingestion requests (OTLP /v1/traces and /v1/logs, /api/v1/runs/batch) a "
            "server process handles at once; beyond it they get 503 with Retry-After before "
            "their bodies are read, which bounds the memory they hold."
        ),
    )
    max_body_bytes_in_flight: int = field(
        default=128 * 1024 * 1024,
        metadata=_doc(
            "Most bytes of request bodies the server process holds at once, summed over every "
            "request; a request whose body would go beyond it gets 503 with Retry-After. It "
            "bounds the memory bodies take (see docs/self-hosting.md)."
        ),
    )
    max_public_request_bytes: int = field(
        default=1024 * 1024,
        metadata=_doc(
            "Largest body of a request that presents no API key (dashboard forms, sign-in; a "
            "correction pasted in the dashboard can be long); larger get 413. Paths that need "
            "a key answer 401 before reading any body byte."
        ),
    )
    header_timeout_s: float = field(
        default=10.0,
        metadata=_doc(
            "Seconds a client has to send a request's headers, from opening the connection (or "
            "the request's first byte on a kept-alive one); then 408 and the connection closes."
        ),
    )
    body_timeout_s: float = field(
        default=10.0,
        metadata=_doc(
            "A request body must arrive within this many seconds, plus one second for every "
            "`body_min_rate` bytes received; a body that falls behind gets 408 and the "
            "connection closes."
        ),
    )
    body_min_rate: int = field(
        default=16 * 1024,
        metadata=_doc(
            "Bytes per second a request body must keep up on average (after `body_timeout_s` "
            "of grace)."
        ),
    )
    max_unauthenticated_per_client: int = field(
        default=32,
        metadata=_doc(
            "Per client address: most connections still sending their headers, and most "
            "requests without an API key reading a body or having their key checked. A new "
            "connection beyond it is closed at once, a request beyond it gets 429."
        ),
    )
    otlp_path_prefix: str = field(
        default="",
        metadata=_doc(
            "Also serve the OTLP receiver under this prefix (e.g. `/otel` for "
            "`/otel/v1/traces`), for exporters configured with a full traces endpoint of another "
            "backend. The standard `/v1/traces` and `/v1/logs` are always served."
        ),
    )
    otlp_grpc: bool = field(
        default=False,
        metadata=_doc(
            "Also receive OTLP traces over gRPC (`TraceService/Export`, what exporters send "
            "with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`) on `otlp_grpc_port` of `host`: the same "
            "API key, limits, mapping and durability as OTLP/HTTP. Off by default: 4317 is "
            "also the port of an OpenTelemetry Collector on the same machine, and a second "
            "server would fail to start. Plain text: terminate TLS in a proxy."
        ),
    )
    otlp_grpc_port: int = field(
        default=4317,
        metadata=_doc(
            "TCP port of the OTLP/gRPC receiver when `otlp_grpc` is on (0: any free port, "
            "logged at start)."
        ),
    )
    otlp_grpc_deadline_s: float = field(
        default=30.0,
        metadata=_doc(
            "Most seconds an OTLP/gRPC call may take once it has its slot (receiving its "
            "message, decoding, the durable write); a client's own shorter deadline applies "
            "as sent. Past it the call is cancelled and the exporter retries."
        ),
    )
    model_prices_file: str = field(
        default="",
        metadata=_doc(
            "Path of a JSON file of model prices (USD per million input, output, cache_read and "
            "cache_write tokens) laid over the built-in table used to compute run cost at "
            'ingest; format: {"models": {"gpt-4o": {"input": 2.5, "output": 10}}}.'
        ),
    )
    log_level: str = field(
        default="info",
        metadata=_doc("Log level of the server: debug, info, warning or error."),
    )
    log_format: str = field(
        default="text",
        metadata=_doc(
            "`text` (one readable line per event) or `json` (one JSON object per line with "
            "`ts`, `level`, `logger`, `message` and, for requests, `request_id`, `method`, "
            "`route`, `status` and `duration_ms`). API keys and secrets are never logged."
        ),
    )
    metrics_port: int = field(
        default=0,
        metadata=_doc(
            "Also serve the operator's /metrics, without an API key and for every workspace, "
            "on this port of `metrics_host` (0: off; /metrics on the main port needs an admin "
            "key and shows that workspace's rules). See docs/self-hosting.md."
        ),
    )
    metrics_host: str = field(
        default="127.0.0.1",
        metadata=_doc(
            "Interface of the metrics port. Anyone who reaches it reads the metrics: keep it "
            "on a private interface."
        ),
    )
    worker_heartbeat_s: float = field(
        default=10.0,
        metadata=_doc(
            "Seconds between the heartbeats each worker process writes to the database "
            "(`goldloop worker`, or the server's in-process workers)."
        ),
    )
    worker_dead_after_s: float = field(
        default=60.0,
        metadata=_doc(
            "A worker process without a heartbeat for this many seconds shows as dead in "
            "/metrics (`goldloop_worker_up` 0). Must be more than `worker_heartbeat_s`."
        ),
    )
    watchdog_interval_s: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds between the server process's own evaluations of the self-watch alert "
            "rules (`workers_alive`, `rule_backlog`, `rule_backlog_age`) and deliveries of due "
            "notifications, done even with `--no-workers`, so that dead workers still page. "
            "0 turns it off."
        ),
    )
    write_batch_max: int = field(
        default=512,
        metadata=_doc(
            "SQLite only: most write requests the single writer commits in one transaction."
        ),
    )
    write_queue_max: int = field(
        default=2048,
        metadata=_doc(
            "Most write requests waiting for the database; beyond it the API answers 503 "
            "with Retry-After instead of growing memory without limit."
        ),
    )
    ingest_processes: int = field(
        default=2,
        metadata=_doc(
            "Worker processes that decode ingestion requests (OTLP traces, native run "
            "batches), map their spans and encode new runs for the insert, beside the server "
            "process (started on the first such request). Everything but HTTP and the "
            "database write moves there, so ingestion can use other cores; two were faster "
            "than one even on 2 cores, each costs ~65 MiB. 0 keeps it all in the server "
            "process (the better choice on a single core)."
        ),
    )
    malloc_tuning: bool = field(
        default=True,
        metadata=_doc(
            "Linux with glibc: have the allocator of the server and its ingest worker processes "
            "keep freed memory for the next request (up to 64 MiB free at the heap top, blocks "
            "up to 32 MiB from the heap, one arena) instead of returning it to the kernel and "
            "faulting it in again on every request. Less system CPU per ingested span; the "
            "cost is memory kept after a burst. false keeps glibc's defaults."
        ),
    )
    gc_freeze: bool = field(
        default=True,
        metadata=_doc(
            "Once the server has started, move every object alive then (modules, the route "
            "tree, templates, the database engine) out of reach of Python's cyclic garbage "
            "collector (gc.freeze), so its full collections during a large page or batch no "
            "longer walk them: about a quarter less CPU on an experiment comparison of 6,000 "
            "runs. false leaves the collector as Python sets it."
        ),
    )
    payload_compression: bool = field(
        default=True,
        metadata=_doc(
            "SQLite: store runs' inputs, outputs and extra of 200 bytes or more as zstd frames "
            "compressed with a dictionary trained on the database's own runs (once it holds "
            "1,000; kept in the database). false writes them as JSON text; compressed values "
            "keep reading either way. PostgreSQL compresses them itself (lz4 TOAST)."
        ),
    )
    otlp_c_decoder: bool = field(
        default=True,
        metadata=_doc(
            "Decode OTLP protobuf trace requests with the C decoder built at install "
            "(goldloop._otlp_wire; about 5x faster than the generated protobuf classes, which "
            "give the same records). false uses the generated classes. Without a C compiler at "
            "install there is no C decoder and this is ignored."
        ),
    )
    shutdown_timeout_s: float = field(
        default=15.0,
        metadata=_doc("Seconds a graceful shutdown waits for in-flight writes to finish."),
    )
    dashboard_session_ttl_s: int = field(
        default=12 * 3600,
        metadata=_doc(
            "Seconds a dashboard sign-in stays valid; after that the browser must sign in again "
            "with an API key. Revoking the key ends its sessions at once."
        ),
    )
    dashboard_secure_cookie: bool = field(
        default=False,
        metadata=_doc(
            "Always mark dashboard cookies Secure (HTTPS only). Set it when a TLS-terminating "
            "proxy sits in front of Goldloop; requests that arrive over https get Secure anyway."
        ),
    )
    public_url: str = field(
        default="",
        metadata=_doc(
            "Base URL people use to reach this server, for links in alert notifications and "
            "webhooks. Empty means http://HOST:PORT."
        ),
    )
    delivery_max_attempts: int = field(
        default=8,
        metadata=_doc(
            "Attempts per outgoing notification (alert channels, rule webhooks) before it is "
            "marked failed. Retries back off exponentially (2 s doubling, at most 5 min) and "
            "honour Retry-After."
        ),
    )
    delivery_timeout_s: float = field(
        default=10.0,
        metadata=_doc("Seconds one notification attempt may take before it counts as failed."),
    )
    worker_poll_s: float = field(
        default=1.0,
        metadata=_doc(
            "Seconds between polls of the in-process or `goldloop worker` loops (rules, "
            "alerts, deliveries) when they find nothing to do."
        ),
    )
    rule_action_lease_s: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds a worker's claim on a rule action lasts. A live worker renews its claims "
            "every fifth of this, however long an action takes; the claims of a worker that "
            "died come back to the other workers after this long."
        ),
    )
    rule_action_threads: int = field(
        default=16,
        metadata=_doc(
            "Rule actions one worker process (or the in-process workers) runs at once: enough "
            "to keep slow judge calls from holding up a rule's other actions."
        ),
    )
    retention_batch_runs: int = field(
        default=2000,
        metadata=_doc(
            "Retention: the most runs the worker reads and deletes in one transaction (one "
            "batch per project per tick), so deleting expired runs never locks the runs table "
            "for long. See docs/self-hosting.md."
        ),
    )
    retention_interval_s: float = field(
        default=300.0,
        metadata=_doc(
            "Retention: seconds between the end of one pass over a project's expired runs and "
            "the start of the next."
        ),
    )
    redaction_builtins: str = field(
        default="",
        metadata=_doc(
            "PII redaction for every workspace without a redaction configuration of its own: "
            "the built-in detectors to apply, `all` or a comma-separated list of email, phone, "
            "card, iban, ip, secret. Empty: nothing is redacted unless a workspace sets it. "
            "See docs/security.md."
        ),
    )
    redaction_mode: str = field(
        default="placeholder",
        metadata=_doc(
            "How `redaction_builtins` replaces a value: `placeholder` (`<EMAIL>`) or `hash` "
            "(`<EMAIL:3f9a12bc>`, a keyed hash: needs `redaction_hash_key`)."
        ),
    )
    redaction_hash_key: str = field(
        default="",
        metadata=_doc(
            "Secret key of redaction's hash mode (HMAC-SHA256): equal values get equal hashes, "
            "which cannot be reversed without it. Keep it stable: a new key makes new hashes. "
            "Never logged or returned."
        ),
    )
    redaction_cache_s: float = field(
        default=10.0,
        metadata=_doc(
            "Seconds each server process keeps a workspace's compiled redaction configuration; "
            "a change made through another process applies within this time."
        ),
    )
    bootstrap: bool = field(
        default=True,
        metadata=_doc(
            "On first start of an empty instance, create the default workspace and an admin "
            "API key, print it once and write it to DATA_DIR/admin-key (mode 0600)."
        ),
    )

    outbound_allowed_hosts: str = field(
        default="*",
        metadata=_doc(
            "Where the server may send requests for alert channels, rule webhooks and "
            "server-side judges: comma-separated host names (`hooks.slack.com`), `*.suffix` "
            "patterns, addresses and CIDR blocks (`10.0.0.0/8`); `*` is any host. Checked when a "
            "URL is saved and after DNS resolution when sending. Link-local and cloud metadata "
            "addresses (169.254.0.0/16, fe80::/10, ...) are refused unless a CIDR entry names "
            "them. See docs/security.md."
        ),
    )
    judge_base_url: str = field(
        default="",
        metadata=_doc(
            "Server-side LLM judges (rule `evaluate` actions): the OpenAI-compatible endpoint "
            "(up to, not including, /chat/completions) used when a rule's judge names no "
            "base_url. The same variable configures local judges (`goldloop gate`)."
        ),
    )
    judge_model: str = field(
        default="",
        metadata=_doc("Server-side LLM judges: the model used when a rule's judge names none."),
    )
    judge_api_key: str = field(
        default="",
        repr=False,
        metadata=_doc(
            "Server-side LLM judges: bearer key sent only to `judge_base_url` (a rule's judge "
            "with another base_url gets only its own api_key). Never logged or returned; "
            "`goldloop settings` shows it as ***. The server never reads OPENAI_API_KEY."
        ),
    )
    canary_interval_s: int = field(
        default=86_400,
        metadata=_doc(
            "Judge drift canaries: seconds between scheduled re-scorings of a rule's canary set "
            "by its judge (a set may set its own `interval_s`). A change of the judge's model "
            "or prompt re-scores at once. Each re-scoring counts one judge call per canary "
            "against the rule's daily_judge_budget. See docs/judge-alignment.md."
        ),
    )
    canary_alpha: float = field(
        default=0.001,
        metadata=_doc(
            "Judge drift canaries: significance level of the paired drift test (the chance "
            "that an unchanged judge is called drifted, per re-scoring), for new canary sets."
        ),
    )
    canary_min_drop: float = field(
        default=0.05,
        metadata=_doc(
            "Judge drift canaries: the smallest drop of the judge's agreement with people "
            "(share of canaries it gets wrong; mean error for continuous keys) called drift, "
            "for new canary sets."
        ),
    )

    langsmith_ingest: str = field(
        default="multipart",
        metadata=_doc(
            "How `GET /langsmith/info` tells the LangSmith SDK to send runs: `multipart` "
            "(`/runs/multipart`: the only path on which the SDK sends run attachments), "
            "`multipart-zstd` (multipart, zstd-compressed) or `batch` (JSON `/runs/batch`; the "
            "SDK then drops attachments before sending). The server accepts all three whatever "
            "is advertised."
        ),
    )

    attachments_dir: str = field(
        default="",
        metadata=_doc(
            "Directory of the attachment blob store (files attached to runs and examples, "
            "content-addressed by SHA-256). Empty means DATA_DIR/blobs. Every server process "
            "of one deployment must see the same directory (see docs/self-hosting.md)."
        ),
    )
    max_attachment_bytes: int = field(
        default=20 * 1024 * 1024,
        metadata=_doc(
            "Largest single attachment (an image, audio file or PDF on a run or example), in "
            "bytes; a larger one gets 413 and nothing of its request is stored."
        ),
    )
    attachment_url_ttl_s: int = field(
        default=3600,
        metadata=_doc(
            "Seconds a signed attachment URL (what the LangSmith SDK and the dashboard fetch "
            "without an API key) stays valid."
        ),
    )

    @property
    def effective_database_url(self) -> str:
        """The database URL actually used (SQLite in the data directory when unset)."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'goldloop.db').resolve()}"

    @property
    def base_url(self) -> str:
        """Where people reach this server (for links): ``public_url`` or http://host:port."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin-key"

    @property
    def attachments_path(self) -> Path:
        """Where attachment blobs live: ``attachments_dir`` or DATA_DIR/blobs."""
        return Path(self.attachments_dir) if self.attachments_dir else self.data_dir / "blobs"

    def redacted_database_url(self) -> str:
        """The database URL with any password replaced, safe for logs."""
        return redact_url(self.effective_database_url)

    def shown(self, name: str) -> Any:
        """A setting's value as safe to print: secrets masked, the database password hidden."""
        if name == "database_url":
            return self.redacted_database_url()
        value = getattr(self, name)
        if name in SECRET_SETTINGS:
            return "***" if value else ""
        return value


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and select the psycopg 3 driver."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def redact_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, hostpart = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in creds else url


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def setting_fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(Settings)


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    target = {"Path": Path, "str": str, "int": int, "float": float, "bool": bool}[str(kind)]
    if isinstance(raw, target) and not (target is int and isinstance(raw, bool)):
        return raw
    text = str(raw).strip()
    try:
        if target is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        return target(text)
    except ValueError as exc:
        raise SettingsError(
            f"setting {name} ({env_name(name)}): cannot use {text!r}: {exc}"
        ) from None


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from overrides (e.g. CLI args; None values ignored) > env > defaults."""
    env = os.environ if environ is None else environ
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(given) - {f.name for f in setting_fields()}
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for f in setting_fields():
        if f.name in given:
            values[f.name] = _coerce(f.name, given[f.name], f.type)
        elif f.metadata.get("env", True) and env_name(f.name) in env:
            values[f.name] = _coerce(f.name, env[env_name(f.name)], f.type)
    settings = Settings(**values)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if not 0 < s.port < 65536:
        raise SettingsError(f"setting port ({env_name('port')}): {s.port} is not a TCP port")
    for name in (
        "max_request_bytes",
        "max_run_payload_bytes",
        "ingest_max_inflight",
        "max_body_bytes_in_flight",
        "max_public_request_bytes",
        "header_timeout_s",
        "body_timeout_s",
        "body_min_rate",
        "max_unauthenticated_per_client",
        "write_batch_max",
        "write_queue_max",
        "rule_action_lease_s",
        "rule_action_threads",
        "dashboard_session_ttl_s",
        "max_attachment_bytes",
        "attachment_url_ttl_s",
        "retention_batch_runs",
        "retention_interval_s",
        "canary_interval_s",
    ):
        if getattr(s, name) <= 0:
            raise SettingsError(f"setting {name} ({env_name(name)}): must be positive")
    if not 0 <= s.ingest_processes <= 64:
        raise SettingsError(
            f"setting ingest_processes ({env_name('ingest_processes')}): use 0 to 64"
        )
    if not (0 < s.canary_alpha < 0.5 and 0 <= s.canary_min_drop < 1):
        raise SettingsError(
            "settings canary_alpha and canary_min_drop: use 0 < alpha < 0.5, 0 <= min_drop < 1"
        )
    if s.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise SettingsError(
            f"setting log_level ({env_name('log_level')}): use debug, info, warning or error"
        )
    if s.log_format not in ("text", "json"):
        raise SettingsError(f"setting log_format ({env_name('log_format')}): use text or json")
    if not 0 <= s.metrics_port < 65536:
        raise SettingsError(
            f"setting metrics_port ({env_name('metrics_port')}): use 0 (off) or a TCP port"
        )
    if s.metrics_port and s.metrics_port == s.port:
        raise SettingsError(
            f"setting metrics_port ({env_name('metrics_port')}): must differ from port"
        )
    if not 0 <= s.otlp_grpc_port < 65536:
        raise SettingsError(
            f"setting otlp_grpc_port ({env_name('otlp_grpc_port')}): use a TCP port, or 0 for "
            "any free port"
        )
    if s.otlp_grpc and s.otlp_grpc_port and s.otlp_grpc_port in (s.port, s.metrics_port):
        raise SettingsError(
            f"setting otlp_grpc_port ({env_name('otlp_grpc_port')}): must differ from port "
            "and metrics_port"
        )
    if s.otlp_grpc_deadline_s <= 0:
        raise SettingsError(
            f"setting otlp_grpc_deadline_s ({env_name('otlp_grpc_deadline_s')}): must be positive"
        )
    if s.worker_heartbeat_s <= 0:
        raise SettingsError(
            f"setting worker_heartbeat_s ({env_name('worker_heartbeat_s')}): must be positive"
        )
    if s.worker_dead_after_s <= s.worker_heartbeat_s:
        raise SettingsError(
            f"setting worker_dead_after_s ({env_name('worker_dead_after_s')}): must be more "
            "than worker_heartbeat_s"
        )
    if s.watchdog_interval_s < 0:
        raise SettingsError(
            f"setting watchdog_interval_s ({env_name('watchdog_interval_s')}): use 0 (off) or "
            "a positive number of seconds"
        )
    if s.langsmith_ingest not in LANGSMITH_INGEST_MODES:
        raise SettingsError(
            f"setting langsmith_ingest ({env_name('langsmith_ingest')}): use "
            + ", ".join(LANGSMITH_INGEST_MODES)
        )
    if s.redaction_mode not in ("placeholder", "hash"):
        raise SettingsError(
            f"setting redaction_mode ({env_name('redaction_mode')}): use placeholder or hash"
        )
    if s.redaction_mode == "hash" and s.redaction_builtins and not s.redaction_hash_key:
        raise SettingsError(
            f"setting redaction_mode ({env_name('redaction_mode')}): hash needs "
            f"redaction_hash_key ({env_name('redaction_hash_key')})"
        )
    try:
        parse_builtins(s.redaction_builtins)
    except ValueError as exc:
        raise SettingsError(
            f"setting redaction_builtins ({env_name('redaction_builtins')}): {exc}"
        ) from None
    prefix = s.otlp_path_prefix
    if prefix and (not prefix.startswith("/") or prefix.endswith("/") or " " in prefix):
        raise SettingsError(
            f"setting otlp_path_prefix ({env_name('otlp_path_prefix')}): use a path like /otel"
        )
    try:
        AllowList.parse(s.outbound_allowed_hosts)
    except ValueError as exc:
        raise SettingsError(
            f"setting outbound_allowed_hosts ({env_name('outbound_allowed_hosts')}): {exc}"
        ) from None
    url = s.effective_database_url
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise SettingsError(
            f"setting database_url ({env_name('database_url')}): only sqlite:/// and "
            "postgresql:// URLs are supported"
        )


def settings_markdown() -> str:
    """The configuration reference, generated from the fields above."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `goldloop settings --markdown`; a test keeps it current. -->",
        "",
        "Every setting can be given as a command-line option (where the command has one), as an",
        "environment variable, or left at its default. Command-line options win over environment",
        "variables, which win over defaults.",
        "",
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for f in setting_fields():
        default = f.default if f.default is not dataclasses.MISSING else ""
        shown = "(empty)" if default == "" else f"`{default}`"
        lines.append(f"| `{f.name}` | `{env_name(f.name)}` | {shown} | {f.metadata['help']} |")
    return "\n".join(lines) + "\n"
