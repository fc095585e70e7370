"""The row format of `user_events`, written once: every column, its type, and its limit.

Everything that must agree with the table is derived from `COLUMNS`: the
ingest's limits on each field (`MAX_CHARS`), the check both the ingest and the
consumer run on a normalised event (`userflow.events.storable`), the binary
COPY types and the positions of dictionary texts (`userflow.consumer.rows`).
tests/integration/test_row_format.py compares it to the live table.

A column is made from its Event `field`; an `enriched` column holds what
enrichment made of that field (the client's value when it gave one, else the
place its address is in), and a column without a field is enrichment's alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final


class Kind(Enum):
    TIME = "time"
    UUID = "uuid"
    ENUM = "enum"
    # An integer id: of the text in `field` (text_value) or of the user agent (user_agent).
    TEXT_ID = "text_id"
    AGENT_ID = "agent_id"
    INT = "int"
    BOOL = "bool"
    INET = "inet"
    # Text under a btree index (an identifier), and any other text.
    ID = "id"
    TEXT = "text"
    JSON = "json"


# Limits, in characters. Identifiers are indexed (a btree entry may not pass
# 2704 bytes; 256 characters of UTF-8 stay well under); URLs are refused past
# their limit, other texts cut (as Amplitude does).
ID_MAX: Final = 256
URL_MAX: Final = 8192
TEXT_MAX: Final = 1024
NAME_MAX: Final = 256
TYPE_MAX: Final = 64
USER_AGENT_MAX: Final = 1024
INT4_MIN: Final = -(2**31)
INT4_MAX: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    # As PostgreSQL's format_type() names it.
    pg_type: str
    kind: Kind
    field: str | None = None
    # Characters, for texts; the inclusive range, for integers.
    max_chars: int | None = None
    low: int | None = None
    high: int | None = None
    enriched: bool = False


def _time(name: str) -> Column:
    return Column(name, "timestamp with time zone", Kind.TIME, name)


def _text_id(name: str, max_chars: int) -> Column:
    return Column(f"{name}_id", "integer", Kind.TEXT_ID, name, max_chars)


def _int(name: str, pg_type: str = "integer", low: int = INT4_MIN, high: int = INT4_MAX) -> Column:
    return Column(name, pg_type, Kind.INT, name, low=low, high=high)


def _text(name: str, max_chars: int, kind: Kind = Kind.TEXT, enriched: bool = False) -> Column:
    return Column(name, "text", kind, name, max_chars, enriched=enriched)


# In the table's order (sql/002_events.sql: widest-aligned first).
COLUMNS: Final[tuple[Column, ...]] = (
    _time("event_timestamp"),
    _time("received_at"),
    _time("sent_at"),
    Column("company_id", "uuid", Kind.UUID, "company_id"),
    Column("event_id", "uuid", Kind.UUID, "event_id"),
    Column("event_type", "event_type", Kind.ENUM, "event_type"),
    Column("user_agent_id", "integer", Kind.AGENT_ID, "user_agent", USER_AGENT_MAX),
    _text_id("page_url", URL_MAX),
    _text_id("page_title", TEXT_MAX),
    _text_id("referrer", URL_MAX),
    _text_id("last_page_url", URL_MAX),
    _text_id("target_url", URL_MAX),
    _text_id("element_selector", TEXT_MAX),
    _text_id("element_text", TEXT_MAX),
    _int("x_coordinate"),
    _int("y_coordinate"),
    _int("session_duration_seconds", low=0),
    _int("scroll_depth", "smallint", 0, 100),
    Column("is_bot", "boolean", Kind.BOOL),
    Column("ip_address", "inet", Kind.INET, "ip_address"),
    _text("user_id", ID_MAX, Kind.ID),
    _text("anonymous_id", ID_MAX, Kind.ID),
    _text("session_id", ID_MAX, Kind.ID),
    _text("event_name", NAME_MAX),
    _text("element_type", TYPE_MAX),
    _text("utm_source", NAME_MAX),
    _text("utm_medium", NAME_MAX),
    _text("utm_campaign", NAME_MAX),
    _text("utm_term", NAME_MAX),
    _text("utm_content", NAME_MAX),
    _text("experiment_id", NAME_MAX),
    _text("variant", NAME_MAX),
    # Only what the client stated: what the user agent says is in user_agent.
    _text("device_type", TEXT_MAX),
    _text("browser", TEXT_MAX),
    _text("os", TEXT_MAX),
    _text("country", TEXT_MAX, enriched=True),
    _text("city", TEXT_MAX, enriched=True),
    _text("region", TEXT_MAX, enriched=True),
    Column("traits", "jsonb", Kind.JSON, "traits"),
    Column("metadata", "jsonb", Kind.JSON, "metadata"),
)

NAMES: Final = tuple(c.name for c in COLUMNS)
BY_NAME: Final = {c.name: c for c in COLUMNS}
# The most characters each Event field may hold, and the range of each integer, by field name.
MAX_CHARS: Final = {c.field: c.max_chars for c in COLUMNS if c.field and c.max_chars}
RANGE: Final = {c.field: (c.low, c.high) for c in COLUMNS
                if c.field and c.low is not None and c.high is not None}
