"""The judge's connection to any OpenAI-compatible chat completions endpoint."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

__all__ = ["ENV_VARS", "ChatReply", "JudgeEndpoint", "JudgeError", "JudgeHTTP"]

ENV_VARS = {
    "GOLDLOOP_JUDGE_BASE_URL": "Base URL of the OpenAI-compatible API (ends before "
    "/chat/completions), e.g. http://127.0.0.1:11434/v1. Falls back to OPENAI_BASE_URL.",
    "GOLDLOOP_JUDGE_MODEL": "Judge model name.",
    "GOLDLOOP_JUDGE_API_KEY": "Bearer key for the endpoint. Falls back to OPENAI_API_KEY.",
}
"""The environment variables a judge reads once, when it is built (config wins over them)."""


class JudgeError(RuntimeError):
    """The judge endpoint failed or answered something unusable."""


@dataclass(frozen=True, slots=True)
class JudgeEndpoint:
    """Where and how to call the judge model. ``api_key`` never enters a cache key, a prompt
    hash, a result or a log line."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.0
    max_tokens: int = 512
    timeout_s: float = 60.0
    json_mode: bool = True
    max_retries: int = 3
    backoff_s: float = 0.5
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    echo_errors: bool = True
    """Quote the start of an error answer in the JudgeError. The server turns this off for
    rules: their judge URL is a key holder's choice, and the message lands in rule history."""

    @classmethod
    def resolve(
        cls,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> JudgeEndpoint:
        """Explicit values first, then the ``GOLDLOOP_JUDGE_*`` environment (read here, once)."""
        env = os.environ if environ is None else environ
        url = base_url or env.get("GOLDLOOP_JUDGE_BASE_URL") or env.get("OPENAI_BASE_URL")
        name = model or env.get("GOLDLOOP_JUDGE_MODEL")
        key = api_key or env.get("GOLDLOOP_JUDGE_API_KEY") or env.get("OPENAI_API_KEY")
        if not url:
            raise ValueError("the judge needs base_url (or GOLDLOOP_JUDGE_BASE_URL)")
        if not name:
            raise ValueError("the judge needs model (or GOLDLOOP_JUDGE_MODEL)")
        return cls(base_url=url.rstrip("/"), model=name, api_key=key or None, **options)

    def identity(self) -> dict[str, Any]:
        """What makes two endpoints give the same judgement (for cache keys; no secrets)."""
        return {
            "base_url": self.base_url,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
            "extra_body": dict(self.extra_body),
        }


@dataclass(frozen=True, slots=True)
class ChatReply:
    content: str
    input_tokens: int
    output_tokens: int
    model: str


_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class JudgeHTTP:
    """Sync client, shared by every call of one judge (thread-safe: httpx.Client is)."""

    def __init__(
        self,
        endpoint: JudgeEndpoint,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        headers = {"content-type": "application/json"}
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        self._client = httpx.Client(
            base_url=endpoint.base_url,
            headers=headers,
            timeout=endpoint.timeout_s,
            transport=transport,
        )
        self._sleep = sleep
        self._json_mode = endpoint.json_mode
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def chat(self, messages: Sequence[Mapping[str, str]]) -> ChatReply:
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": list(messages),
            "temperature": self.endpoint.temperature,
            "max_tokens": self.endpoint.max_tokens,
            **self.endpoint.extra_body,
        }
        if self._json_mode:
            body["response_format"] = {"type": "json_object"}
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._client.post("/chat/completions", content=orjson.dumps(body))
            except httpx.HTTPError as exc:
                if attempt > self.endpoint.max_retries:
                    raise JudgeError(f"judge endpoint unreachable: {type(exc).__name__}") from None
                self._sleep(self.endpoint.backoff_s * 2 ** (attempt - 1))
                continue
            if resp.status_code == 400 and "response_format" in body and _mentions_format(resp):
                # the server does not do JSON mode: ask in plain text from now on
                with self._lock:
                    self._json_mode = False
                body.pop("response_format")
                continue
            if resp.status_code in _RETRY_STATUS and attempt <= self.endpoint.max_retries:
                wait = _retry_after(resp)
                self._sleep(self.endpoint.backoff_s * 2 ** (attempt - 1) if wait is None else wait)
                continue
            if resp.status_code >= 400:
                raise JudgeError(
                    f"judge endpoint answered {resp.status_code}"
                    + _snippet(resp, self.endpoint.echo_errors)
                )
            return _reply(resp, self.endpoint)


def _mentions_format(resp: httpx.Response) -> bool:
    return "response_format" in resp.text or "json_object" in resp.text


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(float(value), 30.0) if value is not None else None
    except ValueError:
        return None


def _snippet(resp: httpx.Response, echo: bool) -> str:
    """``": <the answer's first 200 characters>"``, or nothing when answers are not echoed."""
    if not echo:
        return ""
    text = resp.text.strip().replace("\n", " ")
    return f": {text[:200]}"


def _reply(resp: httpx.Response, endpoint: JudgeEndpoint) -> ChatReply:
    model = endpoint.model
    try:
        data = resp.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeError(
            "judge endpoint answered no message" + _snippet(resp, endpoint.echo_errors)
        ) from None
    if not isinstance(content, str):
        raise JudgeError("judge endpoint answered a message without text content")
    usage = data.get("usage") or {}
    return ChatReply(
        content=content,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        model=str(data.get("model") or model),
    )
