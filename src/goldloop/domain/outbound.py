"""Where the server may send requests: the outbound allow-list (pure).

The setting ``outbound_allowed_hosts`` is a comma-separated list of entries:

- ``*``: any host name (and any IP literal) whose addresses are not refused by default;
- ``hooks.slack.com``: that host name exactly (case-insensitive);
- ``*.example.com``: any subdomain of example.com (not example.com itself);
- ``10.0.0.0/8``, ``192.168.1.10``, ``fd00::/8``: addresses (a bare address is a /32 or /128).

A URL's host is allowed when its name matches a name entry (or ``*``), or when it is an IP
literal inside a network entry (or ``*``). Then every address the host resolves to must be
allowed: an address inside a network entry always is; an address in :data:`DENIED_BY_DEFAULT`
(link-local and cloud metadata services) never is, unless a network entry covers it; any other
address is allowed when the host name was.

Hosts are canonicalised once, by :func:`parse_address`, before any check: every spelling of an
IPv4 address that a resolver accepts (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``,
``169.254.43518``) is that address, and an IPv6 address that embeds an IPv4 one (mapped
``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, translated ``::ffff:0:a.b.c.d``, NAT64
``64:ff9b::a.b.c.d`` and ``64:ff9b:1::/48``, 6to4 ``2002:ab:cd::``) is checked as both.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "DENIED_BY_DEFAULT",
    "MASKED_PATH",
    "AllowList",
    "IPAddress",
    "IPNetwork",
    "checked_forms",
    "is_denied_by_default",
    "masked_url",
    "parse_address",
]

MASKED_PATH = "/…"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DENIED_BY_DEFAULT: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure, OCI metadata at 169.254.169.254
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "0.0.0.0/32",  # "this host": reaches local services on Linux
        "::/128",
    )
)
"""Addresses refused unless a network entry of the allow-list names them explicitly."""


_NAT64 = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # RFC 6052 well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # RFC 8215 local use (the /96 form)
)
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 IPv4-translated
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 IPv4-compatible (deprecated)


def parse_address(text: str) -> IPAddress | None:
    """The address ``text`` spells, in any spelling a resolver accepts, or None if it is a name.

    IPv4: one to four parts, each decimal, octal (leading ``0``) or hex (``0x``), the last one
    filling the remaining bytes (as ``inet_aton`` reads them), with an optional final dot.
    IPv6: with or without brackets and zone (``%eth0``, ``%25eth0``); an IPv4-mapped address
    is unwrapped to its IPv4 address."""
    host = text.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            addr = ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
        return addr.ipv4_mapped or addr
    return _parse_ipv4(host)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        if part.startswith("0x"):
            digits, base = part[2:], 16
        elif len(part) > 1 and part.startswith("0"):
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        if not digits:
            if base != 16:
                return None
            digits = "0"  # "0x" alone is 0, as inet_aton and browsers read it
        if not digits.isascii() or not digits.isalnum():
            return None
        try:
            numbers.append(int(digits, base))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def checked_forms(addr: IPAddress) -> tuple[IPAddress, ...]:
    """``addr`` and the IPv4 address it embeds, if any: the forms every check looks at."""
    if isinstance(addr, ipaddress.IPv4Address):
        return (addr,)
    if addr.ipv4_mapped is not None:
        return (addr, addr.ipv4_mapped)
    low = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if any(addr in n for n in _NAT64) or addr in _TRANSLATED:
        return (addr, low)
    if addr in _COMPATIBLE and int(addr) > 1:  # not :: or ::1
        return (addr, low)
    if addr.sixtofour is not None:
        return (addr, addr.sixtofour)
    return (addr,)


@dataclass(frozen=True, slots=True)
class AllowList:
    any_host: bool
    names: frozenset[str]
    suffixes: tuple[str, ...]  # ".example.com"
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """Parse the setting; raises ValueError naming the first entry it cannot use."""
        any_host = False
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                any_host = True
            elif entry.startswith("*."):
                if not _is_name(entry[2:].rstrip(".")):
                    raise ValueError(f"{raw.strip()!r} is not a host name pattern")
                suffixes.append(entry[1:].rstrip("."))
            elif (addr := parse_address(entry)) is not None:
                networks.append(ipaddress.ip_network(addr))
            elif "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError:
                    raise ValueError(f"{raw.strip()!r} is not an address or network") from None
            elif _is_name(entry.rstrip(".")):
                names.add(entry.rstrip("."))
            else:
                raise ValueError(f"{raw.strip()!r} is not a host name, pattern or network")
        return cls(any_host, frozenset(names), tuple(suffixes), tuple(networks))

    def name_allowed(self, host: str) -> bool:
        """Whether the host itself (before any DNS) is allowed: see the module docstring."""
        addr = parse_address(host)
        if addr is not None:
            return self.address_allowed(addr, name_allowed=self.any_host)
        name = host.lower().rstrip(".")
        return self.any_host or name in self.names or name.endswith(self.suffixes)

    def in_networks(self, addr: IPAddress) -> bool:
        return _within(addr, self.networks)

    def address_allowed(self, addr: IPAddress, *, name_allowed: bool) -> bool:
        """Whether a (resolved) address may be connected to, for a host whose name was or was
        not allowed."""
        if self.in_networks(addr):
            return True
        if is_denied_by_default(addr):
            return False
        return name_allowed


def _within(addr: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(a.version == n.version and a in n for a in checked_forms(addr) for n in networks)


def is_denied_by_default(addr: IPAddress) -> bool:
    """Whether the address, or the IPv4 address it embeds, is in :data:`DENIED_BY_DEFAULT`."""
    return _within(addr, DENIED_BY_DEFAULT)


def _is_name(text: str) -> bool:
    labels = text.split(".")
    return all(
        label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)
        for label in labels
    )


def masked_url(url: str) -> str:
    """An outgoing URL as shown to people: ``scheme://host[:port]/…``. The path, query and user
    info are left out because webhook URLs often carry their secret there (Slack's do)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{MASKED_PATH}"
