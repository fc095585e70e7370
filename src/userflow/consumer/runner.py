"""The consumer loop: poll Kafka, feed the step chain, pause when it pushes back.

One process is one group member. The chain (batch → decode → write →
commit) is built anew on every assignment; on revocation the old one is
joined, so its batch is written and committed, or dropped if the database
stays down (its offsets were not committed, so the next owner reads it
again). The eager `roundrobin` assignor revokes every partition at a
rebalance, which is what makes dropping the whole chain safe.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any, Final, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from userflow import topics
from userflow.config import Settings
from userflow.consumer.batch import BatchMessages
from userflow.consumer.commit import CommitOffsets
from userflow.consumer.decode import DecodeRows
from userflow.consumer.dlq import DeadLetters
from userflow.consumer.metrics import forget_lag
from userflow.consumer.steps import MessageRejected, ProcessingStep
from userflow.consumer.write import Backoff, WriteBatch
from userflow.consumer.writer import Writer
from userflow.events.enrich import Geo

log = logging.getLogger(__name__)

# How long a revocation may spend writing the batch in hand before dropping it.
REVOKE_JOIN_SECONDS: Final = 15.0
# SIGTERM: what is left of Kubernetes' 30 s grace after the last poll.
SHUTDOWN_JOIN_SECONDS: Final = 25.0
POLL_SECONDS: Final = 0.1
# Backpressure longer than this is an outage, not a busy writer: pause the partitions.
PAUSE_AFTER_SECONDS: Final = 5.0
BACKPRESSURE_SLEEP_SECONDS: Final = 0.002
CONSUME_CHUNK: Final = 1000
# Errors an empty or changing cluster reports while topics come and go.
_EXPECTED_ERRORS: Final = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}
)


class StopEvent(Protocol):
    def is_set(self) -> bool: ...


def consumer_config(settings: Settings, process_index: int) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": settings.consumer_group,
        "client.id": f"userflow-consumer-{process_index}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "roundrobin",
        # New tenant topics are picked up within seconds.
        "topic.metadata.refresh.interval.ms": 5000,
        # A database outage pauses the partitions but polling goes on; this
        # is only the bound on one stuck poll-loop iteration.
        "max.poll.interval.ms": 300_000,
        # Heartbeats come from librdkafka's own thread, so a short session
        # only costs a crashed member's partitions 10 s instead of 45.
        "session.timeout.ms": 10_000,
        # Fetch in chunks: with the default of one byte the broker answers
        # each fetch with the few messages that arrived since the last one,
        # and under steady traffic those fetches cost it more CPU than the
        # produce requests. 100 ms is small next to a batch's half second.
        "fetch.min.bytes": 256 * 1024,
        "fetch.wait.max.ms": 100,
        "error_cb": _log_client_error,
    }


def _log_client_error(error: KafkaError) -> None:
    if error.fatal():
        log.error("kafka client error", extra={"error": error.str(), "code": error.code()})
    else:
        log.warning("kafka client error", extra={"error": error.str(), "code": error.code()})


class Runner:
    def __init__(self, settings: Settings, stop: StopEvent, process_index: int = 0) -> None:
        self._settings = settings
        self._stop = stop
        self._consumer = Consumer(consumer_config(settings, process_index))
        self._geo = Geo(settings.geoip_city_db)
        self._writer = Writer(settings.database_url_for("consumer"))
        self._dead_letters = DeadLetters(settings.kafka_bootstrap, settings.dlq_topic)
        self._strategy = self._create_strategy()
        # Messages polled while the chain pushed back, offered again next loop.
        self._held: list[Message] = []
        self._held_since = 0.0
        self._paused = False

    def run(self) -> None:
        pattern = topics.subscription_pattern(self._settings.topic_prefix)
        self._consumer.subscribe(
            [pattern], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info(
            "consumer started", extra={"pattern": pattern, "group": self._settings.consumer_group}
        )
        try:
            while not self._stop.is_set():
                self._run_once()
            self._finish(SHUTDOWN_JOIN_SECONDS)
        finally:
            # Leaves the group at once, so the partitions move without waiting for a timeout.
            self._consumer.close()
            self._dead_letters.close()
            self._writer.close()
            self._geo.close()
            log.info("consumer stopped")

    def _create_strategy(self) -> ProcessingStep[list[Message]]:
        settings = self._settings
        commit = CommitOffsets(self._consumer)
        write = WriteBatch(commit, self._writer, self._dead_letters, Backoff())
        decode = DecodeRows(write, self._geo, timedelta(seconds=settings.max_future_seconds))
        return BatchMessages(decode, settings.batch_max_events, settings.batch_max_seconds)

    def _run_once(self) -> None:
        if not self._held:
            messages = self._consumer.consume(num_messages=CONSUME_CHUNK, timeout=POLL_SECONDS)
            self._held = [m for m in messages if not self._is_error(m)]
            self._held_since = time.monotonic()
        elif self._paused:
            # Paused partitions deliver nothing; polling keeps the membership alive.
            messages = self._consumer.consume(num_messages=CONSUME_CHUNK, timeout=POLL_SECONDS)
            self._held.extend(m for m in messages if not self._is_error(m))
        elif time.monotonic() - self._held_since > PAUSE_AFTER_SECONDS:
            self._pause()
        else:
            # The writer is busy with the previous batch: wait for it, not for Kafka.
            time.sleep(BACKPRESSURE_SLEEP_SECONDS)
        if self._held:
            try:
                self._strategy.submit(self._held)
            except MessageRejected:
                pass
            else:
                self._held = []
                self._resume()
        self._strategy.poll()

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise KafkaException(error)
        if error.code() in _EXPECTED_ERRORS:
            log.debug("topic not available yet", extra={"error": error.str()})
        else:
            log.warning("consume error", extra={"error": error.str(), "code": error.code()})
        return True

    def _pause(self) -> None:
        if not self._paused:
            self._consumer.pause(self._consumer.assignment())
            self._paused = True
            log.warning("partitions paused until the current batch is stored")

    def _resume(self) -> None:
        if self._paused:
            self._consumer.resume(self._consumer.assignment())
            self._paused = False
            log.info("partitions resumed")

    def _finish(self, timeout: float) -> None:
        """Write and commit what is in hand within `timeout`; drop the rest, uncommitted."""
        strategy = self._strategy
        if self._held:
            try:
                strategy.submit(self._held)
            except MessageRejected:
                log.warning(
                    "dropping polled messages; they will be read again",
                    extra={"events": len(self._held)},
                )
        self._held = []
        strategy.close()
        strategy.join(timeout)
        strategy.terminate()
        self._strategy = self._create_strategy()
        self._paused = False

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": _names(partitions)})

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked", extra={"partitions": _names(partitions)})
        self._finish(REVOKE_JOIN_SECONDS)
        forget_lag([(p.topic, p.partition) for p in partitions])

    def _on_lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member may own them already: committing now could move its offsets.
        log.warning("partitions lost", extra={"partitions": _names(partitions)})
        forget_lag([(p.topic, p.partition) for p in partitions])
        self._held = []
        self._strategy.terminate()
        self._strategy = self._create_strategy()
        self._paused = False


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(f"{p.topic}[{p.partition}]" for p in partitions)
