"""An Event as one row of `user_events`, ready for binary COPY.

Values are put in the form the binary COPY dumpers expect (see
`writer.COPY_TYPES`), so no per-row conversion happens at write time
except the user agent's id, which only the database can hand out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Final

import orjson

from userflow.consumer.validate import inet_binary
from userflow.events.enrich import Geo, enrich
from userflow.events.model import Event

# The order of user_events in sql/002_events.sql.
COLUMNS: Final = (
    "event_timestamp",
    "received_at",
    "sent_at",
    "company_id",
    "event_id",
    "event_type",
    "user_agent_id",
    "page_url_id",
    "page_title_id",
    "referrer_id",
    "last_page_url_id",
    "target_url_id",
    "element_selector_id",
    "element_text_id",
    "x_coordinate",
    "y_coordinate",
    "session_duration_seconds",
    "scroll_depth",
    "is_bot",
    "ip_address",
    "user_id",
    "anonymous_id",
    "session_id",
    "event_name",
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
    "traits",
    "metadata",
)
USER_AGENT_ID: Final = COLUMNS.index("user_agent_id")
# Columns that hold a text_value id; `to_row` leaves the text there and the
# writer swaps it for the id (only the database hands ids out).
TEXT_COLUMNS: Final = ("page_url_id", "page_title_id", "referrer_id", "last_page_url_id",
                       "target_url_id", "element_selector_id", "element_text_id")
TEXT_IDS: Final = tuple(COLUMNS.index(column) for column in TEXT_COLUMNS)
# The user_agent column is UNIQUE, and a btree entry may not pass 2704 bytes.
USER_AGENT_MAX_CHARS: Final = 1024
USER_AGENT_MAX_BYTES: Final = 2048


class Unstorable(ValueError):
    """An event that passed validation but still cannot become a row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _jsonb(value: dict[str, Any] | None, field: str) -> bytes | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:  # an integer past 64 bits, mostly
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


def to_row(event: Event, geo: Geo) -> tuple[list[Any], str | None]:
    """The COPY row and the (clipped) user agent whose id goes in USER_AGENT_ID."""
    found = enrich(event, geo)
    ua = event.user_agent
    if ua is not None:
        ua = clip_user_agent(ua)
    ip = event.ip_address
    row = [
        _aware(event.event_timestamp),
        _aware(event.received_at),
        None if event.sent_at is None else _aware(event.sent_at),
        event.company_id,
        event.event_id,
        event.event_type,
        None,
        event.page_url,
        event.page_title,
        event.referrer,
        event.last_page_url,
        event.target_url,
        event.element_selector,
        event.element_text,
        event.x_coordinate,
        event.y_coordinate,
        event.session_duration_seconds,
        event.scroll_depth,
        found.is_bot,
        None if ip is None else inet_binary(ip),
        event.user_id,
        event.anonymous_id,
        event.session_id,
        event.event_name,
        event.element_type,
        event.utm_source,
        event.utm_medium,
        event.utm_campaign,
        event.utm_term,
        event.utm_content,
        event.experiment_id,
        event.variant,
        # What the user agent says is in user_agent; a row keeps only what
        # the client stated itself.
        event.device_type,
        event.browser,
        event.os,
        found.country,
        found.city,
        found.region,
        _jsonb(event.traits, "traits"),
        _jsonb(event.metadata, "metadata"),
    ]
    return row, ua
