"""Shared pieces of the consumer's integration tests: services, scratch database, topics, events.

No tests live here; test_consumer*.py import the fixture and helpers. The
services and the session's scratch database come from the conftest
fixtures (`service_env`, `database_url`); each test gets its own topics
and consumer group.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from userflow.config import Settings, from_environ
from userflow.consumer import run_one
from userflow.events.model import Event, encode
from userflow.store import bootstrap, migrate

from .stack import ROLE_OF, as_role

WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.5 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# What enrichment must make of each: (device_type, browser, os, is_bot).
AGENTS = {
    WINDOWS_CHROME: ("desktop", "Chrome", "Windows", False),
    IPHONE_SAFARI: ("mobile", "Mobile Safari", "iOS", False),
    IPAD_SAFARI: ("tablet", "Mobile Safari", "iOS", False),
    GOOGLEBOT: ("bot", "Googlebot", None, True),
}
# And of each address: its country (documentation and private ranges have none).
ADDRESSES = {
    "8.8.8.8": "US",
    "81.2.69.160": "GB",
    "2001:4860:4860::8888": "US",
    "10.0.0.1": None,
    "203.0.113.9": None,
}
EVENT_TYPES = ("page_view", "click", "scroll", "form_submit", "hover", "keydown", "custom")
CONSUME = (
    "import userflow.consumer as c, userflow.config as f; c.run(f.from_environ(), {processes})"
)


def create_database(server_url: str, name: str) -> str:
    """A database made as production makes one (roles bootstrapped, migrated by the
    migrator); the superuser's URL to it."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(server_url, dbname=name)
    bootstrap.apply(url, migrate.REPOSITORY_SQL, {})
    migrate.apply(as_role(url, ROLE_OF["migrate"]), migrate.REPOSITORY_SQL)
    return url


def on_database(settings: Settings, url: str, **changes: Any) -> Settings:
    """The settings of a consumer that writes, as its own role, into the database of `url`
    (the tests' own reads go through `database_url`, the superuser's)."""
    return replace(settings, database_url=url,
                   consumer_database_url=as_role(url, ROLE_OF["consumer"]), **changes)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def settings(service_env: dict[str, str], database_url: str) -> Iterator[Settings]:
    """The session's scratch database; this test's own topics (2 partitions for events,
    1 for dead letters) and consumer group."""
    tag = uuid.uuid4().hex[:10]
    chosen = on_database(
        from_environ(service_env), database_url,
        topic_prefix=f"uftest{tag}.events",
        consumer_group=f"uftest-{tag}",
        batch_max_events=500,
        batch_max_seconds=0.2,
    )
    admin = AdminClient({"bootstrap.servers": chosen.kafka_bootstrap})
    topics = {chosen.shared_topic: 2, chosen.dlq_topic: 1}
    for future in admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()]).values():
        future.result()
    yield chosen
    for future in admin.delete_topics(list(topics)).values():
        future.result()
    for future in admin.delete_consumer_groups([chosen.consumer_group]).values():
        with contextlib.suppress(KafkaException):  # a test that never consumed has no group
            future.result()


def make_event(company_id: uuid.UUID, rng: random.Random, when: datetime, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "event_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "company_id": company_id,
        "event_type": rng.choice(EVENT_TYPES),
        "event_timestamp": when,
        "received_at": when + timedelta(milliseconds=rng.randint(5, 500)),
        "sent_at": when + timedelta(milliseconds=rng.randint(0, 4)),
        "user_id": f"user-{rng.randint(1, 300)}",
        "anonymous_id": f"anon-{rng.randint(1, 300)}",
        "session_id": f"s-{rng.randint(1, 900)}",
        "page_url": f"https://shop.example/p/{rng.randint(1, 50)}",
        "page_title": "Übersicht der Produkte",
        "referrer": "https://www.google.com/",
        "element_selector": "#buy > button.primary",
        "element_text": rng.choice(("Buy now", "Añadir al carrito", "カートに入れる", None)),
        "x_coordinate": rng.randint(0, 1920),
        "y_coordinate": rng.randint(0, 1080),
        "scroll_depth": rng.randint(0, 100),
        "session_duration_seconds": rng.randint(0, 3600),
        "utm_source": rng.choice(("newsletter", None)),
        "user_agent": rng.choice(list(AGENTS)),
        "ip_address": rng.choice(list(ADDRESSES)),
        "metadata": {"plan": rng.choice(("free", "pro")), "n": rng.randint(0, 9), "tags": ["a"]},
    }
    return Event(**(values | fields))


def produce(settings: Settings, values: list[bytes], keys: list[bytes]) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "enable.idempotence": True}
    )
    for value, key in zip(values, keys, strict=True):
        while True:
            try:
                producer.produce(settings.shared_topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(30) == 0


def produce_events(settings: Settings, events: list[Event]) -> None:
    produce(settings, [encode(e) for e in events], [(e.session_id or "").encode() for e in events])


# A group coordinator that is loading or moving (a fresh broker, a restart)
# answers again shortly; the consumer itself retries these.
_COORDINATOR_BUSY = {
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError._TIMED_OUT,
}


def _coordinator_busy(exc: BaseException) -> bool:
    return isinstance(exc, KafkaException) and exc.args[0].code() in _COORDINATOR_BUSY


@retry(
    retry=retry_if_exception(_coordinator_busy),
    wait=wait_exponential(multiplier=0.2, max=2),
    stop=stop_after_delay(30),
    reraise=True,
)
def committed(settings: Settings, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of `topic` (-1001 when none)."""
    probe = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": settings.consumer_group,
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        found = probe.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        probe.close()


def committed_lag(settings: Settings) -> int:
    """Messages of the events topic not covered by the group's committed offsets."""
    probe = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": uuid.uuid4().hex})
    try:
        lag = 0
        for partition, offset in committed(settings, settings.shared_topic).items():
            _, high = probe.get_watermark_offsets(
                TopicPartition(settings.shared_topic, partition), timeout=10
            )
            lag += high - max(offset, 0)
        return lag
    finally:
        probe.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextmanager
def consumer_thread(settings: Settings) -> Iterator[None]:
    """One consumer (run_one) on a thread; stopped, as by SIGTERM, when the block ends."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            run_one(settings, stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=target, name="consumer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive(), "consumer did not stop"
    assert not failures, failures


def consumer_process(settings: Settings, processes: int = 1, **env: str) -> subprocess.Popen[bytes]:
    """`run(settings, processes)` in a child process, configured as in production: UF_* vars."""
    variables = dict(
        {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")},
        UF_DATABASE_URL=settings.database_url,
        UF_CONSUMER_DATABASE_URL=settings.database_url_for("consumer"),
        UF_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        UF_TOPIC_PREFIX=settings.topic_prefix,
        UF_CONSUMER_GROUP=settings.consumer_group,
        UF_BATCH_MAX_EVENTS=str(settings.batch_max_events),
        UF_BATCH_MAX_SECONDS=str(settings.batch_max_seconds),
    )
    variables.update(env)
    return subprocess.Popen(
        [sys.executable, "-c", CONSUME.format(processes=processes)], env=variables
    )


def scalar(conninfo: str, query: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]


def read_topic(
    settings: Settings, topic: str, expected: int, timeout: float = 30.0
) -> list[Message]:
    reader = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    reader.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is not None and message.error() is None:
                found.append(message)
        # Anything beyond what was expected would be a dead letter too many.
        extra = reader.poll(1.0)
        if extra is not None and extra.error() is None:
            found.append(extra)
        return found
    finally:
        reader.close()
