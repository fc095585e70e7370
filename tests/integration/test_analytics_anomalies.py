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
    for device in DEVICES:
        got = find(database_url, made, week(start, 3), "funnel_conversion", steps=CHECKOUT,
                   filters=Filters(device_type=(device,)))
        print(device, [(a.t, round(a.robust_z, 2), a.actual, a.n) for a in got.anomalies])
        print(sorted(((round(p.robust_z, 2), p.t) for p in got.series if p.judged and p.robust_z is not None))[:3])
    got = find(database_url, made, week(start, 3), "funnel_conversion", steps=CHECKOUT)
    print("all", [(a.t, round(a.robust_z, 2), a.actual, a.n) for a in got.anomalies], drop)


def test_the_spike_hour_is_found(database_url: str, month) -> None:  # type: ignore[no-untyped-def]
    made, truth, start = month
    for metric in ("sessions", "events"):
        for interval in ("hour", "day"):
            got = find(database_url, made, week(start, 3), metric, interval)
            print(metric, interval, [(a.t, round(a.robust_z, 2), a.actual, round(a.expected)) for a in got.anomalies])
    print(truth.anomalies.spike)


def test_nothing_in_the_quiet_week(database_url: str, month) -> None:  # type: ignore[no-untyped-def]
    made, truth, start = month
    quiet = week(start, planted.QUIET_WEEK)
    for metric in ("events", "sessions", "bounce_rate", "page_errors"):
        for interval in ("day", "hour"):
            for f in [Filters()] + [Filters(device_type=(d,)) for d in DEVICES]:
                got = find(database_url, made, quiet, metric, interval, filters=f)
                top = max((abs(p.robust_z) for p in got.series if p.judged and p.robust_z is not None), default=None)
                print(metric, interval, f.device_type, got.enough_history, len(got.anomalies), top and round(top, 2))
    for steps in (CHECKOUT, SHOP):
        for f in [Filters()] + [Filters(device_type=(d,)) for d in DEVICES]:
            got = find(database_url, made, quiet, "funnel_conversion", steps=steps, filters=f)
            top = max((abs(p.robust_z) for p in got.series if p.judged and p.robust_z is not None), default=None)
            print("funnel", len(steps), f.device_type, len(got.anomalies), top and round(top, 2))
