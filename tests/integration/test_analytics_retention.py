"""Retention worked by hand: day and ISO-week triangles, time zones, the rollup against
the events (by hand and on random data with late events)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from userflow.analytics import period, retention
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters
from userflow.events.model import Event

from .analytics_support import BOT, DESKTOP, ask, event, refresh, store
from .conftest import make_tenant

Triangle = list[tuple[str, int, list[int]]]


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def visit(company, when: datetime, actor: str, event_type: str = "page_view", **kw) -> Event:  # type: ignore[no-untyped-def]
    return event(company, when, event_type, session=f"{actor}-{when:%m%d}", anon=actor, **kw)


def triangle(database_url: str, read_key: str, p: retention.Params) -> Triangle:
    """The answer, after checking that the events give the same as the rollup."""
    got = ask(database_url, read_key, retention.build(p))
    raw = ask(database_url, read_key, retention.build(
        retention.Params(p.period, p.interval, p.filters, p.periods, raw=True)))
    assert raw.meta.source == "events+actor_hour_rollup"
    assert got.result == raw.result
    assert got.result.interval == p.interval
    return [(c.cohort, c.size, c.retained) for c in got.result.cohorts]


@pytest.fixture(scope="module")
def daily(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Retention Days")
    c = made.company_id
    store(database_url, [
        # old: first seen 30 Oct, before every range below: in no cohort.
        visit(c, at(30, 12, month=10), "old"), visit(c, at(2, 12), "old"), visit(c, at(3, 12), "old"),
        # u1: 2 Nov, back on the 3rd (twice) and the 5th.
        visit(c, at(2, 10), "u1"), visit(c, at(3, 10), "u1"), visit(c, at(3, 11), "u1"),
        visit(c, at(5, 10), "u1"),
        # u2: 02:00 UTC on the 3rd is 21:00 on the 2nd in New York; again at 10:00
        # (05:00 in New York), back on the 4th.
        visit(c, at(3, 2), "u2"), visit(c, at(3, 10), "u2"), visit(c, at(4, 12), "u2"),
        # u3: the 3rd, back on the 4th with a click.
        visit(c, at(3, 9), "u3"), visit(c, at(4, 9), "u3", "click", element_selector="#buy"),
        # u7: 18:15 and 18:45 UTC on the 3rd: 23:45 on the 3rd and 00:15 on the 4th in
        # Kolkata (UTC+5:30), one UTC hour across the local midnight.
        visit(c, at(3, 18, 15), "u7"), visit(c, at(3, 18, 45), "u7"),
        # u6: 18:45 UTC on the 4th is 00:15 on the 5th in Kolkata.
        visit(c, at(4, 18, 45), "u6"),
        # u4: the 5th; the 6th is after every `to` below.
        visit(c, at(5, 12), "u4"), visit(c, at(6, 12), "u4"),
        # u5: only after the range.
        visit(c, at(7, 12), "u5"),
        # A bot on the 2nd and 3rd: left out unless asked for.
        visit(c, at(2, 8), "bot", agent=BOT), visit(c, at(3, 8), "bot", agent=BOT),
    ])
    refresh(database_url)
    return made


def test_a_day_triangle_counts_each_cohort_from_its_users_first_event_ever(
        database_url: str, daily) -> None:  # type: ignore[no-untyped-def]
    p = retention.Params(period.parse("2026-11-02", "2026-11-06"))
    assert ask(database_url, daily.read_key, retention.build(p)).meta.source == "actor_hour_rollup"
    assert triangle(database_url, daily.read_key, p) == [
        ("2026-11-02", 1, [1, 1, 0, 1]),  # u1 (old was first seen in October)
        ("2026-11-03", 3, [3, 2, 0]),  # u2, u3, u7; u2 and u3 back on the 4th
        ("2026-11-04", 1, [1, 0]),  # u6
        ("2026-11-05", 1, [1]),  # u4: the 6th has not begun before `to`
    ]


def test_bots_are_in_cohorts_only_when_asked_for(database_url: str, daily) -> None:  # type: ignore[no-untyped-def]
    p = retention.Params(period.parse("2026-11-02", "2026-11-06"),
                         filters=Filters(include_bots=True))
    assert triangle(database_url, daily.read_key, p)[0] == ("2026-11-02", 2, [2, 2, 0, 1])


def test_a_time_zone_moves_users_between_cohorts(database_url: str, daily) -> None:  # type: ignore[no-untyped-def]
    new_york = retention.Params(period.parse("2026-11-02", "2026-11-06", "America/New_York"))
    assert triangle(database_url, daily.read_key, new_york) == [
        ("2026-11-02", 2, [2, 2, 1, 1]),  # u1, and u2 (21:00 on the 2nd), both back on the 3rd
        ("2026-11-03", 2, [2, 1, 0]),  # u3, u7
        ("2026-11-04", 1, [1, 0]),  # u6
        ("2026-11-05", 1, [1]),  # u4; 12:00 UTC on the 6th is after `to` (05:00 UTC)
    ]
    kolkata = retention.Params(period.parse("2026-11-02", "2026-11-06", "Asia/Kolkata"))
    # A half-hour zone: UTC hours do not tile its days, so the events answer.
    assert ask(database_url, daily.read_key,
               retention.build(kolkata)).meta.source == "events+actor_hour_rollup"
    assert triangle(database_url, daily.read_key, kolkata) == [
        ("2026-11-02", 1, [1, 1, 0, 1]),
        ("2026-11-03", 3, [3, 3, 0]),  # u7's 00:15 on the 4th is a return
        ("2026-11-04", 0, [0, 0]),  # u6 moved to the 5th
        ("2026-11-05", 2, [2]),  # u4, u6
    ]


def test_a_first_event_in_the_hour_before_a_mid_hour_from_keeps_the_user_out(
        database_url: str, daily) -> None:  # type: ignore[no-untyped-def]
    # u2's first event (02:00) is before `from` (02:30) but in the same UTC hour; its
    # next (10:00) is in the range, and does not make u2 new.
    p = retention.Params(period.parse("2026-11-03T02:30:00Z", "2026-11-06"))
    assert triangle(database_url, daily.read_key, p) == [
        ("2026-11-03", 2, [2, 1, 0]),  # u3, u7: a partial first cohort
        ("2026-11-04", 1, [1, 0]),
        ("2026-11-05", 1, [1]),
    ]


def test_filters_choose_the_events_that_count(database_url: str, daily) -> None:  # type: ignore[no-untyped-def]
    # u3's return on the 4th is a click: not a page view.
    p = retention.Params(period.parse("2026-11-02", "2026-11-06"),
                         filters=Filters(event_type=("page_view",)))
    assert triangle(database_url, daily.read_key, p)[1] == ("2026-11-03", 3, [3, 1, 0])
    # Nobody clicked in their first day: every cohort is empty, and u3's click on
    # the 4th is no return of a user outside the cohort.
    clicks = retention.Params(period.parse("2026-11-02", "2026-11-06"),
                              filters=Filters(event_type=("click",)))
    assert triangle(database_url, daily.read_key, clicks) == [
        ("2026-11-02", 0, [0, 0, 0, 0]), ("2026-11-03", 0, [0, 0, 0]),
        ("2026-11-04", 0, [0, 0]), ("2026-11-05", 0, [0])]


@pytest.fixture(scope="module")
def weekly(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Retention Weeks")
    c = made.company_id
    store(database_url, [
        # w1: Sunday 8 Nov is in the ISO week of Monday 2 Nov; back Monday 9th and the 20th.
        visit(c, at(8, 12), "w1"), visit(c, at(9, 12), "w1"), visit(c, at(20, 12), "w1"),
        # w2: Monday 9th and Sunday 15th (the same week), back on the 16th.
        visit(c, at(9, 8), "w2"), visit(c, at(15, 8), "w2"), visit(c, at(16, 10), "w2"),
        # w3: Tuesday 3rd only.
        visit(c, at(3, 12), "w3"),
        # w4: first on Sunday 1 Nov, the week before: in no cohort.
        visit(c, at(1, 12), "w4"), visit(c, at(2, 12), "w4"), visit(c, at(10, 12), "w4"),
        # w5: Sunday 22nd, the last week's last day.
        visit(c, at(22, 12), "w5"),
    ])
    refresh(database_url)
    return made


def test_a_week_triangle_starts_weeks_on_monday(database_url: str, weekly) -> None:  # type: ignore[no-untyped-def]
    p = retention.Params(period.parse("2026-11-02", "2026-11-23"), "week")
    assert triangle(database_url, weekly.read_key, p) == [
        ("2026-11-02", 2, [2, 1, 1]),  # w1, w3; w1 back in both later weeks
        ("2026-11-09", 1, [1, 1]),  # w2
        ("2026-11-16", 1, [1]),  # w5
    ]
    capped = retention.Params(p.period, "week", periods=2)
    assert triangle(database_url, weekly.read_key, capped)[0] == ("2026-11-02", 2, [2, 1])


def test_a_to_inside_a_week_ends_the_triangle_there(database_url: str, weekly) -> None:  # type: ignore[no-untyped-def]
    # To Wednesday 18th: the week of the 16th has begun, and w1's 20th is after `to`.
    p = retention.Params(period.parse("2026-11-02", "2026-11-18"), "week")
    assert triangle(database_url, weekly.read_key, p) == [
        ("2026-11-02", 2, [2, 1, 0]),
        ("2026-11-09", 1, [1, 1]),
        ("2026-11-16", 0, [0]),  # w5's Sunday is after `to`
    ]


def test_bad_parameters_are_named() -> None:
    def fields(query: dict[str, list[str]]) -> set[str]:
        with pytest.raises(BadParameters) as caught:
            retention.from_args(Args({"from": ["2026-11-02"], "to": ["2026-11-06"], **query}))
        return {e.field for e in caught.value.errors}

    assert fields({"interval": ["hour"]}) == {"interval"}
    assert fields({"periods": ["0"]}) == {"periods"}
    assert fields({"periods": ["93"]}) == {"periods"}
    assert fields({"interval": ["week"], "periods": ["54"]}) == {"periods"}
    assert fields({"periods": ["x'; DROP TABLE events; --"]}) == {"periods"}
    assert fields({"cohort": ["2026-11-02"]}) == {"cohort"}
    assert fields({"from": ["2026-11-06"]}) == {"from"}
    p = retention.from_args(Args({"interval": ["week"], "periods": ["53"]}))
    assert (p.interval, p.span) == ("week", 53)
    assert retention.from_args(Args({})).span == 31
    with pytest.raises(BadParameters, match="interval"):
        retention.Params(period.parse("2026-11-02", "2026-11-06"), "month")  # type: ignore[arg-type]


# Random data: a few actors' events around a range that crosses the end of
# summer time in Europe (25 Oct) and in New York (1 Nov).
_START = at(20, 0, month=10)
_moment = st.integers(-3 * 24 * 60, 18 * 24 * 60).map(lambda m: _START + timedelta(minutes=m))
_event = st.tuples(st.integers(0, 5), _moment, st.booleans(), st.integers(0, 9))
Drawn = tuple[int, datetime, bool, int]  # actor, time, identified, kind


def _events(company, drawn: list[Drawn]) -> list[Event]:  # type: ignore[no-untyped-def]
    """Kind 0 is a bot's, 1 a click, the rest page views; identified: a user_id."""
    return [event(company, when, "click" if kind == 1 else "page_view",
                  session=f"s{actor}-{when:%m%d}", agent=BOT if kind == 0 else DESKTOP,
                  **({"user": f"u{actor}", "anon": None} if identified else {"anon": f"a{actor}"}))
            for actor, when, identified, kind in drawn]


def _by_hand(drawn: list[Drawn], p: retention.Params) -> Triangle:
    """The definition, in Python, on the drawn events."""
    zone, step = p.period.zone, 7 if p.interval == "week" else 1
    times: dict[tuple[int, bool], list[datetime]] = {}
    for actor, when, identified, kind in drawn:
        if kind != 0 or p.filters.include_bots:
            times.setdefault((actor, identified), []).append(when)

    def period_of(moment: datetime) -> date:
        day = moment.astimezone(zone).date()
        return day - timedelta(days=day.weekday() if step == 7 else 0)

    cells: dict[tuple[date, int], int] = {}
    for seen in times.values():
        if not p.period.start <= min(seen) < p.period.end:
            continue
        cohort = period_of(min(seen))
        for active in {period_of(t) for t in seen if t < p.period.end}:
            key = (cohort, (active - cohort).days // step)
            cells[key] = cells.get(key, 0) + 1
    first = period_of(p.period.start)
    out: Triangle = []
    while datetime.combine(first, time(), zone) < p.period.end:
        retained = [cells.get((first, n), 0) for n in range(p.span)
                    if datetime.combine(first + timedelta(days=n * step), time(), zone) < p.period.end]
        out.append((first.isoformat(), retained[0], retained))
        first += timedelta(days=step)
    return out


@settings(max_examples=15, deadline=None)
@given(first=st.lists(_event, min_size=1, max_size=30), late=st.lists(_event, max_size=12),
       tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
       interval=st.sampled_from(retention.INTERVALS))
def test_the_rollup_and_the_events_agree_on_random_data_with_late_events(
        database_url: str, first: list[Drawn], late: list[Drawn], tz: str,
        interval: retention.Interval) -> None:
    made = make_tenant(database_url, "Retention Random")
    store(database_url, _events(made.company_id, first))
    refresh(database_url)
    # Late events, some older than what the rollup holds: they may move a user's
    # first event into another cohort, or before the range.
    store(database_url, _events(made.company_id, late))
    refresh(database_url)
    for bots in (False, True):
        p = retention.Params(period.parse("2026-10-20", "2026-11-03", tz), interval,
                             Filters(include_bots=bots))
        assert ask(database_url, made.read_key, retention.build(p)).meta.source == "actor_hour_rollup"
        assert triangle(database_url, made.read_key, p) == _by_hand(first + late, p)
