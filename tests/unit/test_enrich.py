"""Enrichment: user agent → browser/OS/device/bot, IP → country (and city/region with a City DB)."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from userflow.events.enrich import Geo, Location, describe_user_agent, enrich
from userflow.events.model import Event

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.5 Mobile/15E148 Safari/604.1"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36"
)
SMART_TV = (
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36"
)


def event(**fields: Any) -> Event:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "company_id": uuid.uuid4(),
        "event_type": "page_view",
        "event_timestamp": now,
        "received_at": now,
    }
    return Event(**(base | fields))


def test_chrome_on_windows_is_a_desktop() -> None:
    agent = describe_user_agent(CHROME_WINDOWS)
    assert (agent.device_type, agent.browser, agent.os, agent.is_bot) == (
        "desktop",
        "Chrome",
        "Windows",
        False,
    )
    assert agent.browser_version == "120.0.0"
    assert agent.os_version == "10"


def test_iphone_safari_is_a_mobile_on_ios() -> None:
    agent = describe_user_agent(IPHONE_SAFARI)
    assert (agent.device_type, agent.browser, agent.os, agent.os_version) == (
        "mobile",
        "Mobile Safari",
        "iOS",
        "17.1",
    )


@pytest.mark.parametrize("ua", [IPAD, ANDROID_TABLET], ids=["ipad", "android-without-mobile"])
def test_tablets(ua: str) -> None:
    assert describe_user_agent(ua).device_type == "tablet"


def test_android_phone_is_mobile() -> None:
    assert describe_user_agent(ANDROID_PHONE).device_type == "mobile"


def test_television_is_other() -> None:
    assert describe_user_agent(SMART_TV).device_type == "other"


@pytest.mark.parametrize(
    "ua",
    [GOOGLEBOT, HEADLESS, "python-requests/2.31.0", "curl/8.4.0"],
    ids=["googlebot", "headless-chrome", "python-requests", "curl"],
)
def test_bots(ua: str) -> None:
    agent = describe_user_agent(ua)
    assert agent.is_bot
    assert agent.device_type == "bot"


def test_blank_user_agent_says_nothing() -> None:
    agent = describe_user_agent("  ")
    assert (agent.browser, agent.os, agent.is_bot) == (None, None, False)


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.160", "GB"),
        ("2001:4860:4860::8888", "US"),
        ("10.0.0.1", None),
        ("192.168.1.1", None),
        ("127.0.0.1", None),
        ("::1", None),
        ("not an ip", None),
    ],
)
def test_country_of_an_address(ip: str, country: str | None) -> None:
    assert Geo().locate(ip).country == country


def test_without_a_city_database_there_is_no_city_or_region() -> None:
    place = Geo().locate("8.8.8.8")
    assert (place.region, place.city) == (None, None)


def test_enrichment_fills_what_the_client_left_out() -> None:
    found = enrich(event(user_agent=IPHONE_SAFARI, ip_address="8.8.8.8"), Geo())
    assert (found.device_type, found.browser, found.os, found.country, found.is_bot) == (
        "mobile",
        "Mobile Safari",
        "iOS",
        "US",
        False,
    )


def test_client_supplied_values_win() -> None:
    supplied = event(
        user_agent=IPHONE_SAFARI,
        ip_address="8.8.8.8",
        device_type="tablet",
        browser="MyApp",
        os="iPadOS",
        country="DE",
        city="Berlin",
        region="Berlin",
    )
    found = enrich(supplied, Geo())
    assert (
        found.device_type,
        found.browser,
        found.os,
        found.country,
        found.city,
        found.region,
    ) == (
        "tablet",
        "MyApp",
        "iPadOS",
        "DE",
        "Berlin",
        "Berlin",
    )


def test_bot_flag_comes_from_the_user_agent_even_when_the_client_describes_the_device() -> None:
    assert enrich(event(user_agent=GOOGLEBOT, device_type="desktop"), Geo()).is_bot


def test_no_user_agent_no_device() -> None:
    found = enrich(event(), Geo())
    assert (found.device_type, found.browser, found.is_bot) == (None, None, False)


# A MaxMind DB holding one network, written by hand (format spec 2.0), so the
# City path is tested with the real maxminddb reader and no downloaded file.
def _mmdb_value(value: Any) -> bytes:
    if isinstance(value, str):
        data = value.encode()
        assert len(data) < 29
        return bytes([(2 << 5) | len(data)]) + data
    if isinstance(value, dict):
        out = bytes([(7 << 5) | len(value)])
        for key, item in value.items():
            out += _mmdb_value(key) + _mmdb_value(item)
        return out
    if isinstance(value, list):
        return bytes([len(value), 11 - 7]) + b"".join(_mmdb_value(v) for v in value)
    if isinstance(value, tuple):  # (type number, int): the reader checks metadata types
        kind, number = value
        digits: bytes = number.to_bytes(8, "big").lstrip(b"\0")
        if kind < 8:
            return bytes([(kind << 5) | len(digits)]) + digits
        return bytes([len(digits), kind - 7]) + digits
    raise TypeError(value)


def write_city_db(path: Path, network: str, prefix: int, record: dict[str, Any]) -> None:
    bits = "".join(f"{int(octet):08b}" for octet in network.split("."))[:prefix]
    node_count = prefix
    data_pointer = node_count + 16  # data offset 0, past the 16-byte separator
    tree = b""
    for depth, bit in enumerate(bits):
        follow = data_pointer if depth == prefix - 1 else depth + 1
        left, right = (follow, node_count) if bit == "0" else (node_count, follow)
        tree += struct.pack(">I", left)[1:] + struct.pack(">I", right)[1:]
    uint16, uint32, uint64 = 5, 6, 9
    metadata = {
        "node_count": (uint32, node_count),
        "record_size": (uint16, 24),
        "ip_version": (uint16, 4),
        "database_type": "Test-City",
        "languages": ["en"],
        "binary_format_major_version": (uint16, 2),
        "binary_format_minor_version": (uint16, 0),
        "build_epoch": (uint64, 1_700_000_000),
        "description": {"en": "test"},
    }
    path.write_bytes(
        tree + b"\0" * 16 + _mmdb_value(record) + b"\xab\xcd\xefMaxMind.com" + _mmdb_value(metadata)
    )


def test_city_and_region_from_a_city_database(tmp_path: Path) -> None:
    db = tmp_path / "city.mmdb"
    write_city_db(
        db,
        "81.2.69.0",
        24,
        {
            "city": {"names": {"en": "London"}},
            "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
            "country": {"iso_code": "GB"},
        },
    )
    geo = Geo(str(db))
    try:
        assert geo.locate("81.2.69.160") == Location(country="GB", region="England", city="London")
        # Outside the database's one network: the country still comes from geoip2fast.
        assert geo.locate("8.8.8.8") == Location(country="US")
    finally:
        geo.close()
