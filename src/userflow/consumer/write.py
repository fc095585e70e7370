"""The step that stores a batch, dead-letters its poison, and only then hands it on.

When PostgreSQL or Kafka fails, the batch is kept and tried again after a
growing delay; meanwhile further batches are refused (MessageRejected), so
the runner pauses the partitions and keeps polling, and the group keeps the
member. Nothing is dropped and no offset moves until the rows are committed
and the dead letters acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import psycopg

from userflow import tracing
from userflow.consumer.batch import Batch
from userflow.consumer.dlq import DeadLetters, DeadLetterUnavailable
from userflow.consumer.metrics import WRITE_FAILURES, WRITE_SECONDS
from userflow.consumer.steps import MessageRejected, ProcessingStep
from userflow.consumer.writer import Writer

log = logging.getLogger(__name__)


class Backoff:
    """Delays that double from `first` up to `longest` seconds, reset by a success."""

    def __init__(self, first: float = 0.5, longest: float = 30.0) -> None:
        self._first = first
        self._longest = longest
        self._failures = 0

    def failed(self) -> float:
        delay = min(self._longest, self._first * 2.0**self._failures)
        self._failures += 1
        return delay

    def reset(self) -> None:
        self._failures = 0


@dataclass(slots=True)
class _Write:
    batch: Batch
    future: Future[None] | None
    retry_at: float = 0.0


class WriteBatch:
    """Stores batches on a worker thread, in order, while the next ones are decoded.

    Up to `max_pending` batches are queued on the one writer thread (like
    arroyo's RunTaskInThreads), so it goes from one batch to the next without
    waiting for the polling thread. Outcomes are taken in offset order: a
    failed batch is retried, and the ones behind it wait for it, so offsets
    are committed (by the next step, on the polling thread) strictly in order.
    """

    def __init__(
        self,
        next_step: ProcessingStep[Batch],
        writer: Writer,
        dead_letters: DeadLetters,
        backoff: Backoff,
        max_pending: int = 2,
    ) -> None:
        self._next = next_step
        self._writer = writer
        self._dead_letters = dead_letters
        self._backoff = backoff
        self._max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="userflow-writer")
        self._queue: deque[_Write] = deque()

    def submit(self, payload: Batch) -> None:
        if len(self._queue) >= self._max_pending:
            raise MessageRejected
        self._queue.append(_Write(payload, self._executor.submit(self._store, payload)))

    def poll(self) -> None:
        self._settle(0.0)
        self._retry_if_due()
        self._next.poll()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._queue:
            now = time.monotonic()
            if now >= deadline:
                break
            head = self._queue[0]
            if head.future is not None:
                self._settle(deadline - now)
            elif head.retry_at > now:
                time.sleep(min(head.retry_at, deadline) - now)
            else:
                self._retry_if_due()
        self._next.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._next.close()

    def terminate(self) -> None:
        # The writer outlives this step: its running store must end before another may start.
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._queue:
            log.warning(
                "dropping batches without committing their offsets; they will be read again",
                extra={"events": sum(w.batch.consumed for w in self._queue)},
            )
            self._queue.clear()
        self._next.terminate()

    def _store(self, batch: Batch) -> None:
        """Worker thread: rows first, then the dead letters; both are safe to repeat."""
        if not batch.written:
            started = time.monotonic()
            with tracing.batch_span(
                "store batch", batch.trace_parents, {"messaging.batch.message_count": batch.consumed}
            ) as span:
                self._writer.write(batch)
                if span is not None:
                    span.set_attributes({"userflow.rows.inserted": batch.inserted,
                                         "userflow.rows.duplicates": batch.duplicates,
                                         "userflow.events.dead_lettered": len(batch.poison)})
            batch.written = True
            WRITE_SECONDS.observe(time.monotonic() - started)
        self._dead_letters.deliver(batch.poison)

    def _retry_if_due(self) -> None:
        if not self._queue:
            return
        head = self._queue[0]
        if head.future is None and time.monotonic() >= head.retry_at:
            head.future = self._executor.submit(self._store, head.batch)

    def _settle(self, wait: float) -> None:
        """Hand on the batches stored so far, oldest first (waiting up to `wait` for the first)."""
        while self._queue:
            head = self._queue[0]
            if head.future is None:
                return
            try:
                head.future.result(timeout=wait)
            except TimeoutError:
                return
            except (psycopg.Error, DeadLetterUnavailable) as exc:
                delay = self._backoff.failed()
                head.future, head.retry_at = None, time.monotonic() + delay
                WRITE_FAILURES.labels(error=type(exc).__name__).inc()
                log.warning(
                    "batch not stored; retrying",
                    extra={
                        "error": str(exc).strip(),
                        "retry_in_s": delay,
                        "events": head.batch.consumed,
                    },
                )
                return
            self._queue.popleft()
            self._backoff.reset()
            self._next.submit(head.batch)
            wait = 0.0
