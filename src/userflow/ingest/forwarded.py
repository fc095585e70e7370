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
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from userflow.events.addresses import canonical_ip, host_of

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
