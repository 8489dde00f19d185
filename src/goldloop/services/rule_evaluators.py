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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from goldloop.domain.errors import InvalidInput
from goldloop.evaluation import Evaluator, build_evaluator
from goldloop.settings import Settings

__all__ = ["build", "judge_environ", "same_endpoint"]


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


def build(settings: Settings, spec: Mapping[str, Any]) -> Evaluator:
    """Build one evaluator of a rule (``{"name", "config"}``) for the server."""
    name = str(spec["name"])
    config = dict(spec.get("config") or {})
    if isinstance(config.get("cache"), str):
        # a path would make the server write a file wherever the rule says
        raise InvalidInput(
            f"bad config for evaluator {name!r}: a file cache is not available in rules "
            "(use true or false)",
            details={"evaluator": name},
        )
    return build_evaluator(name, config, inject={"environ": judge_environ(settings, config)})
