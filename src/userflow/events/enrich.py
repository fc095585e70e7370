"""What a user agent and an IP address say about an event: browser, OS, device, bot, place.

Pure functions over packaged databases (ua-parser's regexes, crawlerdetect's
patterns, geoip2fast's offline country table, optionally a MaxMind-format
City database), read once per process and cached per distinct input.
Whatever the client supplied on the event wins; enrichment fills only the
fields it left as None.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import maxminddb
import ua_parser
from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]
from geoip2fast import GeoIP2Fast  # type: ignore[import-untyped]

from userflow.events.model import Event

# crawlerdetect misses some automation clients that never run a real page.
_BOT_TOKENS: Final = (
    "HeadlessChrome",
    "PhantomJS",
    "python-requests",
    "python-urllib",
    "curl/",
    "Wget/",
    "Go-http-client",
    "okhttp",
    "axios/",
    "node-fetch",
    "Scrapy",
)
# Televisions and consoles: neither a phone, a tablet nor a desktop.
_OTHER_TOKENS: Final = (
    "SMART-TV",
    "SmartTV",
    "Smart-TV",
    "Android TV",
    "AppleTV",
    "CrKey",
    "GoogleTV",
    "HbbTV",
    "Roku",
    "BRAVIA",
    "PlayStation",
    "Xbox",
    "Nintendo",
)
_MOBILE_OS: Final = frozenset(
    {
        "iOS",
        "Windows Phone",
        "BlackBerry OS",
        "Symbian OS",
        "KaiOS",
        "Firefox OS",
        "webOS",
        "Windows Mobile",
        "Bada",
        "MeeGo",
        "Maemo",
    }
)
_DESKTOP_OS: Final = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "Fedora",
        "Debian",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
        "Gentoo",
        "Mint",
        "Arch Linux",
        "Mandriva",
        "SUSE",
        "Red Hat",
        "Kubuntu",
        "Slackware",
        "CentOS",
        "Linux Mint",
        "Haiku",
        "ChromeOS",
    }
)
_IP_CACHE_SIZE: Final = 100_000


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """A user agent string, parsed: what the `user_agent` table holds."""

    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device_type: str
    is_bot: bool


@dataclass(frozen=True, slots=True)
class Location:
    country: str | None = None
    region: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class Enrichment:
    """The final description of an event: the client's values, gaps filled in."""

    device_type: str | None
    browser: str | None
    os: str | None
    country: str | None
    region: str | None
    city: str | None
    is_bot: bool


NOWHERE: Final = Location()
UNKNOWN_AGENT: Final = UserAgentInfo(None, None, None, None, "other", False)


def _version(*parts: str | None) -> str | None:
    taken = []
    for part in parts:
        if part is None:
            break
        taken.append(part)
    return ".".join(taken) or None


def _family(family: str) -> str | None:
    # ua-parser names what it could not match "Other"; NULL says the same in SQL.
    return None if family == "Other" else family


@lru_cache(maxsize=1)
def _crawler_detect() -> CrawlerDetect:
    return CrawlerDetect()


def _device_type(ua: str, os_family: str, device_family: str, device_brand: str | None) -> str:
    if any(token in ua for token in _OTHER_TOKENS) or "TV" in device_family:
        return "other"
    # An iPad says "Mobile/…" too, and an Android tablet omits "Mobile": tablets first.
    if (
        device_family == "iPad"
        or "Tablet" in device_family
        or "Kindle" in device_family
        or device_brand == "Generic_Android_Tablet"
        or ("Tablet" in ua and "Tablet PC" not in ua)
        or "Silk/" in ua
    ):
        return "tablet"
    if device_family in ("iPhone", "iPod") or os_family in _MOBILE_OS or "Mobi" in ua:
        return "mobile"
    if os_family == "Android":
        return "tablet"
    if os_family in _DESKTOP_OS or device_family == "Mac":
        return "desktop"
    return "other"


@lru_cache(maxsize=65_536)
def describe_user_agent(ua: str) -> UserAgentInfo:
    """Browser, OS, device type and bot flag of one user agent string."""
    if not ua.strip():
        return UNKNOWN_AGENT
    parsed = ua_parser.parse(ua).with_defaults()
    browser, os, device = parsed.user_agent, parsed.os, parsed.device
    is_bot = (
        device.family == "Spider"
        or any(token in ua for token in _BOT_TOKENS)
        or _crawler_detect().is_crawler(ua)
    )
    return UserAgentInfo(
        browser=_family(browser.family),
        browser_version=_version(browser.major, browser.minor, browser.patch),
        os=_family(os.family),
        os_version=_version(os.major, os.minor, os.patch),
        device_type="bot" if is_bot else _device_type(ua, os.family, device.family, device.brand),
        is_bot=is_bot,
    )


@lru_cache(maxsize=1)
def _countries() -> GeoIP2Fast:
    # The IPv6 file holds the IPv4 table too; loading takes about 0.1 s.
    return GeoIP2Fast(geoip2fast_data_file="geoip2fast-ipv6.dat.gz")


def _is_public(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


def _name(record: Any, *path: str | int) -> str | None:
    node = record
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, str) and node else None


class Geo:
    """Country (geoip2fast) and, with a City database, region and city of an IP address."""

    def __init__(self, city_db: str = "") -> None:
        self._city_reader = maxminddb.open_database(city_db) if city_db else None
        self._cache: OrderedDict[str, Location] = OrderedDict()

    def close(self) -> None:
        if self._city_reader is not None:
            self._city_reader.close()

    def locate(self, ip: str) -> Location:
        cache = self._cache
        found = cache.get(ip)
        if found is not None:
            cache.move_to_end(ip)
            return found
        found = self._lookup(ip)
        cache[ip] = found
        if len(cache) > _IP_CACHE_SIZE:
            cache.popitem(last=False)
        return found

    def _lookup(self, ip: str) -> Location:
        # Private, reserved and malformed addresses have no place.
        if not _is_public(ip):
            return NOWHERE
        code = _countries().lookup(ip).country_code
        country = code if len(code) == 2 and code.isalpha() and code.isupper() else None
        if self._city_reader is None:
            return Location(country=country) if country else NOWHERE
        record = self._city_reader.get(ip)
        return Location(
            country=country or _name(record, "country", "iso_code"),
            region=_name(record, "subdivisions", 0, "names", "en"),
            city=_name(record, "city", "names", "en"),
        )


def enrich(event: Event, geo: Geo) -> Enrichment:
    """The event's device, browser, OS and place: the client's values first, then ours."""
    agent = describe_user_agent(event.user_agent) if event.user_agent else UNKNOWN_AGENT
    place = geo.locate(event.ip_address) if event.ip_address else NOWHERE
    return Enrichment(
        device_type=event.device_type
        if event.device_type is not None
        else (agent.device_type if event.user_agent else None),
        browser=event.browser if event.browser is not None else agent.browser,
        os=event.os if event.os is not None else agent.os,
        country=event.country if event.country is not None else place.country,
        region=event.region if event.region is not None else place.region,
        city=event.city if event.city is not None else place.city,
        is_bot=agent.is_bot,
    )
