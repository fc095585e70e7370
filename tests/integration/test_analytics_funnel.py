"""Funnels, worked by hand on small datasets, against a brute force on random ones,
and the bodies that must be refused."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from userflow.analytics import funnel, period
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters
from userflow.analytics.funnel import Params, Step

from .analytics_support import BOT, PHONE, ask, event, store
from .conftest import make_tenant

pytestmark = pytest.mark.services

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DAY = period.parse("2026-11-02", "2026-11-03")
S = timedelta(seconds=1)
HOME, PRICING, SIGNUP = Step("page_view", "/"), Step("page_view", "/pricing"), Step("page_view", "/signup")
BUY = Step("click", element_selector="#buy")


def counts(result: funnel.Result) -> list[int]:
    return [s.count for s in result.steps]


def medians(result: funnel.Result) -> list[float | None]:
    return [s.median_seconds_from_previous for s in result.steps]


def test_the_window_end_is_inclusive_and_steps_must_come_in_order(database_url: str) -> None:
    made = make_tenant(database_url, "Funnel Window")
    c = made.company_id
    store(database_url, [
        # u1: the click exactly at the window's end counts
        event(c, T0, user="u1", page="/"),
        event(c, T0 + 3600 * S, "click", user="u1", element_selector="#buy"),
        # u2: one second later it does not
        event(c, T0, user="u2", page="/"),
        event(c, T0 + 3601 * S, "click", user="u2", element_selector="#buy"),
        # u3: the click came first: out of order
        event(c, T0 - 10 * S, "click", user="u3", element_selector="#buy"),
        event(c, T0, user="u3", page="/"),
        # u4: at the same instant is not after
        event(c, T0, user="u4", page="/"),
        event(c, T0, "click", user="u4", element_selector="#buy"),
        # u5: another element is another step
        event(c, T0, user="u5", page="/"),
        event(c, T0 + S, "click", user="u5", element_selector="#cancel"),
    ])
    got = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, BUY), window_seconds=3600))).result
    assert counts(got) == [5, 1]
    first, second = got.steps
    assert (first.conversion_from_first, first.conversion_from_previous, first.drop_off) == (1, 1, 0)
    assert (second.conversion_from_first, second.conversion_from_previous, second.drop_off) == (
        0.2, 0.2, 4)
    assert medians(got) == [None, 3600]
    assert (second.event_type, second.element_selector, second.page) == ("click", "#buy", None)
    # A window one second longer takes u2 in.
    assert counts(ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, BUY), window_seconds=3601))).result) == [5, 2]


def test_a_step_out_of_order_is_skipped_not_counted(database_url: str) -> None:
    made = make_tenant(database_url, "Funnel Order")
    c = made.company_id
    store(database_url, [
        # u1: /, /signup, /pricing: reaches /pricing only (signup came before it)
        event(c, T0, user="u1", page="/"),
        event(c, T0 + 10 * S, user="u1", page="/signup"),
        event(c, T0 + 20 * S, user="u1", page="/pricing"),
        # u2: /, /signup, /pricing, /signup: the second signup completes it
        event(c, T0, user="u2", page="/"),
        event(c, T0 + 10 * S, user="u2", page="/signup"),
        event(c, T0 + 20 * S, user="u2", page="/pricing"),
        event(c, T0 + 30 * S, user="u2", page="/signup"),
        # u3: /pricing, /signup with no / first: never enters
        event(c, T0, user="u3", page="/pricing"),
        event(c, T0 + 10 * S, user="u3", page="/signup"),
    ])
    got = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, PRICING, SIGNUP)))).result
    assert counts(got) == [2, 2, 1]
    assert [s.drop_off for s in got.steps] == [0, 0, 1]
    assert [s.conversion_from_previous for s in got.steps] == [1, 1, 0.5]
    assert medians(got) == [None, 20, 10]


def test_the_earliest_attempt_reaching_the_furthest_step_gives_the_times(database_url: str) -> None:
    made = make_tenant(database_url, "Funnel Attempts")
    c = made.company_id
    store(database_url, [
        # u1, attempt 1 (T0): /pricing at 100 s, /signup at 1500 s, past its 600 s window
        event(c, T0, user="u1", page="/"),
        event(c, T0 + 100 * S, user="u1", page="/pricing"),
        # attempt 2 (1000 s): /pricing 300 s later, /signup 200 s after that: all three
        event(c, T0 + 1000 * S, user="u1", page="/"),
        event(c, T0 + 1300 * S, user="u1", page="/pricing"),
        event(c, T0 + 1500 * S, user="u1", page="/signup"),
        # attempt 3 (2000 s) is as far and faster, but later: not the counted one
        event(c, T0 + 2000 * S, user="u1", page="/"),
        event(c, T0 + 2010 * S, user="u1", page="/pricing"),
        event(c, T0 + 2020 * S, user="u1", page="/signup"),
        # u2: 50 s, then 20 s
        event(c, T0, user="u2", page="/"),
        event(c, T0 + 50 * S, user="u2", page="/pricing"),
        event(c, T0 + 70 * S, user="u2", page="/signup"),
        # u3: enters only
        event(c, T0, user="u3", page="/"),
    ])
    got = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, PRICING, SIGNUP), window_seconds=600))).result
    assert counts(got) == [3, 2, 2]
    # Even counts: the mean of the two middle values (300 and 50; 200 and 20).
    assert medians(got) == [None, 175, 110]
    assert [s.conversion_from_first for s in got.steps] == pytest.approx([1, 2 / 3, 2 / 3])


def test_step_one_in_the_range_later_steps_within_the_window_after_it(database_url: str) -> None:
    made = make_tenant(database_url, "Funnel Range")
    c = made.company_id
    end = datetime(2026, 11, 3, tzinfo=UTC)
    store(database_url, [
        # u1: enters a minute before the end, converts a minute after it
        event(c, end - 60 * S, user="u1", page="/"),
        event(c, end + 60 * S, user="u1", page="/pricing"),
        # u2: enters before the range: not in this funnel, even converting inside it
        event(c, T0 - timedelta(days=1), user="u2", page="/"),
        event(c, T0, user="u2", page="/pricing"),
        # u3: enters after the range
        event(c, end, user="u3", page="/"),
        event(c, end + S, user="u3", page="/pricing"),
        # u4: enters in the range without converting; the attempt after the range is not one
        event(c, end - 60 * S, user="u4", page="/"),
        event(c, end + 30 * S, user="u4", page="/"),
        event(c, end + 90 * S, user="u4", page="/pricing"),
    ])
    got = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, PRICING), window_seconds=120))).result
    assert counts(got) == [2, 1]
    assert medians(got) == [None, 120]


def test_actor_session_or_user(database_url: str) -> None:
    made = make_tenant(database_url, "Funnel Actor")
    c = made.company_id
    store(database_url, [
        # u1 enters in s1 and converts in s2: a converted user, not a converted session
        event(c, T0, user="u1", session="s1", page="/"),
        event(c, T0 + 60 * S, "click", user="u1", session="s2", element_selector="#buy"),
        # u2 does both in s3
        event(c, T0, user="u2", session="s3", page="/"),
        event(c, T0 + 5 * S, "click", user="u2", session="s3", element_selector="#buy"),
        # an anonymous visitor is a user too; an event without a session is no session's
        event(c, T0, user=None, anon="anon-1", session=None, page="/"),
    ])
    as_users = ask(database_url, made.read_key, funnel.build(Params(DAY, (HOME, BUY)))).result
    assert (as_users.actor, counts(as_users), medians(as_users)) == ("user", [3, 2], [None, 32.5])
    as_sessions = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, BUY), actor="session"))).result
    assert (as_sessions.actor, counts(as_sessions), medians(as_sessions)) == (
        "session", [2, 1], [None, 5])


def test_breakdown_by_the_device_of_the_actor_s_first_event_in_the_range(database_url: str) -> None:
    made = make_tenant(database_url, "Funnel Breakdown")
    c = made.company_id
    store(database_url, [
        # u1 on a desktop: both steps
        event(c, T0, user="u1", page="/"),
        event(c, T0 + 10 * S, user="u1", page="/pricing"),
        # u2 on a phone: enters only; u3 on a phone: both
        event(c, T0, user="u2", page="/", agent=PHONE),
        event(c, T0, user="u3", page="/", agent=PHONE),
        event(c, T0 + 20 * S, user="u3", page="/pricing", agent=PHONE),
        # u4: first seen in the range on a phone (on no step), then both steps on a desktop
        event(c, T0 - 60 * S, user="u4", page="/blog", agent=PHONE),
        event(c, T0, user="u4", page="/"),
        event(c, T0 + 30 * S, user="u4", page="/pricing"),
        # u5: a desktop the day before the range does not count; a phone in it does
        event(c, T0 - timedelta(days=1), user="u5", page="/blog"),
        event(c, T0, user="u5", page="/", agent=PHONE),
    ])
    got = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, PRICING), breakdown="device_type"))).result
    assert counts(got) == [5, 3]
    assert got.breakdown is not None
    rows = [(r.value, [s.count for s in r.steps], r.steps[1].median_seconds_from_previous,
             r.steps[1].conversion_from_first) for r in got.breakdown]
    assert rows == [("mobile", [4, 2], 25, 0.5), ("desktop", [1, 1], 10, 1)]
    # Only the first value: a limit of one keeps the biggest; the whole stays whole.
    top = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, PRICING), breakdown="device_type", breakdown_limit=1))).result
    assert top.breakdown is not None
    assert [(r.value, r.steps[0].count) for r in top.breakdown] == [("mobile", 4)]
    assert counts(top) == [5, 3]
    # A breakdown without values: one row of null.
    none = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, PRICING), breakdown="utm_campaign"))).result
    assert none.breakdown is not None
    assert [(r.value, [s.count for s in r.steps]) for r in none.breakdown] == [(None, [5, 3])]


def test_a_step_page_is_the_path_and_names_and_selectors_match_exactly(database_url: str) -> None:
    made = make_tenant(database_url, "Funnel Pages")
    c = made.company_id
    signed_up = Step("custom", event_name="Signed Up")
    store(database_url, [
        # u1: a query string and a fragment are not the path
        event(c, T0, user="u1", page="/pricing?plan=pro#faq"),
        event(c, T0 + 10 * S, "custom", user="u1", page="/signup", event_name="Signed Up"),
        # u2: another path, and another event name
        event(c, T0, user="u2", page="/pricing/old"),
        event(c, T0, user="u2", page="https://other.example/pricing"),
        event(c, T0 + 10 * S, "custom", user="u2", event_name="signed up"),
        # u3: a page view on /pricing, but the custom event has no name
        event(c, T0, user="u3", page="/pricing"),
        event(c, T0 + 10 * S, "custom", user="u3"),
    ])
    got = ask(database_url, made.read_key, funnel.build(
        Params(DAY, (PRICING, signed_up)))).result
    # u2's page view of another host's /pricing is /pricing: the path is what a step names.
    assert counts(got) == [3, 1]
    assert (got.steps[1].event_type, got.steps[1].event_name) == ("custom", "Signed Up")


def test_bots_and_filters(database_url: str) -> None:
    made = make_tenant(database_url, "Funnel Bots")
    c = made.company_id
    store(database_url, [
        event(c, T0, user="bot", page="/", agent=BOT),
        event(c, T0 + S, user="bot", page="/pricing", agent=BOT),
        event(c, T0, user="u1", page="/", agent=PHONE),
        event(c, T0 + S, user="u1", page="/pricing"),  # on a desktop
        event(c, T0, user="u2", page="/", agent=PHONE),
        event(c, T0 + S, user="u2", page="/pricing", agent=PHONE),
    ])
    steps = (HOME, PRICING)
    assert counts(ask(database_url, made.read_key, funnel.build(
        Params(DAY, steps))).result) == [2, 2]
    assert counts(ask(database_url, made.read_key, funnel.build(
        Params(DAY, steps, filters=Filters(include_bots=True)))).result) == [3, 3]
    # Filters hold for every step's event: u1 converted on a desktop.
    assert counts(ask(database_url, made.read_key, funnel.build(
        Params(DAY, steps, filters=Filters(device_type=("mobile",))))).result) == [2, 1]
    # SQL in a value is a value.
    hostile = Step("page_view", "/'; DROP TABLE user_events; --")
    assert counts(ask(database_url, made.read_key, funnel.build(
        Params(DAY, (HOME, hostile), filters=Filters(country=("' OR 1=1 --",))))).result) == [0, 0]
    nobody = ask(database_url, made.read_key, funnel.build(Params(DAY, (hostile, HOME)))).result
    assert [(s.count, s.conversion_from_first, s.conversion_from_previous, s.drop_off,
             s.median_seconds_from_previous) for s in nobody.steps] == [(0, 0, 0, 0, None)] * 2


# -- the definition, by brute force, on random events --------------------------------

@dataclass(frozen=True)
class Ev:
    user: str
    session: str
    at: int  # seconds after T0
    kind: str
    page: str


def brute(events: list[Ev], steps: list[tuple[str, str]], window: int, actor: str,
          lo: int, hi: int) -> tuple[list[int], list[float | None]]:
    """The definition, followed literally: every attempt, every choice of events."""
    by_actor: dict[str, list[Ev]] = defaultdict(list)
    for e in events:
        by_actor[e.user if actor == "user" else e.session].append(e)
    reached = [0] * len(steps)
    gaps: list[list[float]] = [[] for _ in steps]
    for evs in by_actor.values():
        best: tuple[int, int, list[int]] | None = None  # (depth, start, times)
        for start in sorted({e.at for e in evs if (e.kind, e.page) == steps[0] and lo <= e.at < hi}):
            times = [start]
            for kind, page in steps[1:]:
                later = [e.at for e in evs if (e.kind, e.page) == (kind, page)
                         and times[-1] < e.at <= start + window]
                if not later:
                    break
                times.append(min(later))
            if best is None or len(times) > best[0]:
                best = (len(times), start, times)
        if best is None:
            continue
        for k, t in enumerate(best[2]):
            reached[k] += 1
            if k:
                gaps[k].append(t - best[2][k - 1])
    return reached, [statistics.median(g) if g else None for g in gaps]


STEP_CHOICES = [("page_view", "/"), ("page_view", "/a"), ("click", "/a")]


@st.composite
def visits(draw: st.DrawFn) -> list[Ev]:
    """A few bursts of an actor's events, a second or so apart: steps in and out of order,
    repeated attempts, ties and window edges are common."""
    user, session = draw(st.sampled_from(["u1", "u2"])), draw(st.sampled_from(["s1", "s2", "s3"]))
    at = draw(st.integers(-3, 22))
    out = []
    for gap, (kind, page) in draw(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(STEP_CHOICES)),
                                           min_size=2, max_size=6)):
        at += gap
        out.append(Ev(user, session, at, kind, page))
    return out


events_strategy = st.lists(visits(), min_size=1, max_size=6).map(lambda vs: [e for v in vs for e in v])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy,
       steps=st.lists(st.sampled_from(STEP_CHOICES), min_size=2, max_size=4),
       window=st.sampled_from([1, 2, 4, 8]), actor=st.sampled_from(["user", "session"]))
def test_random_funnels_follow_the_definition(database_url: str, events: list[Ev],
                                              steps: list[tuple[str, str]], window: int,
                                              actor: str) -> None:
    made = make_tenant(database_url, "Funnel Random")
    store(database_url, [event(made.company_id, T0 + e.at * S, e.kind, user=e.user,
                               session=e.session, page=e.page) for e in events])
    # Seconds apart, windows of a few: ties, window edges and repeated attempts are common.
    lo, hi = 0, 12  # the range; events before and after it too
    span = period.parse((T0 + lo * S).isoformat(), (T0 + hi * S).isoformat())
    got = ask(database_url, made.read_key, funnel.build(Params(
        span, tuple(Step(k, p) for k, p in steps), window, actor))).result  # type: ignore[arg-type]
    want_counts, want_medians = brute(events, steps, window, actor, lo, hi)
    assert counts(got) == want_counts
    assert medians(got) == want_medians
    assert all(a >= b for a, b in zip(counts(got), counts(got)[1:]))
    for s in got.steps:
        assert 0 <= s.conversion_from_first <= 1 and 0 <= s.conversion_from_previous <= 1
        assert s.drop_off >= 0


# -- bodies that must be refused ------------------------------------------------------

def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"from": "2026-11-02", "to": "2026-11-03",
                         "steps": [{"event_type": "page_view", "page": "/"},
                                   {"event_type": "click", "element_selector": "#buy"}]}
    b.update(over)
    return b


def refused(b: object) -> dict[str, str]:
    """field -> reason of each problem; a field is named once."""
    with pytest.raises(BadParameters) as caught:
        funnel.from_body(b)
    named = [e.field for e in caught.value.errors]
    assert len(named) == len(set(named)), named
    return {e.field: e.reason for e in caught.value.errors}


def test_a_good_body_reads_as_written() -> None:
    p = funnel.from_body(body(window_seconds=600, actor="session", breakdown="country",
                              tz="Europe/Paris", device_type="mobile", page=["/", "/a"],
                              include_bots=True))
    assert p.steps == (Step("page_view", "/"), Step("click", element_selector="#buy"))
    assert (p.window_seconds, p.actor, p.breakdown) == (600, "session", "country")
    assert p.filters == Filters(device_type=("mobile",), page=("/", "/a"), include_bots=True)
    assert p.period.tz == "Europe/Paris"
    assert p.period.start == datetime(2026, 11, 1, 23, tzinfo=UTC)
    defaults = funnel.from_body(body())
    assert (defaults.window_seconds, defaults.actor, defaults.breakdown) == (86400, "user", None)
    assert defaults.filters == Filters()


@pytest.mark.parametrize(("b", "fields"), [
    (body(steps=[{"event_type": "page_view"}] * 30), {"steps"}),
    (body(steps=[{"event_type": "page_view"}]), {"steps"}),
    (body(steps=None), {"steps"}),
    (body(steps="page_view"), {"steps"}),
    (body(steps=[{"event_type": "page_view"}, {"event_type": "purchase"}]), {"steps.1.event_type"}),
    (body(steps=[{"event_type": "page_view"}, {"event_type": "click"}, {"event_type": 7}]),
     {"steps.2.event_type"}),
    (body(steps=[{"event_type": "page_view"}, {"page": "/"}]), {"steps.1.event_type"}),
    (body(steps=[{"event_type": "page_view", "page": 3}, "click"]), {"steps.0.page", "steps.1"}),
    (body(steps=[{"event_type": "page_view", "colour": "red"}, {"event_type": "click"}]),
     {"steps.0.colour"}),
    (body(steps=[{"event_type": "page_view", "page": "/a?b=c"}, {"event_type": "click"}]),
     {"steps.0.page"}),
    (body(steps=[{"event_type": "page_view", "event_name": ""}, {"event_type": "click"}]),
     {"steps.0.event_name"}),
    (body(steps=[{"event_type": "page_view", "page": "/\x00"}, {"event_type": "click"}]),
     {"steps.0.page"}),
    (body(steps=[{"event_type": "page_view'; DROP TABLE events; --"}, {"event_type": "click"}]),
     {"steps.0.event_type"}),
    (body(colour="red", limit=3), {"colour", "limit"}),
    (body(window_seconds=0), {"window_seconds"}),
    (body(window_seconds=90 * 86400 + 1), {"window_seconds"}),
    (body(window_seconds="3600"), {"window_seconds"}),
    (body(window_seconds=True), {"window_seconds"}),
    (body(actor="company"), {"actor"}),
    (body(actor="user; DROP TABLE events"), {"actor"}),
    (body(breakdown="page"), {"breakdown"}),
    (body(breakdown="device_type) OR 1=1 --"), {"breakdown"}),
    (body(breakdown_limit=0), {"breakdown_limit"}),
    (body(**{"from": "2026-11-03", "to": "2026-11-02"}), {"from"}),
    (body(**{"from": "2016-01-01", "to": "2026-01-01"}), {"to"}),
    (body(**{"from": 20261102}), {"from"}),
    (body(**{"from": "yesterday"}), {"from"}),
    (body(tz="Mars/Olympus"), {"tz"}),
    (body(device_type=["mobile", 3]), {"device_type"}),
    (body(event_type="purchase"), {"event_type"}),
    (body(include_bots="yes"), {"include_bots"}),
    (body(country=["x"] * 101), {"country"}),
])
def test_bad_bodies_name_each_bad_field(b: dict[str, Any], fields: set[str]) -> None:
    assert set(refused(b)) == fields


def test_not_an_object_and_every_problem_at_once() -> None:
    assert set(refused([1, 2])) == {"body"}
    assert set(refused(body(steps=[{"event_type": "x"}, {"event_type": "y"}], actor="x",
                            window_seconds=-1, colour=1))) == {
        "steps.0.event_type", "steps.1.event_type", "actor", "window_seconds", "colour"}


def test_params_refuse_what_from_body_refuses() -> None:
    with pytest.raises(BadParameters):
        Params(DAY, (HOME,) * 30)
    with pytest.raises(BadParameters):
        Params(DAY, (HOME, Step("purchase")))
    with pytest.raises(BadParameters):
        Params(DAY, (HOME, PRICING), window_seconds=0)


def test_one_statement_with_every_value_bound() -> None:
    hostile = "'; DROP TABLE user_events; --"
    q = funnel.build(Params(DAY, (Step("page_view", hostile), Step("custom", event_name=hostile)),
                            breakdown="referrer", filters=Filters(city=(hostile,))))
    assert hostile not in q.sql and ";" not in q.sql
    assert hostile in q.params.values() and [hostile] in q.params.values()
    # The reader may read only the tenant schema.
    assert q.source == "events" and "FROM tenant.events e" in q.sql
    assert "user_events" not in q.sql and "FROM events" not in q.sql
