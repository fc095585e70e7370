"""Batches: raw Kafka messages gathered by size and age, and the decoded batch they become."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from confluent_kafka import Message

from userflow.consumer.steps import MessageRejected, ProcessingStep

Partition = tuple[str, int]


def position(message: Message) -> tuple[Partition, int]:
    """The partition and offset of a consumed message (which always has both)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed message without a position")
    return (topic, partition), offset


@dataclass(slots=True)
class Poison:
    """A message that can never be stored, and why; bound for the dead-letter topic."""

    message: Message
    reason: str
    detail: str = ""
    delivered: bool = False


@dataclass(slots=True)
class Batch:
    """Rows ready for COPY, the messages behind them, and the offsets they make committable.

    `rows[i]` came from `sources[i]`; its user agent text is `user_agents[i]`
    (the writer puts the agent's id into the row). Offsets are the next
    offset to read per partition, covering stored, duplicate and poison
    messages alike.
    """

    rows: list[list[Any]] = field(default_factory=list)
    user_agents: list[str | None] = field(default_factory=list)
    sources: list[Message] = field(default_factory=list)
    keys: set[tuple[UUID, UUID]] = field(default_factory=set)
    days: set[date] = field(default_factory=set)
    poison: list[Poison] = field(default_factory=list)
    offsets: dict[Partition, int] = field(default_factory=dict)
    # The `traceparent`s of the requests behind the rows, when tracing is on.
    trace_parents: set[bytes] = field(default_factory=set)
    consumed: int = 0
    duplicates: int = 0
    inserted: int = 0
    written: bool = False


class BatchMessages:
    """Gathers messages until `max_events` or `max_seconds`, then submits them as one list.

    A chunk larger than the room left is split; the part that did not fit is
    held (and further submits are rejected) until the next step takes it.
    """

    def __init__(
        self, next_step: ProcessingStep[list[Message]], max_events: int, max_seconds: float
    ) -> None:
        self._next = next_step
        self._max_events = max_events
        self._max_seconds = max_seconds
        self._batch: list[Message] = []
        self._carry: list[Message] = []
        self._started = 0.0

    def submit(self, payload: list[Message]) -> None:
        if self._carry:
            raise MessageRejected
        self._carry = payload
        self._drain()

    def poll(self) -> None:
        self._next.poll()
        if self._batch and time.monotonic() - self._started >= self._max_seconds:
            self._flush()
        self._drain()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not (self._flush() and self._drain() and self._flush()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # The next step is busy: let it finish before offering it more.
            self._next.join(remaining)
        self._next.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._next.close()

    def terminate(self) -> None:
        self._batch, self._carry = [], []
        self._next.terminate()

    def _drain(self) -> bool:
        """Move the carried messages into batches; False when the next step refused one."""
        while self._carry:
            if not self._batch:
                self._started = time.monotonic()
            room = self._max_events - len(self._batch)
            self._batch.extend(self._carry[:room])
            self._carry = self._carry[room:]
            if len(self._batch) >= self._max_events and not self._flush():
                return False
        return True

    def _flush(self) -> bool:
        if not self._batch:
            return True
        try:
            self._next.submit(self._batch)
        except MessageRejected:
            return False
        self._batch = []
        return True
