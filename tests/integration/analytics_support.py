"""Shared pieces of the analytics tests: events stored by the consumer's own code,
the rollups refreshed as pg_cron does, questions asked as the reader role.

Events go through `decode_batch` and `Writer` (enrichment, the ledger, the
rollups' pending rows) into the session's scratch database, without Kafka:
what is under test is what the analytics make of stored rows.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from confluent_kafka import Message

from userflow.analytics.query import Answer, Query, run
from userflow.analytics.scope import tenant_transaction
from userflow.consumer.decode import decode_batch
from userflow.consumer.writer import Writer
from userflow.events.enrich import Geo
from userflow.events.model import Event, encode

from .stack import ROLE_OF, as_role

R = TypeVar("R")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0.0.0 Safari/537.36")
PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SITE = "https://shop.example"
_offsets = itertools.count()


def event(company: uuid.UUID, at: datetime, event_type: str = "page_view", *,
          session: str | None = "s1", user: str | None = None, anon: str | None = "a1",
          page: str | None = "/", agent: str = DESKTOP, **fields: Any) -> Event:
    """One event; `page` is a path on SITE (or a full URL), the rest as Event's fields."""
    url = None if page is None else (page if "://" in page else SITE + page)
    return Event(event_id=uuid.uuid4(), company_id=company, event_type=event_type,
                 event_timestamp=at, received_at=at + timedelta(milliseconds=50),
                 user_id=user, anonymous_id=anon, session_id=session, page_url=url,
                 user_agent=agent, **fields)


def store(admin_url: str, events: Iterable[Event]) -> int:
    """Store events as the consumer does (as its role); the number of new rows."""
    messages = [Message(topic="analytics", partition=0, offset=next(_offsets), value=encode(e))
                for e in events]
    batch = decode_batch(messages, Geo(), timedelta(days=1))
    assert not batch.poison, [p.reason for p in batch.poison]
    writer = Writer(as_role(admin_url, ROLE_OF["consumer"]))
    try:
        writer.write(batch)
    finally:
        writer.close()
    return batch.inserted


def refresh(admin_url: str) -> int:
    """One rollup refresh, as pg_cron runs it; the number of sessions rebuilt."""
    with psycopg.connect(as_role(admin_url, ROLE_OF["migrate"]), autocommit=True) as conn:
        row = conn.execute("SELECT userflow_refresh_rollups()").fetchone()
    assert row is not None
    return int(row[0])


def ask(admin_url: str, read_key: str, query: Query[R], timeout_ms: int = 60_000) -> Answer[R]:
    """Run a metric's query as the reader role with a tenant's read key."""
    with psycopg.connect(as_role(admin_url, ROLE_OF["reader"]), autocommit=True) as conn, \
            tenant_transaction(conn, read_key, timeout_ms):
        return run(conn, query)
