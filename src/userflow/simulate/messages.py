"""Segment-spec messages as the ingest API takes them (page, track, identify)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from userflow.simulate.site import Campaign, Page

Message = dict[str, Any]

LIBRARY: Final = {"name": "userflow-simulate", "version": "1"}
INTERACTIONS: Final = frozenset({"click", "scroll", "hover", "keydown", "form_submit"})

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso(ms: int) -> str:
    """Epoch milliseconds → ISO-8601 UTC with Z, exactly: timedelta does not round as floats do."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")[:-6] + "Z"


def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def context(
    ua: str, ip: str, session_id: str, at: Page, referrer: str, campaign: Campaign | None
) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "userAgent": ua,
        "ip": ip,
        "sessionId": session_id,
        "page": {"url": at.url, "path": at.path, "referrer": referrer, "title": at.title},
        "library": dict(LIBRARY),
    }
    if campaign is not None:
        fields = {
            "source": campaign.source,
            "medium": campaign.medium,
            "name": campaign.name,
            "term": campaign.term,
            "content": campaign.content,
        }
        ctx["campaign"] = {k: v for k, v in fields.items() if v is not None}
    return ctx


def message(
    kind: str,
    message_id: str,
    anonymous_id: str,
    user_id: str | None,
    ms: int,
    ctx: dict[str, Any],
    fields: dict[str, Any],
) -> Message:
    """The fields every message has, then the type's own: page_fields, track_fields, traits."""
    msg: Message = {"messageId": message_id, "type": kind, "anonymousId": anonymous_id}
    if user_id is not None:
        msg["userId"] = user_id
    msg["timestamp"] = iso(ms)
    msg["context"] = ctx
    msg.update(fields)
    return msg


def page_fields(at: Page, referrer: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    properties = {"url": at.url, "path": at.path, "referrer": referrer, "title": at.title}
    return {"name": at.name, "properties": properties | (extra or {})}


def track_fields(event: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "properties": properties}


def event_type(msg: Message) -> str:
    """DESIGN's event type of a message.

    page → page_view, track with a built-in name → that name, other track → custom.
    """
    kind: str = msg["type"]
    if kind == "page":
        return "page_view"
    if kind == "track":
        name: str = msg["event"]
        return name if name in INTERACTIONS else "custom"
    return kind
