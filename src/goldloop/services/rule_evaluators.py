"""Evaluators as the server builds them for rules: configured by the rule, never by the process
environment.

On a laptop or in CI a judge falls back to ``GOLDLOOP_JUDGE_*`` / ``OPENAI_*`` from the
environment: it is the user's own machine and key. On the server the rule is written by an API
key holder, and its judge's ``base_url`` is theirs to choose, so the server's key must not follow
it there. A server-side judge therefore gets its defaults from ``Settings`` (``judge_base_url``,
``judge_model``, ``judge_api_key``) through the evaluator's ``environ`` argument (which stops it
from reading ``os.environ``), and the configured key only when the judge talks to the
configured endpoint: no ``base_url`` of its own, or the same one. Otherwise only the rule's own
``api_key`` is sent.

Judge results are cached per workspace on the server (in memory, bounded): one workspace's
cached verdicts never answer another's, so a key holder cannot learn from a free, instant
answer that some other workspace judged the very same text.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from goldloop.domain.errors import InvalidInput
from goldloop.evaluation import (
    EvaluationResult,
    Evaluator,
    MemoryJudgeCache,
    RunData,
    build_evaluator,
    evaluate_run,
)
from goldloop.services.context import ServiceContext
from goldloop.services.outbound import GuardedTransport, Resolver
from goldloop.settings import Settings

__all__ = [
    "BatchEvaluators",
    "SharedTransport",
    "build",
    "check",
    "evaluate",
    "judge_environ",
    "same_endpoint",
]


def same_endpoint(a: str, b: str) -> bool:
    """Whether two base URLs name the same endpoint (scheme and host case, default ports and a
    trailing slash aside). Anything else that differs (user info, query) makes them differ."""

    def key(url: str) -> tuple[Any, ...]:
        p = urlsplit(url.strip())
        scheme = p.scheme.lower()
        try:
            port = p.port or {"http": 80, "https": 443}.get(scheme)
        except ValueError:
            port = -1
        host = (p.hostname or "").lower()
        path = p.path.rstrip("/")
        return (scheme, host, port, p.username, p.password, path, p.query, p.fragment)

    return key(a) == key(b)


def judge_environ(settings: Settings, config: Mapping[str, Any]) -> dict[str, str]:
    """The environment a server-side judge sees: the configured endpoint and model, and the
    configured key only when the judge's base URL is the configured one."""
    env: dict[str, str] = {}
    if settings.judge_base_url:
        env["GOLDLOOP_JUDGE_BASE_URL"] = settings.judge_base_url
    if settings.judge_model:
        env["GOLDLOOP_JUDGE_MODEL"] = settings.judge_model
    own = config.get("base_url")
    if (
        settings.judge_api_key
        and settings.judge_base_url
        and (not own or (isinstance(own, str) and same_endpoint(own, settings.judge_base_url)))
    ):
        env["GOLDLOOP_JUDGE_API_KEY"] = settings.judge_api_key
    return env


class SharedTransport(httpx.BaseTransport):
    """One :class:`GuardedTransport` (one connection pool, one TLS context) for every evaluator
    a worker builds, made on the first request: building a transport costs tens of ms of CPU,
    more than a deterministic evaluation. An evaluator's ``close()`` leaves it open; its owner
    calls :meth:`shutdown` when the worker stops."""

    def __init__(self, settings: Settings, resolve: Resolver) -> None:
        self._allowed = settings.outbound_allowed_hosts
        self._resolve = resolve
        self._inner: GuardedTransport | None = None
        self._lock = threading.Lock()
        self.built = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._inner is None:
                self._inner = GuardedTransport(self._allowed, self._resolve)
                self.built += 1
            inner = self._inner
        return inner.handle_request(request)

    def close(self) -> None:
        """Left open: the transport is the worker's, not one evaluator's."""

    def shutdown(self) -> None:
        with self._lock:
            inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()


WORKSPACE_CACHE_ENTRIES = 10_000
_caches: dict[str, MemoryJudgeCache] = {}
_caches_lock = threading.Lock()


def workspace_cache(workspace_id: str) -> MemoryJudgeCache:
    """The judge result cache of one workspace (created on first use)."""
    with _caches_lock:
        cache = _caches.get(workspace_id)
        if cache is None:
            cache = _caches[workspace_id] = MemoryJudgeCache(WORKSPACE_CACHE_ENTRIES)
        return cache


def build(ctx: ServiceContext, spec: Mapping[str, Any], workspace_id: str) -> Evaluator:
    """Build one evaluator of a rule (``{"name", "config"}``) for the server: its judge
    environment from the settings, its HTTP requests through the outbound guard, its cache the
    workspace's own."""
    name = str(spec["name"])
    config = dict(spec.get("config") or {})
    cache = config.pop("cache", True)
    if not isinstance(cache, bool):
        # a path would make the server write a file wherever the rule says
        raise InvalidInput(
            f"bad config for evaluator {name!r}: cache must be true or false in rules "
            "(a file cache is not available)",
            details={"evaluator": name},
        )
    transport = ctx.evaluator_transport or GuardedTransport(
        ctx.settings.outbound_allowed_hosts, ctx.resolve
    )
    inject: dict[str, Any] = {
        "environ": judge_environ(ctx.settings, config),
        "transport": transport,
        "cache": workspace_cache(workspace_id) if cache else False,
        # the judge's URL is the rule author's choice: never quote what it answered
        "echo_errors": False,
    }
    return build_evaluator(name, config, inject=inject)


def evaluate(
    ctx: ServiceContext, spec: Mapping[str, Any], run: RunData, workspace_id: str
) -> list[EvaluationResult]:
    """Build, run and close one evaluator of a rule (a judge holds an HTTP connection pool)."""
    evaluator = build(ctx, spec, workspace_id)
    try:
        return evaluate_run(evaluator, run)
    finally:
        close = getattr(evaluator, "close", None)
        if callable(close):
            close()


class BatchEvaluators:
    """The evaluators of a batch of rule actions, each built once (building one costs more
    than a deterministic evaluation) and closed together by :meth:`close`. ``evaluate`` is
    :func:`evaluate` with the building shared: same specs, same workspace, same evaluator."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._built: dict[tuple[str, bytes], Evaluator] = {}

    def evaluate(
        self, ctx: ServiceContext, spec: Mapping[str, Any], run: RunData, workspace_id: str
    ) -> list[EvaluationResult]:
        key = (workspace_id, orjson.dumps(spec, option=orjson.OPT_SORT_KEYS))
        evaluator = self._built.get(key)
        if evaluator is None:
            evaluator = self._built[key] = build(self._ctx, spec, workspace_id)
        return evaluate_run(evaluator, run)

    def close(self) -> None:
        built, self._built = self._built, {}
        for evaluator in built.values():
            close = getattr(evaluator, "close", None)
            if callable(close):
                close()


def check(ctx: ServiceContext, spec: Mapping[str, Any], workspace_id: str) -> None:
    """Build one evaluator of a rule to check its name and config (raises InvalidInput)."""
    evaluator = build(ctx, spec, workspace_id)
    close = getattr(evaluator, "close", None)
    if callable(close):
        close()
