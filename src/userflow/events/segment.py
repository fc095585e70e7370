"""Segment-spec messages (track, page, screen, identify, group, alias) → Event.

https://segment.com/docs/connections/spec/common/ is the contract; the
built-in interaction types (click, scroll, …) arrive as track calls named
after them, every other track call is a custom event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from userflow.events import storable, timestamps
from userflow.events.errors import FieldError, InvalidEvent
from userflow.events.columns import MAX_CHARS, RANGE
from userflow.events.fields import Collector, event_id
from userflow.events.model import Event
from userflow.events.receipt import Receipt

INTERACTIONS: Final = frozenset({"click", "scroll", "hover", "keydown", "form_submit", "page_view"})
SEGMENT_TYPES: Final = ("track", "page", "screen", "identify", "group", "alias")

# Properties read into a column, by column; where a column has several names
# the first one present wins and the others stay in metadata.
_PROPERTY_COLUMNS: Final = {
    "element_selector": ("element_selector", "selector"),
    "element_text": ("element_text", "text"),
    "element_type": ("element_type", "tag"),
    "target_url": ("target_url", "href"),
    "x_coordinate": ("x_coordinate", "x"),
    "y_coordinate": ("y_coordinate", "y"),
    "scroll_depth": ("scroll_depth",),
    "last_page_url": ("last_page_url",),
    "session_duration_seconds": ("session_duration_seconds",),
    "experiment_id": ("experiment_id",),
    "variant": ("variant",),
    "page_url": ("url",),
    "referrer": ("referrer",),
    "page_title": ("title",),
    "session_id": ("sessionId", "session_id"),
}
# Page properties that are only dropped: the page URL already holds them
# (analytics.js sends both with every page call).
_DROPPED: Final = frozenset({"path", "search"})
# The same table by property name: the column each name fills, and the names
# that beat it to that column when both are sent.
_COLUMN_OF: Final = {name: col for col, names in _PROPERTY_COLUMNS.items() for name in names}
_BEATEN_BY: Final = {
    name: names[:i] for names in _PROPERTY_COLUMNS.values() for i, name in enumerate(names)
}
# Where each Event field came from in a message, to name it when the storable
# check (userflow.events.storable) refuses it.
FIELD_PATHS: Final = {
    **{col: f"properties.{names[0]}" for col, names in _PROPERTY_COLUMNS.items()},
    "user_id": "userId", "anonymous_id": "anonymousId", "session_id": "context.sessionId",
    "event_name": "event", "event_timestamp": "timestamp", "ip_address": "context.ip",
    "user_agent": "context.userAgent", "metadata": "properties", "traits": "traits",
}
_CAMPAIGN: Final = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}


def _split_properties(props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values by column, the properties left for metadata), in one pass over the properties."""
    columns: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name, value in props.items():
        column = _COLUMN_OF.get(name)
        if column is not None and props.keys().isdisjoint(_BEATEN_BY[name]):
            columns[column] = value
        elif name not in _DROPPED:
            rest[name] = value
    return columns, rest


def _event_type(kind: str, event: Any, c: Collector) -> tuple[str, str | None]:
    """(event_type, event_name) for a message's type and, for track, its event name."""
    if kind in ("page", "screen"):
        return "page_view", None
    if kind == "identify":
        return "identify", None
    if kind in ("group", "alias"):
        # Kept as custom events so nothing a client sends is lost.
        return "custom", f"${kind}"
    name = c.text(event, "event", MAX_CHARS["event_name"], cut=False)
    if name is None:
        c.add("event", "is required for track and must be a non-empty string")
        return "custom", None
    if name in INTERACTIONS:
        return name, None
    return "custom", name


def _utm_from_url(url: str | None) -> dict[str, str | None]:
    if not url or "utm_" not in url:
        return {}
    query = dict(parse_qsl(urlsplit(url).query))
    return {k: v[:MAX_CHARS[k]] for k in _CAMPAIGN if (v := query.get(k)) and "\x00" not in v}


def _time(msg: dict[str, Any], r: Receipt, c: Collector) -> tuple[datetime, datetime | None]:
    sent_at = r.sent_at
    try:
        if msg.get("sentAt") is not None:
            sent_at = timestamps.parse(msg["sentAt"], "sentAt")
        raw = msg.get("timestamp", msg.get("originalTimestamp"))
        if raw is None:
            return r.received_at, sent_at
        field = "timestamp" if "timestamp" in msg else "originalTimestamp"
        ts = timestamps.corrected(timestamps.parse(raw, field), sent_at, r.received_at, field)
        timestamps.check_window(ts, r.received_at, r.retention_days, r.max_future_seconds, field)
        return ts, sent_at
    except InvalidEvent as bad:
        c.errors.extend(bad.errors)
        return r.received_at, sent_at


def from_segment(msg: Any, r: Receipt, forced_type: str | None = None) -> Event:
    """Normalise one Segment message; raises InvalidEvent naming every bad field."""
    if not isinstance(msg, dict):
        raise InvalidEvent([FieldError("message", "must be a JSON object")])
    c = Collector()
    kind = forced_type or msg.get("type")
    if kind not in SEGMENT_TYPES:
        c.add("type", f"must be one of {', '.join(SEGMENT_TYPES)}")
        raise InvalidEvent(c.errors)
    event_type, event_name = _event_type(kind, msg.get("event"), c)
    if kind in ("page", "screen"):
        event_name = c.text(msg.get("name"), "name", MAX_CHARS["event_name"])

    user_id = c.identifier(msg.get("userId"), "userId")
    anonymous_id = c.identifier(msg.get("anonymousId"), "anonymousId")
    if user_id is None and anonymous_id is None and not any(
        e.field in ("userId", "anonymousId") for e in c.errors
    ):
        c.add("userId", "userId or anonymousId is required")

    context = c.mapping(msg.get("context"), "context")
    props = c.mapping(msg.get("properties"), "properties")
    page = c.mapping(context.get("page"), "context.page")
    campaign = c.mapping(context.get("campaign"), "context.campaign")
    traits = c.mapping(msg.get("traits") or context.get("traits"), "traits") if kind in (
        "identify", "group") else {}

    columns, metadata = _split_properties(props)
    page_url = c.url(columns.get("page_url") or page.get("url"), "properties.url")
    referrer = c.url(columns.get("referrer") or page.get("referrer"), "properties.referrer")
    title = c.text(columns.get("page_title") or page.get("title"), "properties.title")
    # A session id in context (sessionId, else session_id) wins over one in properties.
    session = context["sessionId"] if "sessionId" in context else context.get("session_id")
    if session is None:
        session = columns.get("session_id")

    utm = _utm_from_url(page_url)
    for column, key in _CAMPAIGN.items():
        if key in campaign:
            utm[column] = c.text(campaign[key], f"context.campaign.{key}", MAX_CHARS[column])

    if kind == "group":
        metadata["groupId"] = msg.get("groupId")
    elif kind == "alias":
        metadata["previousId"] = msg.get("previousId")
    ts, sent_at = _time(msg, r, c)
    eid = event_id(msg.get("messageId"), r.company_id, c, "messageId")
    ip = c.ip(context.get("ip"), "context.ip") or r.request_ip
    user_agent = c.text(context.get("userAgent"), "context.userAgent", MAX_CHARS["user_agent"])

    event = Event(
        event_id=eid,
        company_id=r.company_id,
        event_type=event_type,
        event_timestamp=ts,
        received_at=r.received_at,
        sent_at=sent_at,
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=c.identifier(session, "context.sessionId"),
        event_name=event_name,
        page_url=page_url,
        page_title=title,
        referrer=referrer,
        last_page_url=c.url(columns.get("last_page_url"), "properties.last_page_url"),
        target_url=c.url(columns.get("target_url"), "properties.target_url"),
        element_selector=c.text(columns.get("element_selector"), "properties.element_selector"),
        element_text=c.text(columns.get("element_text"), "properties.element_text"),
        element_type=c.text(columns.get("element_type"), "properties.element_type",
                            MAX_CHARS["element_type"]),
        x_coordinate=c.integer(columns.get("x_coordinate"), "properties.x"),
        y_coordinate=c.integer(columns.get("y_coordinate"), "properties.y"),
        scroll_depth=c.integer(columns.get("scroll_depth"), "properties.scroll_depth",
                               *RANGE["scroll_depth"]),
        session_duration_seconds=c.integer(
            columns.get("session_duration_seconds"), "properties.session_duration_seconds", 0),
        experiment_id=c.text(columns.get("experiment_id"), "properties.experiment_id",
                             MAX_CHARS["experiment_id"]),
        variant=c.text(columns.get("variant"), "properties.variant", MAX_CHARS["variant"]),
        user_agent=user_agent,
        ip_address=ip,
        traits=traits or None,
        metadata=metadata or None,
        **utm,
    )
    if not c.errors:
        storable.check(event, r, FIELD_PATHS, c)
    if c.errors:
        raise InvalidEvent(c.errors)
    return event
