"""The simulator's anomalies run: four weeks, the incidents where planted.py puts them, the
rest of the run as ever."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from userflow.simulate import Simulation, generate, planted
from userflow.simulate.agents import BY_UA

START = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def run() -> Simulation:
    return generate(40_000, seed=6, start=START, anomalies=True)


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def test_the_run_covers_four_weeks_and_says_what_it_planted(run: Simulation) -> None:
    truth = run.truth
    assert at(truth.window_end) - at(truth.window_start) == planted.ANOMALY_WINDOW
    assert truth.anomalies is not None
    assert at(truth.anomalies.quiet_week_from) == START + timedelta(weeks=planted.QUIET_WEEK)
    drop = truth.anomalies.checkout_drop
    assert at(drop.day_from) == START + timedelta(days=planted.CHECKOUT_DROP_DAY)
    assert drop.failed in (drop.checkouts // 2, (drop.checkouts + 1) // 2) and drop.checkouts
    assert drop.conversion_other_days == 1.0  # no checkout fails on another day
    spike = truth.anomalies.spike
    assert at(spike.hour_from) == START + timedelta(hours=planted.SPIKE_HOUR)
    assert spike.sessions > 2 * spike.sessions_same_hour_other_days


def test_a_failed_checkout_is_an_error_on_the_checkout_page_and_no_order(run: Simulation) -> None:
    drop = run.truth.anomalies.checkout_drop  # type: ignore[union-attr]
    by_session = defaultdict(list)
    for m in run.messages:
        by_session[m["context"]["sessionId"]].append(m)
    errors = [m for m in run.messages if m.get("event") == planted.ERROR_EVENT]
    assert len(errors) == drop.failed
    for e in errors:
        assert BY_UA[e["context"]["userAgent"]].device_type == planted.CHECKOUT_DROP_DEVICE
        assert e["context"]["page"]["path"] == "/checkout"
        assert at(drop.day_from) <= at(e["timestamp"]) < at(drop.day_to)
        later = [m for m in by_session[e["context"]["sessionId"]] if m["timestamp"] >= e["timestamp"]]
        assert not any(m.get("event") == planted.GOAL_EVENT for m in later)
        # Right after the checkout form was submitted.
        before = [m for m in by_session[e["context"]["sessionId"]] if m["timestamp"] < e["timestamp"]]
        assert before[-1]["event"] == "form_submit"


def test_an_anomalies_run_starts_at_a_utc_midnight() -> None:
    with pytest.raises(ValueError, match="midnight"):
        generate(100, seed=1, start=START + timedelta(hours=3), anomalies=True)
    with pytest.raises(ValueError, match="28 days"):
        generate(100, seed=1, start=datetime.now(UTC) - timedelta(days=10), anomalies=True)


def test_a_default_run_plants_no_incident() -> None:
    sim = generate(5_000, seed=6, start=START)
    assert sim.truth.anomalies is None
    assert not any(m.get("event") == planted.ERROR_EVENT for m in sim.messages)
