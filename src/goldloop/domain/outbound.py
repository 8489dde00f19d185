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


def parse_address(text: str) -> IPAddress | None:
    """The address ``text`` spells (IPv4-mapped IPv6 unwrapped), or None if it is a name."""
    try:
        addr = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


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
            elif "/" in entry or parse_address(entry) is not None:
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
        return any(addr.version == n.version and addr in n for n in self.networks)

    def address_allowed(self, addr: IPAddress, *, name_allowed: bool) -> bool:
        """Whether a (resolved) address may be connected to, for a host whose name was or was
        not allowed."""
        if self.in_networks(addr):
            return True
        if any(addr.version == n.version and addr in n for n in DENIED_BY_DEFAULT):
            return False
        return name_allowed


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
