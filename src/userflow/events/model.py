"""The canonical event: what the ingest API puts on Kafka and the consumer reads.

The wire format on Kafka is JSON of this struct; `v` is the schema version.
A consumer that meets a version it does not know sends the message to the
dead-letter topic instead of guessing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

import msgspec

SCHEMA_VERSION: Final = 1

# The seed's six interaction types, plus Segment's track (custom) and identify.
EVENT_TYPES: Final = frozenset(
    {"page_view", "click", "scroll", "form_submit", "hover", "keydown", "custom", "identify"}
)

UTM_FIELDS: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


# gc=False: an event holds only values decoded from JSON, so it can never
# be part of a reference cycle, and the collector need not track it.
class Event(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False,
    tag_field="v", tag=SCHEMA_VERSION,
):
    event_id: uuid.UUID
    company_id: uuid.UUID
    event_type: str
    event_timestamp: datetime
    received_at: datetime
    sent_at: datetime | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    session_id: str | None = None
    # Name of a custom (track) event; None for the built-in interaction types.
    event_name: str | None = None
    page_url: str | None = None
    page_title: str | None = None
    referrer: str | None = None
    last_page_url: str | None = None
    target_url: str | None = None
    element_selector: str | None = None
    element_text: str | None = None
    element_type: str | None = None
    x_coordinate: int | None = None
    y_coordinate: int | None = None
    scroll_depth: int | None = None
    session_duration_seconds: int | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    experiment_id: str | None = None
    variant: str | None = None
    user_agent: str | None = None
    ip_address: str | None = None
    # Client-supplied descriptions; enrichment fills what the client left out.
    device_type: str | None = None
    browser: str | None = None
    os: str | None = None
    country: str | None = None
    city: str | None = None
    region: str | None = None
    # identify: the user's traits; other events: properties without a column.
    traits: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class Envelope(msgspec.Struct, kw_only=True):
    """Just the version: why a message failed to decode as an Event of ours."""

    v: int = 0


_encoder = msgspec.json.Encoder()
_envelope_decoder = msgspec.json.Decoder(Envelope)
_event_decoder = msgspec.json.Decoder(Event)


class UnknownSchemaVersion(ValueError):
    def __init__(self, version: int) -> None:
        super().__init__(f"unknown schema version {version}")
        self.version = version


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(raw: bytes) -> Event:
    """Kafka bytes → Event; raises UnknownSchemaVersion or msgspec.DecodeError/ValidationError."""
    try:
        return _event_decoder.decode(raw)
    except msgspec.ValidationError:
        # Only now read the version alone: a message of another version is
        # not a malformed one of ours (and a good message is parsed once).
        version = _envelope_decoder.decode(raw).v
        if version != SCHEMA_VERSION:
            raise UnknownSchemaVersion(version) from None
        raise
