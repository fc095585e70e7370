"""The dead-letter topic: messages that can never be stored, with the reason in headers.

The original key, value and headers are kept, so a fixed consumer (or a
person) can replay a dead letter as it was first sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from confluent_kafka import KafkaError, Message, Producer

from userflow.consumer.batch import Poison
from userflow.consumer.metrics import DEAD_LETTERED

log = logging.getLogger(__name__)

REASON_HEADER: Final = "x-userflow-reason"
DETAIL_HEADER: Final = "x-userflow-error"
TOPIC_HEADER: Final = "x-userflow-source-topic"
PARTITION_HEADER: Final = "x-userflow-source-partition"
OFFSET_HEADER: Final = "x-userflow-source-offset"


class DeadLetterUnavailable(RuntimeError):
    """Kafka did not acknowledge every dead letter; the batch's offsets must wait."""


Headers = list[tuple[str, str | bytes | None]]


def headers(poison: Poison) -> Headers:
    """The message's own headers, then where it came from and why it is here."""
    message = poison.message
    original = message.headers() or []
    kept: Headers = list(original.items() if isinstance(original, dict) else original)
    ours: Headers = [
        (REASON_HEADER, poison.reason.encode()),
        (TOPIC_HEADER, (message.topic() or "").encode()),
        (PARTITION_HEADER, str(message.partition()).encode()),
        (OFFSET_HEADER, str(message.offset()).encode()),
    ]
    if poison.detail:
        ours.append((DETAIL_HEADER, poison.detail.encode(errors="replace")))
    return kept + ours


class DeadLetters:
    """An idempotent producer for the dead-letter topic; `deliver` returns once Kafka acked."""

    def __init__(self, bootstrap: str, topic: str, timeout: float = 30.0) -> None:
        self.topic = topic
        self._timeout = timeout
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                # Fail a delivery within the flush wait instead of after librdkafka's 5 minutes.
                "message.timeout.ms": int(timeout * 1000),
                "client.id": "userflow-consumer-dlq",
            }
        )

    def deliver(self, poison: list[Poison]) -> None:
        """Send what is not yet delivered and wait for Kafka's acks.

        Raises DeadLetterUnavailable when any was not acknowledged.
        """
        pending = [p for p in poison if not p.delivered]
        if not pending:
            return
        for item in pending:
            message = item.message
            try:
                self._producer.produce(
                    self.topic,
                    value=message.value(),
                    key=message.key(),
                    headers=headers(item),
                    on_delivery=self._on_delivery(item),
                )
            except BufferError as exc:
                raise DeadLetterUnavailable("dead-letter producer queue is full") from exc
        self._producer.flush(self._timeout)
        failed = sum(1 for p in pending if not p.delivered)
        if failed:
            raise DeadLetterUnavailable(f"{failed} of {len(pending)} dead letters not acknowledged")

    def close(self) -> None:
        self._producer.flush(self._timeout)

    def _on_delivery(self, item: Poison) -> Callable[[KafkaError | None, Message], None]:
        def done(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                log.warning(
                    "dead letter not delivered", extra={"reason": item.reason, "error": str(error)}
                )
                return
            item.delivered = True
            DEAD_LETTERED.labels(reason=item.reason).inc()
            log.info(
                "dead-lettered",
                extra={
                    "reason": item.reason,
                    "source_topic": item.message.topic(),
                    "source_partition": item.message.partition(),
                    "source_offset": item.message.offset(),
                },
            )

        return done
