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
from userflow.ingest.responses import JSONAnswer
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
            out["errors"] = [e.as_json() for e in self.errors[:MAX_ERRORS_PER_EVENT]]
        return out


# An event may be wrong in many ways; the first few tell the client what to fix.
MAX_ERRORS_PER_EVENT = 10


def batch_answer(verdicts: Sequence[Verdict], max_rejected: int) -> JSONAnswer:
    """A batch's answer: every accepted event's verdict and the first `max_rejected` rejected ones.

    Bounded, so a body of tiny invalid entries cannot buy an answer many times
    its size: the rejected verdicts past the first `max_rejected` are counted
    in `results_omitted`, not listed (an index listed nowhere was rejected).
    """
    results: list[dict[str, Any]] = []
    rejected = 0
    for verdict in verdicts:
        if not verdict.accepted:
            rejected += 1
            if rejected > max_rejected:
                continue
        results.append(verdict.as_json())
    accepted = len(verdicts) - rejected
    answer: dict[str, Any] = {"accepted": accepted, "rejected": rejected, "results": results}
    if rejected > max_rejected:
        answer["results_omitted"] = rejected - max_rejected
    return JSONAnswer(answer, status_code=200 if accepted else 400)


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

    The normalisers end with the check the consumer runs before it writes
    (userflow.events.storable), so what is acknowledged here is stored there.
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
