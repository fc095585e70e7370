"""The last step: commit a stored batch's offsets to Kafka, synchronously, and count it."""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaException, TopicPartition

from userflow.consumer.batch import Batch
from userflow.consumer.metrics import (
    BATCH_SIZE,
    DUPLICATES_SKIPPED,
    EVENTS_CONSUMED,
    LAG,
    ROWS_INSERTED,
)

log = logging.getLogger(__name__)


class CommitOffsets:
    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def submit(self, payload: Batch) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in payload.offsets.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The rows are stored; reading these messages again only finds duplicates.
            log.warning("offset commit failed", extra={"error": str(exc)})
        EVENTS_CONSUMED.inc(payload.consumed)
        ROWS_INSERTED.inc(payload.inserted)
        DUPLICATES_SKIPPED.inc(payload.duplicates)
        BATCH_SIZE.observe(payload.consumed)
        for (topic, partition), offset in payload.offsets.items():
            # Cached: the high watermark of the last fetch, no request to the broker.
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if high >= 0:
                LAG.labels(topic=topic, partition=str(partition)).set(max(0, high - offset))
        log.debug(
            "batch committed",
            extra={
                "events": payload.consumed,
                "inserted": payload.inserted,
                "duplicates": payload.duplicates,
                "dead_lettered": len(payload.poison),
            },
        )

    def poll(self) -> None:
        pass

    def join(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass

    def terminate(self) -> None:
        pass
