"""The consumer as a process: SIGTERM finishes the batch, kill -9 loses and duplicates nothing."""

from __future__ import annotations

import random
import signal
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from msgspec.structs import replace as changed

from userflow.config import Settings
from userflow.events.model import Event

from .test_consumer_support import (  # noqa: F401  (the settings fixture)
    committed,
    committed_lag,
    consumer_process,
    consumer_thread,
    make_event,
    produce_events,
    scalar,
    settings,
    wait_for,
)

pytestmark = pytest.mark.services

EVENTS = 30_000


def stream(company: uuid.UUID, duplicates: bool) -> list[Event]:
    rng = random.Random(company.int)
    start = datetime.now(UTC) - timedelta(hours=30)
    events = [make_event(company, rng, start + timedelta(seconds=i * 3)) for i in range(EVENTS)]
    if duplicates:
        events += [
            changed(e, received_at=e.received_at + timedelta(seconds=5)) for e in events[::50]
        ]
    return events


def rows(settings: Settings, company: uuid.UUID) -> int:
    return int(
        scalar(
            settings.database_url,
            "SELECT count(*) FROM user_events WHERE company_id = %s",
            (company,),
        )
    )


def duplicate_rows(settings: Settings, company: uuid.UUID) -> int:
    return int(
        scalar(
            settings.database_url,
            "SELECT count(*) - count(DISTINCT event_id) FROM user_events WHERE company_id = %s",
            (company,),
        )
    )


def test_sigterm_writes_and_commits_the_batch_in_hand_then_exits_0(settings: Settings) -> None:
    company = uuid.uuid4()
    produce_events(settings, stream(company, duplicates=False))
    process = consumer_process(settings, UF_BATCH_MAX_EVENTS="100")
    try:
        wait_for(lambda: rows(settings, company) > 0, 60, "the first rows")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
    finally:
        process.kill()
    stored = rows(settings, company)
    offsets = committed(settings, settings.shared_topic).values()
    assert stored == sum(max(o, 0) for o in offsets), "rows and committed offsets disagree"
    assert 0 < stored < EVENTS, "the signal did not land mid-stream"

    with consumer_thread(settings):
        wait_for(lambda: committed_lag(settings) == 0, 120, "the rest to be drained")
    assert rows(settings, company) == EVENTS
    assert duplicate_rows(settings, company) == 0


def test_kill_9_mid_stream_then_restart_stores_each_event_once(settings: Settings) -> None:
    company = uuid.uuid4()
    produce_events(settings, stream(company, duplicates=True))
    process = consumer_process(settings, UF_BATCH_MAX_EVENTS="100")
    try:
        wait_for(lambda: rows(settings, company) > 0, 60, "the first rows")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()
    assert rows(settings, company) < EVENTS, "the kill did not land mid-stream"

    restarted = consumer_process(settings, processes=2)
    try:
        # The killed member's session has to expire (10 s) before the group rebalances.
        wait_for(lambda: committed_lag(settings) == 0, 120, "the rest to be drained")
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=40) == 0
    finally:
        restarted.kill()
    assert rows(settings, company) == EVENTS
    assert duplicate_rows(settings, company) == 0
