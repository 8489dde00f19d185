"""Enforcing ``outbound_allowed_hosts`` on every request the server sends on a user's behalf
(alert channels, rule webhooks, server-side judges).

Twice: when a URL is saved (:func:`check_url`, a 400 naming the host and the setting) and when
a request is sent (:func:`pin`). At send time the host is resolved, every address is checked,
and the request is sent to the checked address itself (the URL's host kept in the ``Host``
header and as the TLS server name, so certificates are verified as usual): a DNS answer that
changes between the check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx

from goldloop.domain.errors import OutboundRefused
from goldloop.domain.outbound import DENIED_BY_DEFAULT, AllowList, IPAddress, parse_address
from goldloop.settings import env_name

__all__ = [
    "GuardedTransport",
    "Pinned",
    "Resolver",
    "allow_list",
    "check_url",
    "pin",
    "system_resolver",
]

Resolver = Callable[[str, int], list[str]]
"""(host, port) -> the addresses a connection could go to; raises OSError when it cannot."""

SETTING = f"outbound_allowed_hosts ({env_name('outbound_allowed_hosts')})"


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@lru_cache(maxsize=8)
def allow_list(text: str) -> AllowList:
    return AllowList.parse(text)


def _refused(host: str, why: str, field_name: str | None = None) -> OutboundRefused:
    return OutboundRefused(
        f"refused to send to {host!r}: {why} (setting {SETTING})",
        details={"field": field_name, "host": host} if field_name else {"host": host},
    )


def _host_port(url: str, field_name: str | None) -> tuple[httpx.URL, str, int]:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise OutboundRefused(
            "not a usable URL", details={"field": field_name} if field_name else None
        ) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise OutboundRefused(
            "only http(s) URLs with a host are allowed",
            details={"field": field_name} if field_name else None,
        )
    return parsed, parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


def _addresses(resolve: Resolver, host: str, port: int) -> list[IPAddress]:
    literal = parse_address(host)
    if literal is not None:
        return [literal]
    found = [parse_address(a.split("%", 1)[0]) for a in resolve(host, port)]
    return [a for a in found if a is not None]


def _check_addresses(allowed: AllowList, host: str, addrs: list[IPAddress], by_name: bool) -> None:
    if not addrs:
        raise _refused(host, "it resolves to no address")
    for addr in addrs:
        if not allowed.address_allowed(addr, name_allowed=by_name):
            denied = any(addr.version == n.version and addr in n for n in DENIED_BY_DEFAULT)
            why = (
                "it resolves to a link-local or cloud metadata address"
                if denied
                else "it resolves to an address outside the allowed networks"
            )
            raise _refused(host, why)


def check_url(allowed_text: str, resolve: Resolver, url: str, *, field_name: str) -> None:
    """When a URL is saved: its host must be allowed by name, or (when the list has networks)
    resolve only to addresses inside them. Raises :class:`OutboundRefused` (a 400)."""
    allowed = allow_list(allowed_text)
    _, host, port = _host_port(url, field_name)
    if allowed.name_allowed(host):
        return
    if parse_address(host) is None and allowed.networks:
        try:
            addrs = _addresses(resolve, host, port)
        except OSError:
            raise _refused(host, "it is not in the list and does not resolve", field_name) from None
        if addrs and all(allowed.in_networks(a) for a in addrs):
            return
    raise _refused(host, "the host is not allowed", field_name)


@dataclass(frozen=True)
class Pinned:
    """A request's URL rewritten to a checked address, and what keeps it valid for the host."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def pin(allowed_text: str, resolve: Resolver, url: str | httpx.URL) -> Pinned:
    """At send time: resolve, check every address, and aim the request at the first one.

    Raises :class:`OutboundRefused` when the host or one of its addresses is not allowed, and
    ``httpx.ConnectError`` when the name does not resolve (a transient failure: retry)."""
    allowed = allow_list(allowed_text)
    parsed, host, port = _host_port(str(url), None)
    by_name = allowed.name_allowed(host)
    if parse_address(host) is not None:
        if not by_name:
            raise _refused(host, "the address is not allowed")
        return Pinned(parsed)
    if not by_name and not allowed.networks:
        raise _refused(host, "the host is not allowed")
    try:
        addrs = _addresses(resolve, host, port)
    except OSError as exc:
        raise httpx.ConnectError(f"could not resolve the host: {type(exc).__name__}") from None
    _check_addresses(allowed, host, addrs, by_name)
    headers = {"Host": parsed.netloc.decode("ascii")}
    extensions: dict[str, Any] = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return Pinned(parsed.copy_with(host=str(addrs[0])), headers, extensions)


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that pins every request (see :func:`pin`); refusals raise
    :class:`OutboundRefused`, which is not an ``httpx.HTTPError``, so callers do not retry."""

    def __init__(
        self,
        allowed_text: str,
        resolve: Resolver = system_resolver,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        allow_list(allowed_text)  # fail now on a bad setting
        self._allowed = allowed_text
        self._resolve = resolve
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pinned = pin(self._allowed, self._resolve, request.url)
        request.url = pinned.url
        request.headers.update(pinned.headers)
        request.extensions = {**request.extensions, **pinned.extensions}
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
