"""An idempotent Kafka producer whose sends an asyncio handler can await.

A 2xx means Kafka acknowledged the event (acks=all, enable.idempotence): each
send returns a future resolved by the delivery report, which librdkafka calls
on the poll thread, so it hops back onto the event loop thread-safely.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge in time, or no broker is reachable (503)."""


class ProducerBusy(RuntimeError):
    """The local send queue is full (429): the client should slow down."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


class EventProducer:
    def __init__(self, bootstrap: str, timeout_seconds: float, queue_max_messages: int) -> None:
        self._timeout = timeout_seconds
        self._conf = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": queue_max_messages,
            # A send that cannot be acknowledged in time fails instead of
            # lingering in the queue after the client was told 503.
            "message.timeout.ms": int(timeout_seconds * 1000),
            "error_cb": self._on_error,
        }
        self._producer = Producer(self._conf)
        self._stop = threading.Event()
        self._brokers_down = False
        self._last_probe = 0.0
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = True
        log.warning("kafka producer: %s", err)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def reachable(self, timeout: float = 2.0) -> bool:
        """A metadata round trip on the producer's own connections (for /readyz)."""
        try:
            self._producer.list_topics(timeout=timeout)
        except KafkaException:
            return False
        self._brokers_down = False
        return True

    async def _check_brokers(self) -> None:
        # While librdkafka reports every broker down, answer 503 at once rather
        # than queue; probe again at most once a second to notice the return.
        if not self._brokers_down:
            return
        now = time.monotonic()
        if now - self._last_probe >= 1.0:
            self._last_probe = now
            if await asyncio.to_thread(self.reachable, 1.0):
                return
        raise KafkaUnavailable("no Kafka broker is reachable")

    async def send_all(self, messages: Sequence[Outgoing]) -> None:
        """Send and wait until Kafka acknowledged every message, or raise."""
        await self._check_brokers()
        loop = asyncio.get_running_loop()
        ack = _Ack(loop, len(messages))
        try:
            for m in messages:
                self._producer.produce(m.topic, m.value, m.key, headers=m.headers,
                                       on_delivery=ack.report)
        except BufferError:
            raise ProducerBusy("the producer queue is full") from None
        except KafkaException as exc:
            raise KafkaUnavailable(str(exc)) from exc
        try:
            await asyncio.wait_for(asyncio.shield(ack.future), self._timeout + 1)
        except (TimeoutError, KafkaException) as exc:
            raise KafkaUnavailable(f"Kafka did not acknowledge: {exc}") from exc
        self._brokers_down = False

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
        self._stop.set()
        self._poller.join(timeout=1.0)


class _Ack:
    """Counts one request's delivery reports; wakes the event loop once, at the last."""

    __slots__ = ("_loop", "_left", "_error", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self._loop = loop
        self._left = count
        self._error: KafkaError | None = None
        self.future: asyncio.Future[None] = loop.create_future()
        if count == 0:
            self.future.set_result(None)

    def report(self, err: KafkaError | None, _msg: Message) -> None:
        # Runs on the poll thread; only the last report touches the loop.
        if err is not None and self._error is None:
            self._error = err
        self._left -= 1
        if self._left == 0:
            self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if self.future.done():
            return
        if self._error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(KafkaException(self._error))
