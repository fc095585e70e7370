"""Feature adoption worked by hand: adopters, time to first use, DAU/WAU/MAU and stickiness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from userflow.analytics import adoption, period
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters
from userflow.events.model import Event

from .analytics_support import BOT, ask, event, refresh, store
from .conftest import make_tenant

FEATURE = "Export CSV"


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def seen(c, when: datetime, actor: str, **kw) -> Event:  # type: ignore[no-untyped-def]
    return event(c, when, session=f"{actor}-{when:%m%d}", anon=actor, **kw)


def export(c, when: datetime, actor: str, **kw) -> Event:  # type: ignore[no-untyped-def]
    return event(c, when, "custom", session=f"{actor}-{when:%m%d}", anon=actor, event_name=FEATURE, **kw)


def button(c, when: datetime, actor: str, selector: str = "#export") -> Event:  # type: ignore[no-untyped-def]
    return event(c, when, "click", session=f"{actor}-{when:%m%d}", anon=actor,
                 element_selector=selector)


@pytest.fixture(scope="module")
def app(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Adoption App")
    c = made.company_id
    store(database_url, [
        # p1: since 20 Oct; exports on the 3rd.
        seen(c, at(20, 12, month=10), "p1"), seen(c, at(2, 12), "p1"), export(c, at(3, 12), "p1"),
        # p2: new on the 2nd, the export button (#export) 600 s later; back on the 4th.
        seen(c, at(2, 9), "p2"), button(c, at(2, 9, 10), "p2"), seen(c, at(4, 9), "p2"),
        # p3: new on the 2nd, exports a day and 30 minutes later (88,200 s).
        seen(c, at(2, 12), "p3"), export(c, at(3, 12, 30), "p3"),
        # p4: new on the 3rd, clicks something else.
        seen(c, at(3, 10), "p4"), button(c, at(3, 10, 5), "p4", "#other"),
        # p5: exported on 25 Oct, before the range; only looks on the 4th.
        export(c, at(25, 12, month=10), "p5"), seen(c, at(4, 12), "p5"),
        # p6 and p7: new on the 4th; p6 exports after 30 s, p7 clicks #export after 3,600 s.
        seen(c, at(4, 10), "p6"), export(c, at(4, 10, 0, 30), "p6"),
        seen(c, at(4, 8), "p7"), button(c, at(4, 9), "p7"),
        # p8: first seen 23:59 on 1 Nov, exports at 00:30 on the 2nd: not new.
        seen(c, at(1, 23, 59), "p8"), export(c, at(2, 0, 30), "p8"),
        # p9: only on the 5th, after `to`; a bot that exports.
        seen(c, at(5, 12), "p9"), export(c, at(5, 12, 5), "p9"),
        export(c, at(2, 10), "bot", agent=BOT),
        # Only before the range, at the edges of the trailing windows of the 2nd:
        # 29 and 30 days before it (in and out of its 30 days), 6 and 7 (its 7 days).
        seen(c, at(4, 12, month=10), "p10"), seen(c, at(3, 12, month=10), "p11"),
        seen(c, at(27, 12, month=10), "p12"), seen(c, at(26, 12, month=10), "p13"),
    ])
    refresh(database_url)
    return made


def figures(database_url: str, read_key: str, p: adoption.Params) -> adoption.Result:
    """The answer, after checking that the events give the same as the rollup."""
    got = ask(database_url, read_key, adoption.build(p))
    raw = ask(database_url, read_key, adoption.build(
        adoption.Params(p.period, p.feature, p.filters, raw=True)))
    assert raw.meta.source == "events+actor_hour_rollup"
    assert got.result == raw.result
    return got.result


def test_adoption_as_worked_by_hand(database_url: str, app) -> None:  # type: ignore[no-untyped-def]
    p = adoption.Params(period.parse("2026-11-02", "2026-11-05"), FEATURE)
    assert ask(database_url, app.read_key, adoption.build(p)).meta.source == "actor_hour_rollup+events"
    got = figures(database_url, app.read_key, p)
    assert (got.feature, got.active_users, got.adopters) == (FEATURE, 8, 4)  # p1-p8; p1 p3 p6 p8
    assert got.adoption_rate == 0.5
    # New adopters p3 and p6: 88,200 and 30 s, the mean of the two (p8 is not new).
    assert got.median_time_to_first_use_s == pytest.approx(44115)
    # Days 2, 3, 4 Nov: active 4 (p1 p2 p3 p8), 3 (p1 p3 p4), 4 (p2 p5 p6 p7);
    # in the 7 days to each: 5 (p1 p2 p3 p8 p12), 5 (+p4 -p12), 8 (p1-p8);
    # in the 30 days: 8 (p1 p2 p3 p5 p8 p10 p12 p13), 8 (+p4 -p10), 10 (p1-p8 p12 p13).
    assert (got.dau, got.wau, got.mau) == (pytest.approx(11 / 3), pytest.approx(18 / 3),
                                          pytest.approx(26 / 3))
    assert got.stickiness == pytest.approx(11 / 26)
    with_bots = figures(database_url, app.read_key, adoption.Params(
        p.period, FEATURE, Filters(include_bots=True)))
    assert (with_bots.active_users, with_bots.adopters) == (9, 5)
    # The element selector: p2 and p7, both new, after 600 and 3,600 s.
    button_ = figures(database_url, app.read_key, adoption.Params(p.period, "#export"))
    assert (button_.adopters, button_.median_time_to_first_use_s) == (2, pytest.approx(2100))
    assert (button_.dau, button_.mau) == (got.dau, got.mau)


def test_a_time_zone_moves_the_days(database_url: str, app) -> None:  # type: ignore[no-untyped-def]
    # In New York the range starts at 05:00 UTC on the 2nd: p8's events are before it.
    got = figures(database_url, app.read_key, adoption.Params(
        period.parse("2026-11-02", "2026-11-05", "America/New_York"), FEATURE))
    assert (got.active_users, got.adopters) == (7, 3)
    assert got.median_time_to_first_use_s == pytest.approx(44115)
    # Days: 3 (p1 p2 p3), 3 (p1 p3 p4), 4; p8's day is 1 Nov there.
    assert (got.dau, got.wau, got.mau) == (pytest.approx(10 / 3), pytest.approx(18 / 3),
                                          pytest.approx(26 / 3))
    assert got.stickiness == pytest.approx(10 / 26)


def test_filters_choose_the_events_that_count(database_url: str, app) -> None:  # type: ignore[no-untyped-def]
    p = adoption.Params(period.parse("2026-11-02", "2026-11-05"), FEATURE,
                        Filters(event_type=("page_view",)))
    assert ask(database_url, app.read_key, adoption.build(p)).meta.source == "events+actor_hour_rollup"
    got = figures(database_url, app.read_key, p)
    # Page views only: p8 viewed nothing in the range, nobody used the feature by one.
    assert (got.active_users, got.adopters, got.adoption_rate) == (7, 0, 0.0)
    assert got.median_time_to_first_use_s is None
    # Days: 3 (p1 p2 p3), 1 (p4), 4 (p2 p5 p6 p7); 7 days: 5 (p8's 1 Nov, p12), 5, 8;
    # 30 days: 7 (p5's 25 Oct was an export), 7, 10.
    assert (got.dau, got.wau, got.mau) == (pytest.approx(8 / 3), pytest.approx(18 / 3),
                                          pytest.approx(24 / 3))
    assert got.stickiness == pytest.approx(1 / 3)


def test_a_quiet_range_is_all_zero(database_url: str, app) -> None:  # type: ignore[no-untyped-def]
    got = figures(database_url, app.read_key, adoption.Params(
        period.parse("2027-03-01", "2027-03-02"), FEATURE))
    assert got == adoption.Result(FEATURE, 0, 0, 0.0, None, 0.0, 0.0, 0.0, 0.0)


def test_over_http(api_url: str, app) -> None:  # type: ignore[no-untyped-def]
    def get(**params: str) -> httpx.Response:
        return httpx.get(api_url + "/v1/analytics/adoption", params=params, timeout=30,
                         headers={"Authorization": f"Bearer {app.read_key}"})

    answer = get(feature="#export", **{"from": "2026-11-02", "to": "2026-11-05"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # The selector: p2 and p7, both new (600 s and 3,600 s).
    assert (body["adopters"], body["median_time_to_first_use_s"]) == (2, 2100)
    assert body["meta"]["rollup"] == "actor_hour_rollup+events"
    bad = get(features="x")
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"feature", "features"}


def test_bad_parameters_are_named() -> None:
    def fields(query: dict[str, list[str]]) -> set[str]:
        with pytest.raises(BadParameters) as caught:
            adoption.from_args(Args({"feature": [FEATURE], **query}))
        return {e.field for e in caught.value.errors}

    assert fields({"feature": [""]}) == {"feature"}
    assert fields({"feature": ["x" * 3000]}) == {"feature"}
    assert fields({"interval": ["day"]}) == {"interval"}
    assert fields({"tz": ["Mars/Olympus"]}) == {"tz"}
    assert fields({"from": ["2015-01-01"], "to": ["2026-01-01"]}) == {"to"}
    assert adoption.from_args(Args({"feature": ["'; DROP TABLE events; --"]})).feature \
        == "'; DROP TABLE events; --"
    with pytest.raises(BadParameters, match="feature"):
        adoption.Params(period.parse("2026-11-02", "2026-11-05"), "")


_moment = st.integers(-35 * 24 * 60, 12 * 24 * 60).map(
    lambda m: at(2, 0) + timedelta(minutes=m))
_drawn = st.tuples(st.integers(0, 4), _moment, st.integers(0, 5))


@settings(max_examples=10, deadline=None)
@given(first=st.lists(_drawn, min_size=1, max_size=25), late=st.lists(_drawn, max_size=10),
       tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
def test_the_rollup_and_the_events_agree_on_random_data_with_late_events(
        database_url: str, first: list[tuple[int, datetime, int]],
        late: list[tuple[int, datetime, int]], tz: str) -> None:
    made = make_tenant(database_url, "Adoption Random")

    def events(drawn: list[tuple[int, datetime, int]]) -> list[Event]:
        # Kind 0 a bot's page view, 1 the feature, the rest page views.
        return [export(made.company_id, when, f"a{i}") if kind == 1 else
                seen(made.company_id, when, f"a{i}", agent=BOT) if kind == 0 else
                seen(made.company_id, when, f"a{i}") for i, when, kind in drawn]

    store(database_url, events(first))
    refresh(database_url)
    store(database_url, events(late))
    refresh(database_url)
    for bots in (False, True):
        p = adoption.Params(period.parse("2026-11-02", "2026-11-12", tz), FEATURE,
                            Filters(include_bots=bots))
        assert ask(database_url, made.read_key, adoption.build(p)).meta.source == \
            "actor_hour_rollup+events"
        got = figures(database_url, made.read_key, p)
        assert 0 <= got.adoption_rate <= 1 and 0 <= got.stickiness <= 1
        assert got.dau <= got.wau <= got.mau <= len({i for i, _, _ in first + late})
