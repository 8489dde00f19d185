"""Enforcing ``outbound_allowed_hosts`` on every request the server sends on a user's behalf
(alert channels, rule webhooks, server-side judges).

Twice, by the same check (:func:`_check`) on the same canonical host (see
:func:`goldloop.domain.outbound.parse_address`): when a URL is saved (:func:`check_url`, a 400
naming the host and the setting) and when a request is sent (:func:`pin`). The one difference:
a host allowed by name is not looked up when saved (its DNS may not exist yet). At send time
the host is resolved, every address is checked, and the request is sent to the checked address
itself (the URL's host kept in the ``Host`` header and as the TLS server name, so certificates
are verified as usual): a DNS answer that changes between the check and the connection
(rebinding) cannot redirect it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx

from goldloop.domain.errors import OutboundRefused
from goldloop.domain.outbound import AllowList, IPAddress, is_denied_by_default, parse_address
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


def _check(
    allowed: AllowList,
    resolve: Resolver,
    host: str,
    port: int,
    *,
    saving: bool,
    field_name: str | None = None,
) -> list[IPAddress]:
    """The one check: the addresses a request to ``host`` may go to (none when saving a host
    allowed by name), or :class:`OutboundRefused`. A name that does not resolve at send time
    raises ``httpx.ConnectError`` (transient: retried)."""
    literal = parse_address(host)
    if literal is not None:  # every spelling of an address, checked as that address
        if not allowed.address_allowed(literal, name_allowed=allowed.any_host):
            why = (
                "it is a link-local or cloud metadata address"
                if is_denied_by_default(literal)
                else "the address is not allowed"
            )
            raise _refused(host, why, field_name)
        return [literal]
    by_name = allowed.name_allowed(host)
    if by_name and saving:
        return []
    if not by_name and not allowed.networks:
        raise _refused(host, "the host is not allowed", field_name)
    try:
        found = [parse_address(a) for a in resolve(host, port)]
    except OSError as exc:
        if saving:
            raise _refused(host, "it is not in the list and does not resolve", field_name) from None
        raise httpx.ConnectError(f"could not resolve the host: {type(exc).__name__}") from None
    addrs = [a for a in found if a is not None]
    if not addrs:
        raise _refused(host, "it resolves to no address", field_name)
    for addr in addrs:
        if not allowed.address_allowed(addr, name_allowed=by_name):
            if is_denied_by_default(addr):
                why = "it resolves to a link-local or cloud metadata address"
            elif saving:
                why = "the host is not allowed"
            else:
                why = "it resolves to an address outside the allowed networks"
            raise _refused(host, why, field_name)
    return addrs


def check_url(allowed_text: str, resolve: Resolver, url: str, *, field_name: str) -> None:
    """When a URL is saved: :func:`_check` without a lookup for hosts allowed by name. Raises
    :class:`OutboundRefused` (a 400)."""
    _, host, port = _host_port(url, field_name)
    _check(allow_list(allowed_text), resolve, host, port, saving=True, field_name=field_name)


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
    parsed, host, port = _host_port(str(url), None)
    addrs = _check(allow_list(allowed_text), resolve, host, port, saving=False)
    headers = {"Host": parsed.netloc.decode("ascii")}
    if parse_address(host) is not None:  # any spelling of an address: sent to that address
        return Pinned(parsed.copy_with(host=str(addrs[0])), headers)
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
