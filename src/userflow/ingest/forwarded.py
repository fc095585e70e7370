"""The client's address: the socket's, or what trusted proxies forwarded in X-Forwarded-For.

Anyone can send an X-Forwarded-For header, so it is believed only when the
socket's peer is one of the configured proxies (UF_TRUSTED_PROXIES, the
ingress controller's addresses). Each proxy appends the address it got the
request from, so the entries are read from the right: trusted proxies are
skipped, and the first address that is not one of them is the client. What
is taken is parsed strictly (userflow.events.addresses); an entry that is not
an address (`unknown`, a zone, junk) gives no address at all rather than one
that fails later. uvicorn's own forwarded-header handling is off
(userflow.ingest.server), so this is the one place that decides.

The same trust decides where the client reached us (`reached_as`): the
scheme and host a proxy says it was asked for (X-Forwarded-Proto,
X-Forwarded-Host), which the Segment settings document hands back to
analytics.js as its API host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from userflow.events.addresses import canonical_ip, host_of

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A URL's authority without user info: a DNS name or IPv4 address, or a bracketed IPv6 one,
# and an optional port. Anything else could smuggle a path or another host into a URL.
_AUTHORITY: Final = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_SCHEMES: Final = frozenset({"http", "https"})


def _nearest(values: Sequence[str]) -> str | None:
    """The last entry of a comma-separated forwarded header: the one our own proxy set."""
    if not values:
        return None
    return ",".join(values).rsplit(",", 1)[-1].strip() or None


def _authority(host: str | None) -> str | None:
    """`host[:port]` as given when it is one, else None."""
    return host if host and _AUTHORITY.fullmatch(host) else None


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> TrustedProxies:
        """From `10.0.0.0/8, 192.168.1.7, fd00::/8`; raises ValueError naming a bad entry."""
        networks: list[Network] = []
        for entry in (e.strip() for e in spec.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"UF_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR") from None
        return cls(tuple(networks))

    def trusts(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self.networks)

    def client_ip(self, peer: str | None, forwarded: Sequence[str]) -> str | None:
        """The client's canonical address, or None when it cannot be known for sure.

        `peer` is the socket's address; `forwarded`, every X-Forwarded-For header in order.
        """
        address = canonical_ip(peer) if peer else None
        if address is None or not forwarded or not self.networks or not self.trusts(address):
            return address
        entries = ",".join(forwarded).split(",")
        for entry in reversed(entries):
            host = host_of(entry)
            if host is None:
                return None
            if not self.trusts(host):
                return host
            address = host
        # Every hop is a proxy of ours: the first of them is as close to the client as we know.
        return address

    def reached_as(self, peer: str | None, scheme: str, host: str | None,
                   forwarded_proto: Sequence[str], forwarded_host: Sequence[str]) -> tuple[str, str | None]:
        """(scheme, host[:port]) the client asked for; the host None when it is no valid authority.

        `scheme` and `host` are the request's own (its Host header); a trusted
        proxy's X-Forwarded-Proto and X-Forwarded-Host win over them when valid.
        """
        address = canonical_ip(peer) if peer else None
        if address is not None and self.networks and self.trusts(address):
            proto = (_nearest(forwarded_proto) or "").lower()
            scheme = proto if proto in _SCHEMES else scheme
            host = _authority(_nearest(forwarded_host)) or host
        return scheme, _authority(host)
