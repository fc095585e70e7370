"""IP addresses, read strictly: one address in the form PostgreSQL's inet stores, or nothing.

Used for every address an event may carry (the payload's `context.ip` or
`ip_address`, the request's socket or forwarded address) and again by the
check both sides run before a row is written, so an address the ingest takes
is one the table takes. A zone (`fe80::1%eth0`), a port, a prefix length,
leading zeros (`010.1.1.1`, which some parsers read as octal) and anything
else are refused; the canonical text is what is kept.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Final

# An IPv4 address exactly as `ipaddress` writes it: four decimal octets 0–255
# without leading zeros. Such text is its own canonical form, so it needs no
# IPv4Address object (about ten times the cost). ASCII classes, not \d, which
# would also match other scripts' digits.
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4: Final = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
# What an address may be made of at all: hex digits, dots and colons.
_ADDRESS_CHARS: Final = re.compile(r"[0-9A-Fa-f.:]{2,45}")
_PORT: Final = re.compile(r"[0-9]{1,5}")


def canonical_ip(text: str) -> str | None:
    """The address's canonical text, or None when `text` is not exactly one IPv4 or IPv6 address."""
    if _CANONICAL_IPV4.fullmatch(text):
        return text
    return _parse(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> str | None:
    if not _ADDRESS_CHARS.fullmatch(text):
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def host_of(entry: str) -> str | None:
    """The address in one X-Forwarded-For entry: `a.b.c.d`, `a.b.c.d:port`, `v6` or `[v6]:port`."""
    entry = entry.strip()
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not (rest[:1] == ":" and _PORT.fullmatch(rest[1:]))):
            return None
        address = _parse(host)
        return address if address is not None and ":" in address else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if not _PORT.fullmatch(port):
            return None
        address = canonical_ip(host)
        return address if address is not None and ":" not in address else None
    return canonical_ip(entry)
