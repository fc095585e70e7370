"""An Event as one row of `user_events`, ready for binary COPY, all derived from the row format.

`COLUMNS`, `COPY_TYPES`, the positions of dictionary texts and of the user
agent's id, and `to_row` itself come from `userflow.events.columns`. Values are
put in the form the binary COPY dumpers expect, so no per-row conversion
happens at write time except the ids of user agents and texts, which only the
database hands out (the writer swaps them in).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Final

import orjson

from userflow.events import columns
from userflow.events.columns import Kind
from userflow.events.enrich import Enrichment, Geo, enrich
from userflow.events.model import Event
from userflow.events.timestamps import aware

COLUMNS: Final = columns.NAMES
# Binary COPY's wire type per column. The enum goes as text: in binary COPY an
# enum's wire form is its label, and no type name travels with the data.
_WIRE_TYPES: Final = {"timestamp with time zone": "timestamptz", "integer": "int4",
                      "smallint": "int2", "boolean": "bool", "event_type": "text"}
COPY_TYPES: Final = tuple(_WIRE_TYPES.get(c.pg_type, c.pg_type) for c in columns.COLUMNS)
USER_AGENT_ID: Final = next(i for i, c in enumerate(columns.COLUMNS) if c.kind is Kind.AGENT_ID)
# Columns that hold a text_value id; `to_row` leaves the text there and the
# writer swaps it for the id.
TEXT_IDS: Final = tuple(i for i, c in enumerate(columns.COLUMNS) if c.kind is Kind.TEXT_ID)
# The user_agent column is UNIQUE, and a btree entry may not pass 2704 bytes.
USER_AGENT_MAX_CHARS: Final = columns.USER_AGENT_MAX
USER_AGENT_MAX_BYTES: Final = 2048

# PostgreSQL's own address family numbers in the binary inet format.
_PGSQL_AF_INET: Final = 2
_PGSQL_AF_INET6: Final = 3
_INET_HEADER = struct.Struct("BBBB")


class Unstorable(ValueError):
    """An event that passed the storable check but still cannot become a row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@lru_cache(maxsize=65_536)
def inet_binary(text: str) -> bytes:
    """The address (canonical, as the storable check made sure) in PostgreSQL's binary inet format."""
    address = ipaddress.ip_address(text)
    packed = address.packed
    family = _PGSQL_AF_INET if address.version == 4 else _PGSQL_AF_INET6
    return _INET_HEADER.pack(family, len(packed) * 8, 0, len(packed)) + packed


def _inet(text: str | None) -> bytes | None:
    return None if text is None else inet_binary(text)


def _jsonb(value: dict[str, Any] | None, field: str) -> bytes | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:  # what the storable check missed: a bug
        raise Unstorable(f"bad_json:{field}") from exc


def clip_user_agent(ua: str) -> str:
    if len(ua) <= USER_AGENT_MAX_CHARS and ua.isascii():
        return ua
    ua = ua[:USER_AGENT_MAX_CHARS]
    encoded = ua.encode()
    if len(encoded) <= USER_AGENT_MAX_BYTES:
        return ua
    return encoded[:USER_AGENT_MAX_BYTES].decode(errors="ignore")


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _expression(column: columns.Column) -> str:
    """The Python expression that makes one column's value from `event` and `found`."""
    kind, field = column.kind, column.field
    if field is None:
        return f"found.{column.name}"
    if column.enriched:
        return f"found.{field}"
    if kind is Kind.TIME:
        return f"aware(event.{field})"
    if kind is Kind.AGENT_ID:
        return "None"
    if kind is Kind.INET:
        return f"inet(event.{field})"
    if kind is Kind.JSON:
        return f"jsonb(event.{field}, {field!r})"
    return f"event.{field}"


def _row_maker() -> Callable[[Event, Enrichment], list[Any]]:
    """One list display built from the row format, as dataclasses build __init__.

    A literal list costs a third of a loop over the columns per row, and a
    row is made for every event the consumer stores.
    """
    body = ", ".join(_expression(c) for c in columns.COLUMNS)
    namespace: dict[str, Any] = {"aware": aware, "inet": _inet, "jsonb": _jsonb}
    exec(f"def make(event, found):\n    return [{body}]\n", namespace)  # noqa: S102
    maker: Callable[[Event, Enrichment], list[Any]] = namespace["make"]
    return maker


_make_row: Final = _row_maker()


def to_row(event: Event, geo: Geo) -> tuple[list[Any], str | None]:
    """The COPY row and the (clipped) user agent whose id goes in USER_AGENT_ID."""
    ua = event.user_agent
    return _make_row(event, enrich(event, geo)), None if ua is None else clip_user_agent(ua)
