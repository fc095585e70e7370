"""Sessions and the breakdown, worked by hand on a small dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from userflow.analytics import breakdown, period, sessions
from userflow.analytics.filters import Filters

from .analytics_support import BOT, PHONE, ask, event, refresh, store
from .conftest import make_tenant

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday


@pytest.fixture(scope="module")
def shop(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Sessions Shop")
    c = made.company_id
    s = timedelta(seconds=1)
    store(database_url, [
        # s1: bounced (one page view, a scroll), 0 s... then 30 s with the scroll
        event(c, T0, session="s1", anon="a1", page="/"),
        event(c, T0 + 30 * s, "scroll", session="s1", anon="a1", page="/", scroll_depth=40),
        # s2: two page views and a click, 120 s, on a phone, from a campaign
        event(c, T0 + 60 * s, session="s2", anon="a2", page="/pricing?x=1#top", agent=PHONE,
              referrer="https://www.Google.com/search?q=x", utm_source="newsletter"),
        event(c, T0 + 100 * s, "click", session="s2", anon="a2", page="/pricing", agent=PHONE),
        event(c, T0 + 180 * s, session="s2", anon="a2", page="/signup", agent=PHONE),
        # s3: one page view then a custom event: not bounced, 10 s
        event(c, T0 + 3600 * s, session="s3", anon="a1", page="/"),
        event(c, T0 + 3610 * s, "custom", session="s3", anon="a1", page="/",
              event_name="Signed Up"),
        # a bot's session, left out unless asked for
        event(c, T0 + 5 * s, session="b1", anon="bot", page="/", agent=BOT),
        # s4 starts before the range and ends in it: it belongs to the day before
        event(c, T0 - timedelta(days=1), session="s4", anon="a3", page="/"),
    ])
    refresh(database_url)
    return made


def test_sessions_are_counted_as_defined(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    day = period.parse("2026-11-02", "2026-11-03")
    got = ask(database_url, shop.read_key, sessions.build(sessions.Params(day))).result
    assert got.sessions == 3
    assert got.users == 2
    assert got.bounce_rate == pytest.approx(1 / 3)
    assert got.avg_duration_s == pytest.approx((30 + 120 + 10) / 3)
    assert got.median_duration_s == pytest.approx(30)
    assert got.pages_per_session == pytest.approx(4 / 3)
    with_bots = ask(database_url, shop.read_key, sessions.build(
        sessions.Params(day, Filters(include_bots=True)))).result
    assert with_bots.sessions == 4


def test_an_even_count_has_the_mean_of_the_middle_two_as_median(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    got = ask(database_url, shop.read_key, sessions.build(sessions.Params(
        period.parse("2026-11-01", "2026-11-03"), Filters(page=("/",))))).result
    # s1 (30 s), s3 (10 s), s4 (0 s) viewed "/": median 10; without s4's day, s1 and s3: 20.
    assert (got.sessions, got.median_duration_s) == (3, 10)
    got = ask(database_url, shop.read_key, sessions.build(sessions.Params(
        period.parse("2026-11-02", "2026-11-03"), Filters(page=("/",))))).result
    assert (got.sessions, got.median_duration_s) == (2, 20)


def test_filters_match_the_path_and_the_session_s_first_event(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    day = period.parse("2026-11-02", "2026-11-03")
    for f, want in [(Filters(page=("/pricing",)), 1), (Filters(device_type=("mobile",)), 1),
                    (Filters(referrer=("google.com",)), 1), (Filters(utm_source=("newsletter",)), 1),
                    (Filters(event_name=("Signed Up",)), 1), (Filters(event_type=("scroll",)), 1),
                    (Filters(country=("ZZ",)), 0)]:
        got = ask(database_url, shop.read_key, sessions.build(sessions.Params(day, f))).result
        assert got.sessions == want, f


def test_breakdown_by_device_and_entry_page(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    day = period.parse("2026-11-02", "2026-11-03")
    rows = ask(database_url, shop.read_key, breakdown.build(
        breakdown.Params(day, "device_type"))).result.rows
    assert [(r.value, r.sessions, r.users) for r in rows] == [("desktop", 2, 1), ("mobile", 1, 1)]
    pages = ask(database_url, shop.read_key, breakdown.build(
        breakdown.Params(day, "page"))).result.rows
    assert [(r.value, r.sessions, r.bounce_rate) for r in pages] == [("/", 2, 0.5), ("/pricing", 1, 0)]
    refs = ask(database_url, shop.read_key, breakdown.build(
        breakdown.Params(day, "referrer"))).result.rows
    assert [(r.value, r.sessions) for r in refs] == [(None, 2), ("google.com", 1)]


def test_a_time_zone_moves_the_day_a_session_belongs_to(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    # 10:00 UTC on 2 Nov is 2 Nov in Tokyo as well; in Honolulu (UTC-10) it is midnight
    # of the 2nd, and s4 (10:00 UTC on the 1st) is 00:00 of the 1st there.
    tokyo = period.parse("2026-11-02", "2026-11-03", "Asia/Tokyo")
    assert ask(database_url, shop.read_key,
               sessions.build(sessions.Params(tokyo))).result.sessions == 3
    before = period.parse("2026-11-01T00:00", "2026-11-02T00:00", "Pacific/Honolulu")
    assert ask(database_url, shop.read_key,
               sessions.build(sessions.Params(before))).result.sessions == 1


def test_a_late_event_corrects_its_session_on_the_next_refresh(database_url: str) -> None:
    made = make_tenant(database_url, "Late Shop")
    c = made.company_id
    store(database_url, [event(c, T0, session="late", anon="x")])
    refresh(database_url)
    day = period.parse("2026-11-02", "2026-11-03")
    assert ask(database_url, made.read_key,
               sessions.build(sessions.Params(day))).result.bounce_rate == 1
    # Its click arrives hours later; the session is no longer a bounce, and lasts 20 s.
    store(database_url, [event(c, T0 + timedelta(seconds=20), "click", session="late", anon="x")])
    refresh(database_url)
    got = ask(database_url, made.read_key, sessions.build(sessions.Params(day))).result
    assert (got.sessions, got.bounce_rate, got.avg_duration_s) == (1, 0, 20)
