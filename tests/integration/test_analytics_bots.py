"""Bots, worked by hand: the share of events and sessions, the top agents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from userflow.analytics import bots, period
from userflow.analytics.args import Args
from userflow.analytics.bots import Agent
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters

from .analytics_support import BOT, PHONE, ask, event, refresh, store
from .conftest import make_tenant

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DAY = period.parse("2026-11-02", "2026-11-03")
BING = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
CURL = "curl/8.4.0"


@pytest.fixture(scope="module")
def site(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Bots Site")
    c = made.company_id
    m = timedelta(minutes=1)
    store(database_url, [
        event(c, T0, session="h1", anon="u1"),
        event(c, T0 + m, "click", session="h1", anon="u1"),
        event(c, T0 + 2 * m, session="h1", anon="u1", page="/pricing"),
        event(c, T0, session="h2", anon="u2", agent=PHONE),
        event(c, T0 + m, session="h2", anon="u2", agent=PHONE, page="/pricing"),
        *[event(c, T0 + i * m, session="g1", anon="g", agent=BOT, page=f"/p{i}") for i in range(3)],
        # A client may state a browser: the agent's row names the one most of its events do.
        event(c, T0 + 3 * m, session="g1", anon="g", agent=BOT, browser="Chrome"),
        event(c, T0, session="bb1", anon="b", agent=BING),
        event(c, T0 + m, session="bb1", anon="b", agent=BING),
        event(c, T0, session="c1", anon="c", agent=CURL),
        event(c, T0 - timedelta(days=1), session="g0", anon="g", agent=BOT),  # the day before
    ])
    refresh(database_url)
    return made


def test_share_of_events_and_sessions_and_the_top_agents(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    got = ask(database_url, site.read_key, bots.build(bots.Params(DAY))).result
    assert (got.events, got.bot_events, got.share) == (12, 7, pytest.approx(7 / 12))
    assert (got.sessions, got.bot_sessions, got.session_share) == (5, 3, pytest.approx(0.6))
    assert got.top_agents == [Agent(BOT, "Googlebot", 4), Agent(BING, "bingbot", 2),
                              Agent(CURL, "curl", 1)]
    top = ask(database_url, site.read_key, bots.build(bots.Params(DAY, limit=2))).result
    assert [a.user_agent for a in top.top_agents] == [BOT, BING]


def test_filters_apply_to_both_sides(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    only = ask(database_url, site.read_key, bots.build(
        bots.Params(DAY, Filters(device_type=("bot",))))).result
    assert (only.events, only.bot_events, only.share, only.sessions, only.session_share) == (
        7, 7, 1.0, 3, 1.0)
    phones = ask(database_url, site.read_key, bots.build(
        bots.Params(DAY, Filters(device_type=("mobile",))))).result
    assert (phones.events, phones.bot_events, phones.share, phones.top_agents) == (2, 0, 0.0, [])
    assert (phones.sessions, phones.bot_sessions) == (1, 0)


def test_an_empty_range_is_zero_not_an_error(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    got = ask(database_url, site.read_key, bots.build(
        bots.Params(period.parse("2026-11-05", "2026-11-06")))).result
    assert (got.events, got.share, got.sessions, got.session_share, got.top_agents) == (
        0, 0.0, 0, 0.0, [])


def test_sql_in_a_string_is_only_a_value(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    p = bots.from_args(Args({"from": ["2026-11-02"], "to": ["2026-11-03"],
                             "browser": ["Googlebot' OR 'x'='x"]}))
    assert ask(database_url, site.read_key, bots.build(p)).result.events == 0


def _fields(query: dict[str, list[str]]) -> list[str]:
    with pytest.raises(BadParameters) as caught:
        bots.from_args(Args(query))
    return [e.field for e in caught.value.errors]


def test_bad_parameters_are_named() -> None:
    assert _fields({"include_bots": ["true"]}) == ["include_bots"]
    assert _fields({"limit": ["0"]}) == ["limit"]
    assert _fields({"from": ["yesterday"]}) == ["from"]
    assert _fields({"from": ["2016-01-01"], "to": ["2026-01-01"]}) == ["to"]  # ten years
    assert _fields({"agent": ["x"]}) == ["agent"]
