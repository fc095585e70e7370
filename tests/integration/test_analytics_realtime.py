"""Realtime, worked by hand at a fixed `now`: the 5-minute and 30-minute edges,
empty minutes, top pages, bots, and a read of today's partition only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from userflow.analytics import realtime
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters
from userflow.analytics.realtime import PageNow

from .analytics_plan import partitions_read
from .analytics_support import BOT, ask, event, store
from .conftest import make_tenant

NOW = datetime(2026, 11, 2, 12, 0, 30, tzinfo=UTC)
FIRST = datetime(2026, 11, 2, 11, 31, tzinfo=UTC)  # the first of the 30 minutes


@pytest.fixture(scope="module")
def site(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Realtime Site")
    c = made.company_id

    def at(hh: int, mm: int, ss: int, micro: int = 0) -> datetime:
        return datetime(2026, 11, 2, hh, mm, ss, micro, tzinfo=UTC)

    store(database_url, [
        event(c, at(11, 30, 59), session="s1", anon="u1", page="/"),            # before the 30 min
        event(c, at(11, 31, 0), session="s1", anon="u1", page="/"),             # minute 0
        event(c, at(11, 45, 10), "click", session="s2", anon="u2", page="/pricing"),  # minute 14
        event(c, at(11, 55, 30), session="s2", anon="u2", page="/pricing"),     # now − 5 min: active
        event(c, at(11, 55, 29, 999_999), session="s6", anon="u6", page="/"),   # just before: not
        event(c, at(11, 58, 0), session="s3", anon="u3", page="/pricing"),      # minute 27
        event(c, at(11, 58, 1), "click", session="s3", anon="u3", page="/pricing?x=1"),
        event(c, at(11, 59, 30), "custom", session="s7", anon="u7", page=None,  # no page
              event_name="Ping"),
        event(c, at(12, 0, 29, 999_000), session="s4", anon="u4", page="/docs"),  # minute 29
        event(c, NOW, session="s5", anon="u5", page="/docs"),                   # at now: not yet
        event(c, at(11, 59, 0), session="b1", anon="bot", page="/pricing", agent=BOT),
        event(c, NOW - timedelta(days=1), session="s0", anon="u0", page="/"),   # yesterday's partition
    ])
    return made


def test_active_users_minutes_and_top_pages(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    got = ask(database_url, site.read_key, realtime.build(realtime.Params(now=NOW))).result
    assert got.now == "2026-11-02T12:00:30+00:00"
    assert (got.active_users, got.active_sessions, got.events) == (4, 4, 8)
    assert len(got.events_per_minute) == 30
    assert got.events_per_minute[0].t == "2026-11-02T11:31:00+00:00"
    assert got.events_per_minute[-1].t == "2026-11-02T12:00:00+00:00"
    counted = {i: (m.events, m.users) for i, m in enumerate(got.events_per_minute) if m.events}
    assert counted == {0: (1, 1), 14: (1, 1), 24: (2, 2), 27: (2, 1), 28: (1, 1), 29: (1, 1)}
    assert got.top_pages == [PageNow("/pricing", 2, 2), PageNow("/docs", 1, 1)]


def test_bots_filters_and_limit(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    bots = ask(database_url, site.read_key, realtime.build(
        realtime.Params(Filters(include_bots=True), now=NOW, limit=1))).result
    assert (bots.active_users, bots.events, bots.events_per_minute[28].events) == (5, 9, 2)
    assert bots.top_pages == [PageNow("/pricing", 3, 3)]
    docs = ask(database_url, site.read_key, realtime.build(
        realtime.Params(Filters(page=("/docs",)), now=NOW))).result
    assert (docs.active_users, docs.events, docs.top_pages) == (1, 1, [PageNow("/docs", 1, 1)])


def test_a_now_in_another_zone_is_the_same_instant(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    kolkata = NOW.astimezone(ZoneInfo("Asia/Kolkata"))  # +05:30: minutes start together
    got = ask(database_url, site.read_key, realtime.build(realtime.Params(now=kolkata))).result
    assert got.now == "2026-11-02T12:00:30+00:00" and got.active_users == 4
    assert got.events_per_minute[0].t == FIRST.isoformat()


def test_only_the_last_half_hour_s_partition_is_read(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    # Yesterday's partition exists (an event is in it) and is not read.
    query = realtime.build(realtime.Params(now=NOW))
    assert partitions_read(database_url, site.read_key, query) == {"user_events_p20261102"}
    across = realtime.build(realtime.Params(now=datetime(2026, 11, 2, 0, 10, tzinfo=UTC)))
    assert partitions_read(database_url, site.read_key, across) == {
        "user_events_p20261101", "user_events_p20261102"}


def test_now_defaults_to_the_clock() -> None:
    before = datetime.now(UTC)
    p = realtime.from_args(Args({}))
    assert p.now is not None and before <= p.now <= datetime.now(UTC)
    assert p.window.end == p.now and p.window.start.second == 0


def _fields(query: dict[str, list[str]]) -> list[str]:
    with pytest.raises(BadParameters) as caught:
        realtime.from_args(Args(query))
    return [e.field for e in caught.value.errors]


def test_bad_parameters_are_named() -> None:
    assert _fields({"limit": ["0"]}) == ["limit"]
    assert _fields({"from": ["2026-11-01"]}) == ["from"]  # realtime takes no range
    assert _fields({"include_bots": ["perhaps"]}) == ["include_bots"]
    with pytest.raises(BadParameters) as caught:
        realtime.Params(now=datetime(2026, 11, 2, 12, 0))
    assert caught.value.errors[0].field == "now"
