"""The traffic generator: deterministic, exact, valid on the wire, and its truth file true."""

from __future__ import annotations

import ipaddress
import itertools
import re
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from userflow.events.enrich import Geo, describe_user_agent
from userflow.events.errors import InvalidEvent
from userflow.events.receipt import Receipt
from userflow.events.segment import from_segment
from userflow.simulate import Simulation, generate, planted
from userflow.simulate.agents import BOTS, BY_UA
from userflow.simulate.countries import country_of
from userflow.simulate.messages import event_type

START = datetime(2026, 3, 2, tzinfo=UTC)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
INTERACTION_PROPS = {
    "click": {"element_selector", "element_text", "element_type", "x", "y"},
    "hover": {"element_selector", "element_text", "element_type", "x", "y"},
    "scroll": {"scroll_depth"},
    "keydown": {"element_selector", "element_type", "key"},
    "form_submit": {"form_id"},
}
BOT_UAS = {a.ua for a in BOTS}


@pytest.fixture(scope="module")
def small() -> Simulation:
    return generate(4_000, seed=5, start=START)


@pytest.fixture(scope="module")
def big() -> Simulation:
    return generate(50_000, seed=11, start=START)


def ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def test_same_seed_gives_the_same_messages_and_truth() -> None:
    a, b = generate(1_500, seed=42, start=START), generate(1_500, seed=42, start=START)
    assert orjson.dumps(a.messages) == orjson.dumps(b.messages)
    assert a.truth == b.truth


def test_another_seed_gives_other_messages() -> None:
    a, b = generate(1_500, seed=1, start=START), generate(1_500, seed=2, start=START)
    assert {m["messageId"] for m in a.messages}.isdisjoint(m["messageId"] for m in b.messages)
    assert a.truth.events.by_type != b.truth.events.by_type


@pytest.mark.parametrize("n", [0, 1, 2, 19, 20, 21, 101, 2_345])
def test_exactly_n_messages(n: int) -> None:
    sim = generate(n, seed=n, start=START)
    assert len(sim.messages) == n == sim.truth.n == sim.truth.events.total


def test_every_message_follows_the_wire_format(small: Simulation) -> None:
    ids = [m["messageId"] for m in small.messages]
    assert len(set(ids)) == len(ids)
    for m in small.messages:
        assert uuid.UUID(m["messageId"]).version == 4
        assert m["type"] in ("page", "track", "identify")
        assert isinstance(m["anonymousId"], str) and m["anonymousId"]
        assert ISO_Z.match(m["timestamp"])
        ctx = m["context"]
        assert (
            {"userAgent", "ip", "sessionId", "page", "library"}
            <= ctx.keys()
            <= {"userAgent", "ip", "sessionId", "page", "library", "campaign"}
        )
        assert ctx["library"] == {"name": "userflow-simulate", "version": "1"}
        assert ctx["page"].keys() == {"url", "path", "referrer", "title"}
        assert ctx["page"]["url"].startswith("https://") and ctx["page"]["path"].startswith("/")
        if "campaign" in ctx:
            assert (
                {"source", "medium", "name"}
                <= ctx["campaign"].keys()
                <= {"source", "medium", "name", "term", "content"}
            )
        if m["type"] == "page":
            assert m["name"] and {"url", "path", "referrer", "title"} <= m["properties"].keys()
        elif m["type"] == "identify":
            assert m["userId"] and "email" in m["traits"]
        elif m["event"] in INTERACTION_PROPS:
            assert INTERACTION_PROPS[m["event"]] <= m["properties"].keys()
            if m["event"] == "scroll":
                assert 0 <= m["properties"]["scroll_depth"] <= 100
        if m["type"] == "track" and m["event"] == "Experiment Viewed":
            assert m["properties"]["experiment_id"] == planted.EXPERIMENT_ID
            assert m["properties"]["variant"] in (planted.CONTROL, planted.TREATMENT)
        if m["type"] == "track" and m["event"] == "click" and "target_url" in m["properties"]:
            assert m["properties"]["element_type"] == "a"


def test_the_ingest_normaliser_accepts_every_message(small: Simulation) -> None:
    receipt = Receipt(
        uuid.uuid4(), datetime.now(UTC), retention_days=3650, max_future_seconds=86_400
    )
    for m in small.messages:
        try:
            event = from_segment(m, receipt)
        except InvalidEvent as bad:  # pragma: no cover - the message says which field
            pytest.fail(f"{bad.errors} in {m}")
        assert event.event_type == event_type(m)
        assert str(event.event_id) == m["messageId"]


def test_agents_and_addresses_mean_to_the_ingest_what_the_truth_says(small: Simulation) -> None:
    for ua, agent in BY_UA.items():
        assert describe_user_agent(ua).device_type == agent.device_type, ua
    geo = Geo()
    for ip in {m["context"]["ip"] for m in small.messages}:
        assert ipaddress.ip_address(ip).is_global
        assert geo.locate(ip).country == country_of(ip), ip


def test_time_runs_forward_inside_the_window() -> None:
    sim = generate(300, seed=3)  # the default window: the 7 days ending now
    now = datetime.now(UTC)
    assert all(datetime.fromisoformat(m["timestamp"]) <= now for m in sim.messages)
    assert datetime.fromisoformat(sim.truth.window_start) >= now - timedelta(days=7, minutes=1)


def test_sessions_are_ordered_and_separated_by_the_timeout(small: Simulation) -> None:
    times = [ms(m["timestamp"]) for m in small.messages]
    assert times == sorted(times)
    lo, hi = ms(small.truth.window_start), ms(small.truth.window_end)
    assert lo <= times[0] and times[-1] <= hi
    by_visitor: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
    for t, m in zip(times, small.messages, strict=True):
        by_visitor[m["anonymousId"]].append((t, m["context"]["sessionId"]))
    for events in by_visitor.values():
        for (t0, s0), (t1, s1) in itertools.pairwise(events):
            assert t1 > t0
            if s0 == s1:
                assert t1 - t0 < 30 * 60_000
            else:
                assert t1 - t0 >= 30 * 60_000
    sessions = Counter(m["context"]["sessionId"] for m in small.messages)
    assert len({(m["context"]["sessionId"], m["anonymousId"]) for m in small.messages}) == len(
        sessions
    )


def test_a_user_id_once_seen_stays_and_belongs_to_one_visitor(small: Simulation) -> None:
    user_of: dict[str, str] = {}
    visitor_of: dict[str, str] = {}
    for m in small.messages:
        anonymous, user = m["anonymousId"], m.get("userId")
        if anonymous in user_of:
            assert user == user_of[anonymous], "userId vanished or changed"
        if user is not None:
            user_of[anonymous] = user
            assert visitor_of.setdefault(user, anonymous) == anonymous
    assert small.truth.events.by_type.get("identify", 0) > 0


def recount(sim: Simulation) -> dict[str, Any]:
    """The truth's figures counted again, the plain way."""
    humans = [m for m in sim.messages if m["context"]["userAgent"] not in BOT_UAS]
    actor = [m.get("userId") or m["anonymousId"] for m in humans]
    kinds = [event_type(m) for m in humans]
    pages: Counter[str] = Counter()
    engaged: set[str] = set()
    for m, kind in zip(humans, kinds, strict=True):
        pages[m["context"]["sessionId"]] += kind == "page_view"
        if kind in ("click", "form_submit", "custom"):
            engaged.add(m["context"]["sessionId"])
    first_exposure: dict[str, tuple[str, str]] = {}
    for m, a in zip(humans, actor, strict=True):
        props = m.get("properties") or {}
        if props.get("experiment_id") == planted.EXPERIMENT_ID and a not in first_exposure:
            first_exposure[a] = (m["timestamp"], props["variant"])
    converted = {
        a
        for m, a in zip(humans, actor, strict=True)
        if m.get("event") == planted.GOAL_EVENT
        and a in first_exposure
        and m["timestamp"] > first_exposure[a][0]
    }
    adopters = {
        a
        for m, a in zip(humans, actor, strict=True)
        if m.get("event") == planted.FEATURE_EVENT and m["properties"]["feature"] == planted.FEATURE
    }
    step1 = {
        a
        for m, a, k in zip(humans, actor, kinds, strict=True)
        if k == "page_view" and m["context"]["page"]["path"] == "/products"
    }
    return {
        "by_type": Counter(event_type(m) for m in sim.messages),
        "by_country": Counter(country_of(m["context"]["ip"]) for m in sim.messages),
        "human_by_device": Counter(BY_UA[m["context"]["userAgent"]].device_type for m in humans),
        "bot_events": len(sim.messages) - len(humans),
        "users": len(set(actor)),
        "sessions": len(pages),
        "bounced": sum(1 for s, n in pages.items() if n == 1 and s not in engaged),
        "exposed": Counter(v for _, v in first_exposure.values()),
        "converted": Counter(first_exposure[a][1] for a in converted),
        "adopters": len(adopters),
        "step1": len(step1),
        "first": min(m["timestamp"] for m in sim.messages),
        "last": max(m["timestamp"] for m in sim.messages),
    }


def test_truth_agrees_with_a_plain_recount(small: Simulation) -> None:
    truth, again = small.truth, recount(small)
    assert {k: v for k, v in truth.events.by_type.items() if v} == dict(again["by_type"])
    assert truth.events.by_country == dict(again["by_country"])
    assert truth.human_events.by_device_type == dict(again["human_by_device"])
    assert (
        truth.bots.events
        == again["bot_events"]
        == sum(truth.events.by_type.values()) - truth.human_events.total
    )
    assert truth.users.humans == again["users"] == truth.feature_adoption.active_users
    assert truth.sessions.total == again["sessions"]
    assert truth.sessions.bounced == again["bounced"]
    assert truth.sessions.bounce_rate == pytest.approx(
        again["bounced"] / again["sessions"], abs=1e-6
    )
    for variant in (planted.CONTROL, planted.TREATMENT):
        assert truth.experiment.variants[variant].exposed == again["exposed"][variant]
        assert truth.experiment.variants[variant].converted == again["converted"][variant]
    assert truth.feature_adoption.adopters == again["adopters"]
    assert truth.funnel.counts[0] == again["step1"]
    assert truth.funnel.counts == sorted(truth.funnel.counts, reverse=True)
    for step, count in enumerate(truth.funnel.counts):
        assert count == sum(
            by_device[step] for by_device in truth.funnel.counts_by_device_type.values()
        )
    assert (truth.first_timestamp, truth.last_timestamp) == (again["first"], again["last"])


def test_truth_json_holds_the_figures(small: Simulation) -> None:
    data = orjson.loads(small.truth.to_json())
    assert {
        "seed",
        "n",
        "events",
        "human_events",
        "users",
        "sessions",
        "bots",
        "funnel",
        "experiment",
        "feature_adoption",
        "first_timestamp",
        "last_timestamp",
    } <= data.keys()
    assert data["seed"] == 5 and data["n"] == 4_000
    assert data["funnel"]["steps"][0] == {
        "event_type": "page_view",
        "path": "/products",
        "event_name": None,
    }


def test_the_planted_lift_shows_in_the_truth(big: Simulation) -> None:
    exp = big.truth.experiment
    control, treatment = exp.variants[planted.CONTROL], exp.variants[planted.TREATMENT]
    assert control.rate == pytest.approx(0.10, abs=0.015)
    assert treatment.rate == pytest.approx(0.13, abs=0.015)
    assert exp.lift_absolute == pytest.approx(0.03, abs=0.015)
    # 50/50 split: no sample-ratio mismatch beyond chance.
    assert (
        abs(control.exposed - treatment.exposed) < 4 * (control.exposed + treatment.exposed) ** 0.5
    )


def test_mobile_converts_markedly_worse_than_desktop(big: Simulation) -> None:
    funnel = big.truth.funnel
    assert (
        funnel.conversion_by_device_type["mobile"]
        < 0.75 * funnel.conversion_by_device_type["desktop"]
    )
    mobile, desktop = (
        funnel.counts_by_device_type["mobile"],
        funnel.counts_by_device_type["desktop"],
    )
    assert mobile[1] / mobile[0] < desktop[1] / desktop[0]


def test_the_traffic_looks_like_a_real_week(big: Simulation) -> None:
    truth = big.truth
    assert truth.bots.share == pytest.approx(planted.BOT_SHARE, abs=0.001)
    assert 1_500 <= truth.users.humans <= 3_000  # about one user per 25 events
    assert 0.15 <= truth.sessions.bounce_rate <= 0.5
    assert len(truth.events.by_country) == 9
    assert set(truth.human_events.by_device_type) == {"desktop", "mobile", "tablet"}
    assert 0.10 <= truth.feature_adoption.rate <= 0.30
    days: defaultdict[str, set[str]] = defaultdict(set)
    campaigns = 0
    for m in big.messages:
        days[m["anonymousId"]].add(m["timestamp"][:10])
        campaigns += "campaign" in m["context"]
    returning = sum(1 for d in days.values() if len(d) >= 2)
    assert returning > 0.2 * len(days)
    assert 0.02 < campaigns / len(big.messages) < 0.3


def test_start_must_be_aware_and_leave_the_window_in_the_past() -> None:
    with pytest.raises(ValueError):
        generate(10, seed=1, start=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        generate(10, seed=1, start=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(ValueError):
        generate(-1, seed=1, start=START)
