"""Kafka messages → a Batch of COPY rows: decode, check, drop in-batch duplicates, enrich."""

from __future__ import annotations

import time
from datetime import timedelta

import msgspec
from confluent_kafka import Message

from userflow import tracing
from userflow.consumer.batch import Batch, Poison, position
from userflow.consumer.rows import Unstorable, to_row, utc_day
from userflow.consumer.steps import MessageRejected, ProcessingStep
from userflow.events.enrich import Geo
from userflow.events.model import UnknownSchemaVersion, decode
from userflow.events.storable import problem

_DETAIL_MAX = 500


def decode_batch(messages: list[Message], geo: Geo, max_future: timedelta) -> Batch:
    """The batch of rows, poison and offsets that `messages` make."""
    batch = Batch(consumed=len(messages))
    rows, user_agents, sources = batch.rows, batch.user_agents, batch.sources
    keys, days, offsets = batch.keys, batch.days, batch.offsets
    traced = tracing.enabled()
    for message in messages:
        # Messages of one partition arrive in order: the last one's offset wins.
        partition, offset = position(message)
        offsets[partition] = offset + 1
        raw = message.value()
        if raw is None:
            batch.poison.append(Poison(message, "empty_message"))
            continue
        try:
            event = decode(raw)
        except UnknownSchemaVersion as exc:
            batch.poison.append(Poison(message, "unknown_version", str(exc)))
            continue
        except msgspec.ValidationError as exc:
            batch.poison.append(Poison(message, "invalid_event", str(exc)[:_DETAIL_MAX]))
            continue
        except msgspec.DecodeError as exc:
            batch.poison.append(Poison(message, "malformed_json", str(exc)[:_DETAIL_MAX]))
            continue
        # The ingest ran this same check before it answered 2xx: a refusal
        # here means the two disagree (another version, other settings).
        refusal = problem(event, b"\\u0000" in raw, max_future, len(raw))
        if refusal is not None:
            detail = f"{refusal.field}{refusal.path}: {refusal.reason}"
            batch.poison.append(Poison(message, refusal.code, detail[:_DETAIL_MAX]))
            continue
        key = (event.company_id, event.event_id)
        if key in keys:
            batch.duplicates += 1
            continue
        try:
            row, ua = to_row(event, geo)
        except Unstorable as exc:
            batch.poison.append(Poison(message, exc.reason))
            continue
        keys.add(key)
        days.add(utc_day(row[0]))
        rows.append(row)
        user_agents.append(ua)
        sources.append(message)
        if traced and (parent := tracing.context_key(message.headers())) is not None:
            batch.trace_parents.add(parent)
    return batch


class DecodeRows:
    """Turns a list of messages into one Batch; what cannot be stored becomes Poison.

    A decoded batch the next step refuses is kept (not decoded again) and
    offered on each poll; until it is taken, further submits are refused.
    """

    def __init__(self, next_step: ProcessingStep[Batch], geo: Geo, max_future: timedelta) -> None:
        self._next = next_step
        self._geo = geo
        self._max_future = max_future
        self._held: Batch | None = None

    def submit(self, payload: list[Message]) -> None:
        if self._held is not None:
            raise MessageRejected
        batch = decode_batch(payload, self._geo, self._max_future)
        try:
            self._next.submit(batch)
        except MessageRejected:
            self._held = batch

    def poll(self) -> None:
        self._next.poll()
        self._offer_held()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._offer_held():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._next.join(remaining)
        self._next.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._next.close()

    def terminate(self) -> None:
        self._held = None
        self._next.terminate()

    def _offer_held(self) -> bool:
        """Hand the held batch on; True when nothing is held any more."""
        if self._held is None:
            return True
        try:
            self._next.submit(self._held)
        except MessageRejected:
            return False
        self._held = None
        return True
