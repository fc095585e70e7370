"""From normalised payloads to acknowledged Kafka messages, with a verdict each."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from userflow import topics
from userflow.config import Settings
from userflow.events.errors import FieldError, InvalidEvent
from userflow.events.model import Event, encode
from userflow.events.receipt import Receipt
from userflow.ingest.producer import EventProducer, Outgoing
from userflow.ingest.tenants import Tenant

Normaliser = Callable[[Any, Receipt], Event]


@dataclass(frozen=True, slots=True)
class Verdict:
    index: int
    event_id: uuid.UUID | None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        """The verdict as a batch answer lists it, for orjson.

        The event id stays a UUID: orjson writes its canonical text itself,
        several times faster than str() on each of a batch's ids.
        """
        out: dict[str, Any] = {"index": self.index,
                               "status": "accepted" if self.accepted else "rejected"}
        if self.event_id is not None:
            out["event_id"] = self.event_id
        if self.errors:
            out["errors"] = [e.as_json() for e in self.errors]
        return out


def _partition_key(event: Event) -> bytes | None:
    # One session's events stay on one partition, so they are stored in order.
    actor = event.session_id or event.anonymous_id or event.user_id
    return actor.encode() if actor else None


async def accept(
    payloads: Sequence[Any],
    normalise: Normaliser,
    receipt: Receipt,
    tenant: Tenant,
    producer: EventProducer,
    settings: Settings,
    headers: list[tuple[str, bytes]] | None = None,
) -> list[Verdict]:
    """Normalise each payload; send the good ones; return once Kafka acknowledged them all.

    `headers` go on every message (the request's trace context).
    """
    topic = topics.topic_for(settings.topic_prefix, tenant.slug, tenant.topic_mode)
    limit = settings.max_event_bytes
    verdicts: list[Verdict] = []
    outgoing: list[Outgoing] = []
    for index, payload in enumerate(payloads):
        try:
            event = normalise(payload, receipt)
        except InvalidEvent as bad:
            verdicts.append(Verdict(index, None, bad.errors))
            continue
        value = encode(event)
        if len(value) > limit:
            verdicts.append(Verdict(index, event.event_id, [FieldError(
                "event", f"event is larger than {limit} bytes")]))
            continue
        outgoing.append(Outgoing(topic, _partition_key(event), value, headers))
        verdicts.append(Verdict(index, event.event_id))
    if outgoing:
        await producer.send_all(outgoing)
    return verdicts
