"""The consumer against real Kafka and PostgreSQL: exactly-once rows, enrichment, dead letters."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from confluent_kafka import Message
from msgspec.structs import replace as changed
from psycopg.rows import dict_row

from userflow.config import Settings
from userflow.consumer.decode import decode_batch
from userflow.consumer.dlq import OFFSET_HEADER, PARTITION_HEADER, REASON_HEADER, TOPIC_HEADER
from userflow.consumer.rows import COLUMNS
from userflow.consumer.writer import Writer
from userflow.events.enrich import Geo
from userflow.events.model import Event, encode

from .test_consumer_support import (  # noqa: F401  (the settings fixture)
    ADDRESSES,
    AGENTS,
    committed,
    committed_lag,
    consumer_thread,
    create_database,
    on_database,
    drop_database,
    make_event,
    produce,
    produce_events,
    read_topic,
    scalar,
    settings,
    wait_for,
)

pytestmark = pytest.mark.services

COMPARED = [f for f in Event.__struct_fields__ if f not in ("v", "user_agent")]


def stored(conninfo: str, company_id: uuid.UUID) -> dict[uuid.UUID, dict[str, object]]:
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT e.*, a.is_bot AS agent_is_bot FROM events e"
            " LEFT JOIN user_agent a USING (user_agent) WHERE e.company_id = %s",
            (company_id,),
        ).fetchall()
    return {row["event_id"]: row for row in rows}


def text_headers(message: Message) -> dict[str, str]:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {name: v.decode() if isinstance(v, bytes) else (v or "") for name, v in pairs}


def test_every_distinct_event_is_stored_once_with_its_fields_and_enrichment(
    settings: Settings,
) -> None:
    rng = random.Random(2000)
    company = uuid.uuid4()
    # Noon, so that a retry 23 hours later always falls on the next day.
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).replace(hour=12, minute=0, second=0)
    originals = [make_event(company, rng, two_days_ago + timedelta(seconds=i)) for i in range(2000)]
    stream: list[Event] = []
    for i, e in enumerate(originals):
        stream.append(e)
        if i % 40 == 0:  # a retry right behind it: the same batch
            stream.append(changed(e, received_at=e.received_at + timedelta(seconds=1)))
    # Retries 23 hours later, after many batches: the next day, so another partition
    # of user_events. Half keep the session (same Kafka partition), half do not.
    for i, e in enumerate(originals[5::40]):
        later = e.event_timestamp + timedelta(hours=23)
        stream.append(
            changed(
                e,
                event_timestamp=later,
                received_at=later,
                session_id=e.session_id if i % 2 else f"other-{i}",
            )
        )
    produce_events(settings, stream)

    with consumer_thread(settings):
        wait_for(lambda: committed_lag(settings) == 0, 60, "the topic to be drained")

    rows = stored(settings.database_url, company)
    assert len(rows) == len(originals)
    assert (
        scalar(
            settings.database_url,
            "SELECT count(*) - count(DISTINCT event_id) FROM user_events WHERE company_id = %s",
            (company,),
        )
        == 0
    )
    retried = originals[5::40]
    # A retry on the same Kafka partition comes after the original, which wins;
    # one on another partition may be read first.
    same_key = [e for i, e in enumerate(retried) if i % 2]
    other_key = [e for i, e in enumerate(retried) if not i % 2]
    for e in other_key:
        assert rows[e.event_id]["event_timestamp"] in (
            e.event_timestamp,
            e.event_timestamp + timedelta(hours=23),
        )
    others = {e.event_id for e in other_key}
    sample = rng.sample([e for e in originals if e.event_id not in others], 60) + same_key
    for e in sample:
        row = rows[e.event_id]
        for field in COMPARED:
            expected, got = getattr(e, field), row[field]
            if field == "ip_address":
                got = str(got)
            if field in ("device_type", "browser", "os", "country", "city", "region"):
                continue
            assert got == expected, (field, got, expected)
        device_type, browser, os, is_bot = AGENTS[e.user_agent or ""]
        assert (row["device_type"], row["browser"], row["os"], row["is_bot"]) == (
            device_type,
            browser,
            os,
            is_bot,
        )
        assert row["user_agent"] == e.user_agent and row["agent_is_bot"] is is_bot
        assert row["country"] == ADDRESSES[e.ip_address or ""]
        assert (row["city"], row["region"]) == (None, None)
    assert read_topic(settings, settings.dlq_topic, 0, timeout=1) == []
    assert committed(settings, settings.dlq_topic) == {0: -1001}, "the dead letters were consumed"


def test_poison_goes_to_the_dead_letters_and_the_partition_moves_on(settings: Settings) -> None:
    rng = random.Random(7)
    company = uuid.uuid4()
    now = datetime.now(UTC)
    before = [make_event(company, rng, now) for _ in range(10)]
    after = [make_event(company, rng, now) for _ in range(10)]
    poison = {
        b"\x00\x01garbage": "malformed_json",
        b'{"v":99}': "unknown_version",
        encode(make_event(company, rng, now, element_text="Buy\x00now")): "nul_byte:element_text",
        encode(make_event(company, rng, now, x_coordinate=2**40)): "out_of_range:x_coordinate",
    }
    values = [encode(e) for e in before] + list(poison) + [encode(e) for e in after]
    produce(settings, values, [b"one-session"] * len(values))  # one partition, in this order

    with consumer_thread(settings):
        wait_for(lambda: committed_lag(settings) == 0, 60, "the topic to be drained")

    assert set(stored(settings.database_url, company)) == {e.event_id for e in before + after}
    letters = read_topic(settings, settings.dlq_topic, len(poison))
    assert len(letters) == len(poison)
    for letter in letters:
        value = letter.value()
        assert value is not None
        headers = text_headers(letter)
        assert headers[REASON_HEADER] == poison[value]
        assert headers[TOPIC_HEADER] == settings.shared_topic
        assert int(headers[OFFSET_HEADER]) == values.index(value)
        assert headers[PARTITION_HEADER].isdigit()
        assert letter.key() == b"one-session"


def test_rows_the_database_refuses_are_isolated_and_the_rest_stored(settings: Settings) -> None:
    rng = random.Random(11)
    company = uuid.uuid4()
    now = datetime.now(UTC)
    events = [make_event(company, rng, now) for _ in range(40)]
    messages = [
        Message(topic="t", partition=0, offset=i, value=encode(e)) for i, e in enumerate(events)
    ]
    batch = decode_batch(messages, Geo(), timedelta(days=1))
    # What validation would have caught, slipped past it: psycopg refuses the
    # NUL in a dictionary text, PostgreSQL the malformed inet, and the string
    # for an integer cannot even be encoded.
    batch.rows[3][COLUMNS.index("element_text_id")] = "Buy\x00now"
    batch.rows[31][COLUMNS.index("ip_address")] = bytes([2, 33, 0, 4, 10, 0, 0, 1])
    batch.rows[17][COLUMNS.index("x_coordinate")] = "12"
    writer = Writer(settings.database_url)
    try:
        writer.write(batch)
    finally:
        writer.close()
    assert sorted((p.message.offset(), p.reason) for p in batch.poison) == [
        (3, "db_refused:client"),
        (17, "unencodable"),
        (31, "db_refused:22P03"),
    ]
    assert batch.inserted == 37
    assert set(stored(settings.database_url, company)) == {
        e.event_id for i, e in enumerate(events) if i not in (3, 17, 31)
    }


def test_a_retry_weeks_away_from_the_first_copy_is_still_one_row(settings: Settings) -> None:
    """The id ledger (sql/008): any distance in time, not a day either side."""
    rng = random.Random(8)
    company = uuid.uuid4()
    start = datetime.now(UTC) - timedelta(days=40)
    originals = [make_event(company, rng, start + timedelta(minutes=i)) for i in range(50)]
    retries = [changed(e, event_timestamp=e.event_timestamp + timedelta(days=offset),
                       received_at=e.received_at + timedelta(days=offset))
               for e, offset in zip(originals, (-300, -2, 2, 10, 39) * 10, strict=True)]
    produce_events(settings, originals)
    with consumer_thread(settings):
        wait_for(lambda: committed_lag(settings) == 0, 60, "the originals")
    produce_events(settings, retries)
    with consumer_thread(settings):
        wait_for(lambda: committed_lag(settings) == 0, 60, "the retries")
    count = "SELECT count(*) FROM user_events WHERE company_id = %s"
    assert scalar(settings.database_url, count, (company,)) == len(originals)
    rows = stored(settings.database_url, company)
    assert all(rows[e.event_id]["event_timestamp"] == e.event_timestamp for e in originals)


def test_a_database_outage_holds_the_batch_until_it_can_be_written(settings: Settings) -> None:
    name = f"uf_consumer_outage_{uuid.uuid4().hex[:8]}"
    server = settings.database_url
    missing = on_database(settings, psycopg.conninfo.make_conninfo(server, dbname=name))
    rng = random.Random(3)
    company = uuid.uuid4()
    events = [make_event(company, rng, datetime.now(UTC)) for _ in range(300)]
    produce_events(missing, events)
    try:
        with consumer_thread(missing):
            # The database does not exist yet: every write fails, nothing is committed,
            # and past 5 s of failing the partitions are paused.
            time.sleep(6)
            assert committed_lag(missing) == len(events)
            create_database(server, name)
            wait_for(lambda: committed_lag(missing) == 0, 60, "the backlog after the outage")
        assert len(stored(missing.database_url, company)) == len(events)
    finally:
        drop_database(server, name)


def test_a_dropped_connection_mid_stream_loses_and_duplicates_nothing(settings: Settings) -> None:
    name = f"uf_consumer_drop_{uuid.uuid4().hex[:8]}"
    server = settings.database_url
    own = on_database(settings, create_database(server, name), batch_max_events=200)
    rng = random.Random(5)
    company = uuid.uuid4()
    events = [make_event(company, rng, datetime.now(UTC)) for _ in range(20_000)]
    produce_events(own, events)
    kill = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = %s AND application_name = 'userflow-consumer'"
    )
    try:
        with consumer_thread(own):
            rows = "SELECT count(*) FROM user_events WHERE company_id = %s"
            wait_for(lambda: scalar(own.database_url, rows, (company,)) > 0, 60, "the first rows")
            assert scalar(server, kill, (name,)) == 1
            wait_for(lambda: committed_lag(own) == 0, 120, "the rest after the reconnect")
        assert len(stored(own.database_url, company)) == len(events)
    finally:
        drop_database(server, name)


def test_the_insert_is_planned_afresh_for_every_batch(settings: Settings) -> None:
    """A plan kept from when the day's partitions were small probed them by sequential scan.

    psycopg prepares a statement run five times, and a prepared statement
    without parameters keeps its first plan until something invalidates it;
    each batch then grew slower as the day filled (seen in `make bench`).
    """
    rng = random.Random(17)
    company = uuid.uuid4()
    now = datetime.now(UTC)
    writer = Writer(settings.database_url)
    try:
        for round_ in range(12):
            events = [make_event(company, rng, now - timedelta(hours=h)) for h in range(20)]
            messages = [
                Message(topic="t", partition=0, offset=round_ * 100 + i, value=encode(e))
                for i, e in enumerate(events)
            ]
            writer.write(decode_batch(messages, Geo(), timedelta(days=1)))
        # Prepared statements are the session's own: ask on the writer's connection.
        prepared = [
            statement
            for (statement,) in writer._connection().execute(
                "SELECT statement FROM pg_prepared_statements"
            )
        ]
    finally:
        writer.close()
    assert len(stored(settings.database_url, company)) == 240
    assert any("text_value" in s for s in prepared), "nothing was prepared: proves nothing"
    assert not [s for s in prepared if "INSERT INTO user_events" in s]
