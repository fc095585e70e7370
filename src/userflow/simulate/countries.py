"""Where visitors come from: public IPv4 blocks of real networks per country, and local time.

Every block was checked against the project's geo database (geoip2fast) to
resolve wholly to its country, so enrichment at ingest finds what was planted.
"""

from __future__ import annotations

import ipaddress
import random
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Final


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    weight: float
    utc_offsets: tuple[float, ...]  # hours; one is drawn per visitor
    blocks: tuple[str, ...]


# Blocks of large residential and mobile ISPs (cable, DSL, fibre, 4G/5G).
COUNTRIES: Final = (
    Country(
        "US",
        34,
        (-5, -5, -6, -6, -7, -8),
        ("73.32.0.0/12", "98.192.0.0/13", "172.56.0.0/15", "71.176.0.0/13"),
    ),
    Country("DE", 10, (1,), ("79.192.0.0/10", "88.64.0.0/12")),
    Country("GB", 10, (0,), ("2.24.0.0/13", "109.144.0.0/12", "90.192.0.0/11")),
    Country("IN", 12, (5.5,), ("49.32.0.0/12", "223.176.0.0/12", "106.192.0.0/11")),
    Country("BR", 8, (-3,), ("201.0.0.0/14", "187.8.0.0/13", "191.176.0.0/12", "179.208.0.0/12")),
    Country("JP", 6, (9,), ("106.128.0.0/10", "126.0.0.0/9", "114.160.0.0/11")),
    Country("FR", 7, (1,), ("82.64.0.0/14", "86.192.0.0/11", "109.0.0.0/12")),
    Country("CA", 6, (-5, -5, -6, -8), ("99.224.0.0/11", "174.88.0.0/13", "142.112.0.0/12")),
    Country("AU", 7, (10, 10, 8), ("1.120.0.0/13", "49.176.0.0/12", "120.144.0.0/12")),
)

# Bots come from their operators' own networks or from cloud hosts.
_CLOUD = ("3.80.0.0/12", "159.69.0.0/16", "116.202.0.0/16")  # AWS us-east-1, Hetzner, Hetzner
BOT_BLOCKS: Final = {
    "Googlebot": ("66.249.64.0/20",),
    "bingbot": ("157.55.39.0/24", "40.77.167.0/24", "207.46.13.0/24"),
    "AhrefsBot": ("54.36.148.0/23",),
    "Python Requests": _CLOUD,
    "curl": _CLOUD,
    "HeadlessChrome": _CLOUD,
}
_BOT_BLOCK_COUNTRY: Final = {
    "3.80.0.0/12": "US",
    "159.69.0.0/16": "DE",
    "116.202.0.0/16": "DE",
    "66.249.64.0/20": "US",
    "157.55.39.0/24": "US",
    "40.77.167.0/24": "US",
    "207.46.13.0/24": "US",
    "54.36.148.0/23": "FR",
}


def random_ip(rng: random.Random, blocks: tuple[str, ...]) -> str:
    net = ipaddress.IPv4Network(rng.choice(blocks))
    # Skip the network and broadcast addresses, which no host has.
    return str(net.network_address + rng.randrange(1, net.num_addresses - 1))


def _spans() -> list[tuple[int, int, str]]:
    """(first address, last address, country) of every block, sorted, for bisection."""
    blocks = [(b, c.code) for c in COUNTRIES for b in c.blocks] + list(_BOT_BLOCK_COUNTRY.items())
    nets = [(ipaddress.IPv4Network(b), code) for b, code in blocks]
    return sorted((int(n.network_address), int(n.broadcast_address), code) for n, code in nets)


_SPANS: Final = _spans()
_STARTS: Final = [first for first, _, _ in _SPANS]


@lru_cache(maxsize=65_536)  # a visitor keeps one address for all its events
def country_of(ip: str) -> str | None:
    """The country whose block holds ip; None for an address the simulator never hands out."""
    value = int(ipaddress.IPv4Address(ip))
    i = bisect_right(_STARTS, value) - 1
    if i < 0 or value > _SPANS[i][1]:
        return None
    return _SPANS[i][2]
