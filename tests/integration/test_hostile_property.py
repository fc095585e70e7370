"""The ingest's verdict is the consumer's: generated hostile events are either refused at the
ingest with a 4xx naming the field, or stored, and nothing goes to the dead-letter topic.

Hypothesis builds Segment messages from what breaks pipelines: depth, sizes, numbers past
64 bits, NUL bytes and other control characters, strings at and past each limit,
addresses with ports, zones and leading zeros, timestamps far away or malformed, wrong
types and unknown keys. Every batch goes to the running ingest over HTTP.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from userflow.events.columns import ID_MAX, NAME_MAX, TEXT_MAX, TYPE_MAX, URL_MAX

from .conftest import make_tenant
from .stack import Stack, wait_for

pytestmark = pytest.mark.services

NOW = datetime.now(UTC)
LIMITS = (ID_MAX, NAME_MAX, TEXT_MAX, TYPE_MAX, URL_MAX)

hostile_text = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(max_codepoint=0x1F), max_size=5),  # control characters, NUL among them
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ufeff", "\u202e", "☃" * 300, "💩" * 70]),
    st.sampled_from(LIMITS).flatmap(lambda n: st.sampled_from(["x" * n, "x" * (n + 1)])),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31 - 1, 2**31, -(2**31) - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
)
leaf = st.one_of(st.none(), st.booleans(), numbers, hostile_text)
json_value = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=15)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


# The property names that become columns, with anything as their value.
column_properties = st.dictionaries(
    st.sampled_from(["x", "y", "scroll_depth", "selector", "text", "tag", "href", "url", "title",
                     "referrer", "experiment_id", "variant", "session_duration_seconds",
                     "last_page_url", "path", "search"]),
    json_value, max_size=5)
properties = st.one_of(
    column_properties,
    st.dictionaries(hostile_text, json_value, max_size=5),
    st.integers(min_value=28, max_value=40).map(nested),
    json_value,  # not an object at all, often
)
timestamps = st.one_of(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2300, 1, 1),
                 timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.integers(min_value=int(NOW.timestamp()) - 200 * 86_400,
                max_value=int(NOW.timestamp()) + 3 * 86_400),
    st.sampled_from([(NOW - timedelta(days=d)).isoformat() for d in (0, 1, 30, 89, 91, 400)]),
    st.sampled_from(["2026-13-01T00:00:00Z", "yesterday", "", "2026-02-30", "9999-12-31T23:59:59Z"]),
    numbers,
)
addresses = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["1.2.3.4:5678", "[2001:db8::1]:443", "fe80::1%eth0", "010.1.1.1", "unknown",
                     "1.2.3.4/24", "::ffff:1.2.3.4", " 8.8.8.8", "256.1.1.1", "١.٢.٣.٤"]),
    hostile_text,
)
identities = st.one_of(hostile_text, numbers, st.booleans(), st.lists(st.integers(), max_size=2))
message_ids = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex.upper()),
                        hostile_text, numbers)

recent = st.integers(min_value=0, max_value=80 * 86_400).map(
    lambda back: (NOW - timedelta(seconds=back)).isoformat())


def usually(valid: Any, hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` (a value or a strategy) seven times in eight, so a message is often wrong in
    one place and not in all. Not one_of: it flattens nested one_ofs into equal branches."""
    good = valid if isinstance(valid, st.SearchStrategy) else st.just(valid)
    return st.integers(0, 7).flatmap(lambda n: hostile if n == 0 else good)


@st.composite
def mostly_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A message a real client could send, with hostile values where clients go wrong."""
    kind = draw(st.sampled_from(["track", "page", "identify", "screen"]))
    message: dict[str, Any] = {
        "type": kind,
        "userId": draw(usually("user-1", identities)),
        "messageId": draw(usually(st.uuids().map(str), message_ids)),
        "timestamp": draw(usually(recent, timestamps)),
        "context": {
            "sessionId": draw(usually("session-1", identities)),
            "ip": draw(usually("81.2.69.142", addresses)),
            "userAgent": draw(usually("Mozilla/5.0 (X11; Linux x86_64)", hostile_text)),
            "page": {"url": draw(usually("https://shop.example/p?utm_source=x", hostile_text))},
        },
        "properties": draw(usually({"plan": "pro"}, st.one_of(column_properties, properties))),
    }
    if kind == "track":
        message["event"] = draw(usually("Signed Up", st.one_of(
            st.sampled_from(["click", "scroll"]), hostile_text)))
    if kind == "identify":
        message["traits"] = draw(properties)
    return message


anything = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "track", "page", "identify", "screen", "group", "alias",
                              "bogus"])},
    optional={
        "event": st.one_of(st.sampled_from(["click", "scroll", "Order Completed"]), hostile_text),
        "userId": identities,
        "anonymousId": identities,
        "messageId": message_ids,
        "timestamp": timestamps,
        "sentAt": timestamps,
        "properties": properties,
        "traits": properties,
        "context": st.fixed_dictionaries({}, optional={
            "ip": addresses, "userAgent": hostile_text, "sessionId": identities,
            "page": st.fixed_dictionaries({}, optional={"url": hostile_text, "title": hostile_text,
                                                         "referrer": hostile_text}),
            "campaign": st.dictionaries(st.sampled_from(["source", "medium", "name"]), json_value),
        }),
        "someUnknownKey": json_value,
    },
)


def assert_stored_exactly(stack: Stack, database_url: str, company_id: uuid.UUID,
                          accepted: set[str]) -> None:
    """Every accepted event is stored, once, and nothing else; no dead letter."""
    def stored() -> tuple[int, int]:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT count(*), count(DISTINCT event_id) FROM user_events"
                                " WHERE company_id = %s", (company_id,)).fetchone()

    wait_for(lambda: stored()[1] >= len(accepted), 120,
             f"{len(accepted)} accepted events to be stored (have {stored()})")
    with psycopg.connect(database_url) as conn:
        ids = {str(r[0]) for r in conn.execute(
            "SELECT event_id FROM user_events WHERE company_id = %s", (company_id,))}
    assert ids == accepted
    assert stored() == (len(accepted), len(accepted))
    assert stack.dead_letters() == 0


def test_hostile_events_are_refused_naming_the_field_or_stored(
        stack: Stack, database_url: str) -> None:
    tenant = make_tenant(database_url, "Hostile")
    accepted: set[str] = set()
    tried = 0

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(st.one_of(mostly_valid(), mostly_valid(), anything), min_size=1, max_size=8))
    def send(batch: list[dict[str, Any]]) -> None:
        nonlocal tried
        tried += len(batch)
        # The stdlib writes integers of any size, as a client in another language would.
        body = json.dumps({"batch": batch}, ensure_ascii=False).encode()
        r = httpx.post(f"{stack.url}/v1/batch", content=body, auth=(tenant.write_key, ""),
                       headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code in (200, 400, 413), r.text
        answer = r.json()
        if r.status_code == 413:  # the whole body: too large
            assert answer["errors"] and all(e["field"] for e in answer["errors"])
            return
        for verdict in answer["results"]:
            if verdict["status"] == "accepted":
                accepted.add(verdict["event_id"])
            else:
                assert verdict["errors"], verdict
                assert all(e["field"] and e["reason"] for e in verdict["errors"]), verdict

    send()
    assert tried > 300 and accepted, (tried, len(accepted))

    assert_stored_exactly(stack, database_url, tenant.company_id, accepted)
    print(f"hostile property test: {tried} events tried, {len(accepted)} accepted and stored,"
          f" {tried - len(accepted)} refused, dead letters 0")



seed_events = st.fixed_dictionaries(
    {"event_type": usually(st.sampled_from(["click", "page_view", "scroll", "custom", "identify"]),
                           json_value),
     "user_id": usually("3", identities),
     "page_url": usually("https://shop.example/", hostile_text)},
    optional={
        "event_id": message_ids,
        "event_timestamp": usually(st.integers(int(NOW.timestamp()) - 86_400,
                                               int(NOW.timestamp())), timestamps),
        "session_id": identities, "event_name": hostile_text, "element_selector": hostile_text,
        "element_text": hostile_text, "element_type": hostile_text, "target_url": hostile_text,
        "ip_address": addresses, "user_agent": hostile_text, "x_coordinate": numbers,
        "y_coordinate": numbers, "scroll_depth": json_value, "session_duration_seconds": numbers,
        "country": hostile_text, "browser": hostile_text,
        "metadata": st.one_of(json_value, json_value.map(lambda v: json.dumps(v))),
        "traits": properties, "key_pressed": hostile_text, "form_data": json_value,
    },
)


def test_hostile_seed_events_are_refused_naming_the_field_or_stored(
        stack: Stack, database_url: str) -> None:
    """The same for the seed's /send_event, one event a request."""
    tenant = make_tenant(database_url, "Hostile seed")
    accepted: set[str] = set()
    tried = 0

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(seed_events)
    def send(event: dict[str, Any]) -> None:
        nonlocal tried
        tried += 1
        body = json.dumps(event, ensure_ascii=False).encode()
        r = httpx.post(f"{stack.url}/send_event", content=body, timeout=30,
                       headers={"Content-Type": "application/json",
                                "X-UserFlow-Key": tenant.write_key})
        assert r.status_code in (200, 400, 413), r.text
        answer = r.json()
        if r.status_code == 200:
            accepted.add(answer["event_id"])
        else:
            assert answer["errors"] and all(e["field"] and e["reason"] for e in answer["errors"])

    send()
    assert accepted

    assert_stored_exactly(stack, database_url, tenant.company_id, accepted)
    print(f"hostile seed test: {tried} events tried, {len(accepted)} accepted and stored,"
          f" {tried - len(accepted)} refused, dead letters 0")
