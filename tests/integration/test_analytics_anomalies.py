"""find_anomalies on a simulated month: the planted incidents are found, where they are, and a
quiet week gives nothing.

`generate(anomalies=True)` simulates four weeks from a UTC midnight: weeks 0 to 2
plant nothing, week 3 holds a day on which half of the desktop checkouts fail
(the checkout funnel's conversion halves on desktop) and an hour in which a
newsletter brings about three times the hour's traffic (planted.py). The
events are stored by the consumer's own code, as the other analytics tests do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import orjson
from psycopg_pool import ConnectionPool

from userflow.ai import tools
from userflow.ai.reader import Limits, Reader
from userflow.analytics import anomalies
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters
from userflow.analytics.funnel import Step
from userflow.analytics.period import Period
from userflow.events.receipt import Receipt
from userflow.events.segment import from_segment
from userflow.simulate import generate, planted
from userflow.simulate.truth import FUNNEL_STEPS

from .analytics_support import ask, refresh, store
from .conftest import make_tenant
from .stack import ROLE_OF, as_role

pytestmark = pytest.mark.services

EVENTS = 150_000
CHECKOUT = (Step("form_submit", page="/checkout"), Step("custom", event_name=planted.GOAL_EVENT))
SHOP = tuple(Step(s.event_type, page=s.path, event_name=s.event_name) for s in FUNNEL_STEPS)
DEVICES = ("desktop", "mobile", "tablet")


@pytest.fixture(scope="module")
def month(database_url: str) -> tuple[Any, Any, datetime]:
    made = make_tenant(database_url, "Anomaly Shop")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    sim = generate(EVENTS, seed=8, start=today - planted.ANOMALY_WINDOW, anomalies=True)
    receipt = Receipt(made.company_id, datetime.now(UTC), retention_days=3650,
                      max_future_seconds=86_400)
    events = [from_segment(m, receipt) for m in sim.messages]
    for i in range(0, len(events), 20_000):
        store(database_url, events[i:i + 20_000])
    refresh(database_url)
    return made, sim.truth, today - planted.ANOMALY_WINDOW


def week(start: datetime, n: int) -> Period:
    return Period(start + timedelta(days=7 * n), start + timedelta(days=7 * (n + 1)))


def find(database_url: str, made: Any, span: Period, metric: str, interval: str = "day",
         **kw: Any) -> anomalies.Result:
    p = anomalies.Params(span, metric, interval, **kw)  # type: ignore[arg-type]
    return ask(database_url, made.read_key, anomalies.build(p)).result


def at(iso_z: str) -> datetime:
    return datetime.fromisoformat(iso_z.replace("Z", "+00:00"))


def test_the_checkout_drop_is_found_on_its_day_and_device(database_url: str, month) -> None:  # type: ignore[no-untyped-def]
    made, truth, start = month
    drop = truth.anomalies.checkout_drop
    day = at(drop.day_from)
    assert drop.checkouts >= 6 and drop.failed == drop.checkouts // 2  # what was planted
    got = find(database_url, made, week(start, 3), "funnel_conversion", steps=CHECKOUT,
               filters=Filters(device_type=(drop.device_type,)))
    assert got.enough_history and [at(a.t) for a in got.anomalies] == [day]
    found = got.anomalies[0]
    assert found.direction == "down" and found.robust_z <= -anomalies.DEFAULT_THRESHOLD
    # The actors who submitted the checkout that day, and the share who then ordered.
    assert (found.n, found.actual) == (drop.checkouts, pytest.approx(drop.conversion))
    assert found.expected == pytest.approx(drop.conversion_other_days, abs=0.01)
    assert found.relative_change == pytest.approx(drop.conversion / found.expected - 1)
    for device in set(DEVICES) - {drop.device_type}:
        other = find(database_url, made, week(start, 3), "funnel_conversion", steps=CHECKOUT,
                     filters=Filters(device_type=(device,)))
        assert other.anomalies == [], device
    # All devices together: the same day, diluted by the devices that still work.
    together = find(database_url, made, week(start, 3), "funnel_conversion", steps=CHECKOUT)
    assert [at(a.t) for a in together.anomalies] == [day]
    assert found.actual < together.anomalies[0].actual < 1


def test_the_spike_hour_is_found(database_url: str, month) -> None:  # type: ignore[no-untyped-def]
    made, truth, start = month
    spike = truth.anomalies.spike
    hour = at(spike.hour_from)
    # The simulator starts no visit in the last two hours of its window (a visit must be
    # over by its end), so those hours really are empty: they are left out of the range.
    span = Period(week(start, 3).start, week(start, 3).end - timedelta(hours=2))
    sessions = find(database_url, made, span, "sessions", "hour")
    assert [at(a.t) for a in sessions.anomalies] == [hour]
    found = sessions.anomalies[0]
    assert (found.direction, found.actual, found.n) == ("up", spike.sessions, spike.sessions)
    assert found.relative_change > 1.5  # the planted blast: about three times the hour's traffic
    assert found.expected == pytest.approx(spike.sessions_same_hour_other_days, rel=0.5)
    events = find(database_url, made, span, "events", "hour")
    assert hour in [at(a.t) for a in events.anomalies if a.direction == "up"]


def test_nothing_in_the_quiet_week(database_url: str, month) -> None:  # type: ignore[no-untyped-def]
    made, truth, start = month
    quiet = week(start, planted.QUIET_WEEK)
    assert truth.anomalies.quiet_week_from.startswith(quiet.start.date().isoformat())
    every = [Filters()] + [Filters(device_type=(d,)) for d in DEVICES]
    asked = [(metric, interval, f, ()) for metric in ("sessions", "bounce_rate", "page_errors")
             for interval in ("day", "hour") for f in every]
    asked += [("funnel_conversion", "day", f, steps) for steps in (CHECKOUT, SHOP) for f in every]
    asked.append(("events", "day", Filters(), ()))
    for metric, interval, f, steps in asked:
        got = find(database_url, made, quiet, metric, interval, filters=f, steps=steps)
        assert got.anomalies == [], (metric, interval, f.device_type, got.anomalies)
        judged = [p for p in got.series if p.judged]
        assert len(judged) == {"day": 7, "hour": 168}[interval]
        # A day nobody checked out on a tablet has no conversion: with too few days that
        # have one, the answer says there is not enough history rather than guess.
        known = sum(p.value is not None for p in got.series)
        assert got.enough_history == (known >= 3 * anomalies.SEASON[interval]), got.note
        assert all(p.robust_z is not None for p in judged if p.value is not None
                   and got.enough_history)


def test_too_little_history_is_said_not_guessed(database_url: str, month) -> None:  # type: ignore[no-untyped-def]
    made, _, start = month
    # Two weeks of data before the end of week 1: fewer than three weekly cycles.
    got = find(database_url, made, week(start, 1), "sessions")
    assert not got.enough_history and got.anomalies == []
    assert got.note and "needs 21" in got.note
    assert got.history_from == start.isoformat()  # the tenant's first day, not 28 days back
    assert all(p.expected is None for p in got.series)
    # Hours: a week of them is enough (72 needed).
    assert find(database_url, made, week(start, 1), "sessions", "hour").enough_history


def test_refused_parameters_name_the_field() -> None:
    span = Period(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"metric": "revenue"}, "metric"),
        ({"metric": "funnel_conversion"}, "steps"),
        ({"metric": "funnel_conversion", "steps": CHECKOUT, "interval": "hour"}, "interval"),
        ({"metric": "sessions", "steps": CHECKOUT}, "steps"),
        ({"metric": "sessions", "threshold": 1.0}, "threshold"),
        ({"metric": "page_errors", "error_event": ""}, "error_event"),
        ({"metric": "page_errors", "filters": Filters(event_name=("x",))}, "event_name"),
    ]
    for kw, field in cases:
        with pytest.raises(BadParameters) as caught:
            anomalies.Params(span, **kw)
        assert field in [e.field for e in caught.value.errors], (kw, caught.value)


def test_the_find_anomalies_tool_answers_as_the_function(database_url: str, month) -> None:  # type: ignore[no-untyped-def]
    made, truth, start = month
    span = week(start, 3)
    arguments = {"metric": "funnel_conversion", "from": span.start.isoformat(),
                 "to": span.end.isoformat(), "device_type": "desktop", "threshold": 3.5,
                 "steps": [{"event_type": "form_submit", "page": "/checkout"},
                           {"event_type": "custom", "event_name": planted.GOAL_EVENT}]}
    limits = Limits(20_000, 32, 1_000, 50, 100_000)
    with ConnectionPool(as_role(database_url, ROLE_OF["reader"]), min_size=1, max_size=1,
                        kwargs={"autocommit": True}) as pool:
        got = tools.answer(Reader(pool, made.read_key, limits), "find_anomalies", arguments)
        bad = tools.answer(Reader(pool, made.read_key, limits), "find_anomalies",
                           {**arguments, "steps": "form_submit then order", "threshold": "high"})
    assert not got.is_error, got.content
    want = find(database_url, made, span, "funnel_conversion", steps=CHECKOUT,
                filters=Filters(device_type=("desktop",)))
    assert got.content["result"] == orjson.loads(orjson.dumps(want))
    assert got.content["metric"] == "find_anomalies" and got.content["population"]["sessions"] > 0
    assert [a["t"][:10] for a in got.content["result"]["anomalies"]] == [
        truth.anomalies.checkout_drop.day_from[:10]]
    assert bad.is_error and {e["field"] for e in bad.content["errors"]} == {"steps", "threshold"}
