"""What PostgreSQL would refuse, found in Python before the write.

A refused row would fail its whole batch, so every event is checked here
against the column types of `user_events` and given a short machine reason
(`<kind>:<field>`) that travels with it to the dead-letter topic.
"""

from __future__ import annotations

import ipaddress
import struct
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from userflow.events.model import EVENT_TYPES, Event

INT4_MIN: Final = -(2**31)
INT4_MAX: Final = 2**31 - 1
# Columns under a btree index (or the view index on coalesce(user_id,
# anonymous_id)): an index entry may not pass 2704 bytes, and 512
# characters of UTF-8 stay under that whatever they are.
INDEXED_TEXT_MAX: Final = 512
TEXT_MAX: Final = 65_536
# Older events are refused at ingest; one this old is a broken clock, and
# storing it would create a partition nobody keeps.
OLDEST: Final = datetime(2000, 1, 1, tzinfo=UTC)

INDEXED_TEXT_FIELDS: Final = ("user_id", "anonymous_id", "session_id")
TEXT_FIELDS: Final = (
    "event_name",
    "page_url",
    "page_title",
    "referrer",
    "last_page_url",
    "target_url",
    "element_selector",
    "element_text",
    "element_type",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "experiment_id",
    "variant",
    "device_type",
    "browser",
    "os",
    "country",
    "city",
    "region",
)
INT4_FIELDS: Final = ("x_coordinate", "y_coordinate", "session_duration_seconds")
JSON_FIELDS: Final = ("traits", "metadata")

# PostgreSQL's own address family numbers in the binary inet format.
_PGSQL_AF_INET: Final = 2
_PGSQL_AF_INET6: Final = 3
_INET_HEADER = struct.Struct("BBBB")


@lru_cache(maxsize=65_536)
def inet_binary(text: str) -> bytes | None:
    """The address in PostgreSQL's binary inet format, or None when it is not one address."""
    # ipaddress accepts an IPv6 zone ("fe80::1%eth0"); inet does not.
    if "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    packed = address.packed
    family = _PGSQL_AF_INET if address.version == 4 else _PGSQL_AF_INET6
    return _INET_HEADER.pack(family, len(packed) * 8, 0, len(packed)) + packed


def _nul_in_json(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _nul_in_json(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_nul_in_json(item) for item in value)
    return False


def _nul_field(event: Event) -> str | None:
    # A long user agent is cut rather than refused, so it is only checked for NULs.
    for field in INDEXED_TEXT_FIELDS + TEXT_FIELDS + ("user_agent", "ip_address"):
        value = getattr(event, field)
        if value is not None and "\x00" in value:
            return field
    for field in JSON_FIELDS:
        if _nul_in_json(getattr(event, field)):
            return field
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def problem(event: Event, raw: bytes, max_future: timedelta) -> str | None:
    """Why `event` (decoded from `raw`) can never be stored, or None when it can."""
    # A NUL can only reach a string through the JSON escape, so one scan of
    # the raw bytes spares the field walk for nearly every event.
    if b"\\u0000" in raw:
        field = _nul_field(event)
        if field is not None:
            return f"nul_byte:{field}"
    if event.event_type not in EVENT_TYPES:
        return "bad_enum:event_type"
    # Binary COPY would not refuse these: psycopg's int4/int2 dumpers wrap an
    # out-of-range value silently (2**31 is stored as -2**31; measured).
    for field in INT4_FIELDS:
        number = getattr(event, field)
        if number is not None and not INT4_MIN <= number <= INT4_MAX:
            return f"out_of_range:{field}"
    if event.scroll_depth is not None and not 0 <= event.scroll_depth <= 100:
        return "out_of_range:scroll_depth"
    for field in INDEXED_TEXT_FIELDS:
        value = getattr(event, field)
        if value is not None and len(value) > INDEXED_TEXT_MAX:
            return f"too_long:{field}"
    if len(raw) > TEXT_MAX:
        for field in TEXT_FIELDS:
            value = getattr(event, field)
            if value is not None and len(value) > TEXT_MAX:
                return f"too_long:{field}"
    if event.ip_address is not None and inet_binary(event.ip_address) is None:
        return "bad_inet:ip_address"
    timestamp = _aware(event.event_timestamp)
    if timestamp < OLDEST or timestamp > _aware(event.received_at) + max_future:
        return "out_of_range:event_timestamp"
    return None
