"""The seed's `/send_event` payload → Event, for clients written against it.

The seed's client sends flat JSON: its column names, a unix-seconds
`event_timestamp`, `metadata` as a JSON-encoded string, and per-type extras
(`scroll_depth`, `key_pressed`, `form_id`, `form_data`) at the top level.
Fields without a column of their own are kept in metadata.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import orjson

from userflow.events import storable, timestamps
from userflow.events.errors import FieldError, InvalidEvent
from userflow.events.columns import MAX_CHARS, RANGE
from userflow.events.fields import Collector, event_id
from userflow.events.model import EVENT_TYPES, Event
from userflow.events.receipt import Receipt

_TEXT: Final = ("element_selector", "element_text", "page_title", "device_type", "browser", "os",
                "country", "city", "region", "experiment_id", "variant", "event_name")
_URLS: Final = ("page_url", "referrer", "last_page_url", "target_url")
_IDS: Final = ("user_id", "anonymous_id", "session_id")
_INTS: Final = ("x_coordinate", "y_coordinate")
_UTM: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# The seed's own event types; custom and identify are ours.
SEED_TYPES: Final = frozenset({"page_view", "click", "scroll", "form_submit", "hover", "keydown"})
# The seed's payload names each field as its column: the identity, but for
# what enrichment or the request supplies.
FIELD_PATHS: Final = {"metadata": "metadata", "traits": "traits"}
_HANDLED: Final = frozenset(
    {*_TEXT, *_URLS, *_IDS, *_INTS, *_UTM, "event_id", "event_timestamp", "company_id",
     "event_type", "element_type", "user_agent", "ip_address", "scroll_depth",
     "session_duration_seconds", "metadata", "traits", "sent_at"}
)


def _metadata(payload: dict[str, Any], c: Collector) -> dict[str, Any]:
    """The client's metadata (an object, or a string holding one) plus every field without a column."""
    raw = payload.get("metadata")
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            c.add("metadata", "must be a JSON object or a string holding one")
            raw = {}
    metadata = c.mapping(raw, "metadata")
    # A set difference finds the (usually no) extra fields at C speed; the
    # loop then keeps them in the order the client sent them.
    if payload.keys() - _HANDLED:
        metadata.update((k, v) for k, v in payload.items() if k not in _HANDLED)
    return metadata


def _time(payload: dict[str, Any], r: Receipt, c: Collector) -> tuple[datetime, datetime | None]:
    """(event time, sent_at); the time of receipt when the payload gives none."""
    ts = r.received_at
    try:
        sent_at = timestamps.parse(payload["sent_at"], "sent_at") if payload.get("sent_at") else None
        if payload.get("event_timestamp") is not None:
            ts = timestamps.corrected(
                timestamps.parse(payload["event_timestamp"], "event_timestamp"), sent_at,
                r.received_at, "event_timestamp")
            timestamps.check_window(ts, r.received_at, r.retention_days, r.max_future_seconds,
                                    "event_timestamp")
    except InvalidEvent as bad:
        c.errors.extend(bad.errors)
        sent_at = None
    return ts, sent_at


def _columns(payload: dict[str, Any], c: Collector) -> dict[str, Any]:
    """The plain text, URL, coordinate and UTM columns, checked in this order.

    Only the fields the client filled are checked; the rest keep Event's default, None.
    """
    values: dict[str, Any] = {}
    for name in _TEXT:
        if (value := payload.get(name)) is not None:
            values[name] = c.text(value, name, MAX_CHARS[name])
    for name in _URLS:
        if (value := payload.get(name)) is not None:
            values[name] = c.url(value, name)
    for name in _INTS:
        if (value := payload.get(name)) is not None:
            values[name] = c.integer(value, name)
    for name in _UTM:
        if (value := payload.get(name)) is not None:
            values[name] = c.text(value, name, MAX_CHARS[name])
    return values


def from_seed(payload: Any, r: Receipt) -> Event:
    if not isinstance(payload, dict):
        raise InvalidEvent([FieldError("body", "must be a JSON object")])
    c = Collector()
    raw_type = payload.get("event_type")
    # Any JSON value may come here, and dicts and lists cannot be looked up in a set.
    event_type = raw_type if isinstance(raw_type, str) and raw_type in EVENT_TYPES else None
    if event_type is None:
        c.add("event_type", f"must be one of {', '.join(sorted(EVENT_TYPES))}")
    ids = {name: c.identifier(payload.get(name), name) for name in _IDS}
    if ids["user_id"] is None and ids["anonymous_id"] is None and "user_id" not in {
        e.field for e in c.errors
    }:
        c.add("user_id", "is required")
    if event_type == "custom" and not payload.get("event_name"):
        c.add("event_name", "is required for custom events")
    # The seed's table holds page_url NOT NULL: its six interactions happen on a page.
    if event_type in SEED_TYPES and payload.get("page_url") in (None, ""):
        c.add("page_url", "is required")

    ts, sent_at = _time(payload, r, c)
    metadata = _metadata(payload, c)
    traits = c.mapping(payload.get("traits"), "traits")
    columns = _columns(payload, c)
    event = Event(
        event_id=event_id(payload.get("event_id"), r.company_id, c, "event_id"),
        company_id=r.company_id,
        event_type=event_type or "custom",  # with errors the event is refused anyway
        event_timestamp=ts,
        received_at=r.received_at,
        sent_at=sent_at,
        element_type=c.text(payload.get("element_type"), "element_type", MAX_CHARS["element_type"]),
        scroll_depth=c.integer(payload.get("scroll_depth"), "scroll_depth", *RANGE["scroll_depth"]),
        session_duration_seconds=c.integer(
            payload.get("session_duration_seconds"), "session_duration_seconds", 0),
        user_agent=c.text(payload.get("user_agent"), "user_agent", MAX_CHARS["user_agent"])
        or r.request_user_agent,
        ip_address=c.ip(payload.get("ip_address"), "ip_address") or r.request_ip,
        traits=traits or None,
        metadata=metadata or None,
        **ids,
        **columns,
    )
    if not c.errors:
        storable.check(event, r, FIELD_PATHS, c)
    if c.errors:
        raise InvalidEvent(c.errors)
    return event
