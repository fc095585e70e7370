"""Segment messages → Event: mapping, time correction, and field errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from userflow.events.errors import InvalidEvent
from userflow.events.receipt import Receipt
from userflow.events.segment import from_segment

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
COMPANY = uuid.UUID("00000000-0000-4000-8000-000000000001")


def receipt(**kw: object) -> Receipt:
    base = dict(company_id=COMPANY, received_at=NOW, retention_days=90, max_future_seconds=86400,
                request_ip="203.0.113.9", request_user_agent="curl/8")
    base.update(kw)
    return Receipt(**base)  # type: ignore[arg-type]


def fields_of(exc: pytest.ExceptionInfo[InvalidEvent]) -> set[str]:
    return {e.field for e in exc.value.errors}


def test_track_with_builtin_name_is_that_interaction() -> None:
    event = from_segment({
        "type": "track", "event": "click", "userId": "u1", "messageId": str(COMPANY),
        "properties": {"selector": "#buy", "text": "Buy", "x": 10.4, "y": 20, "href": "https://s/c",
                       "color": "red"},
        "context": {"sessionId": "s1", "ip": "8.8.8.8", "userAgent": "UA",
                    "page": {"url": "https://s/p?utm_source=news&utm_medium=mail"}},
    }, receipt())
    assert event.event_type == "click" and event.event_name is None
    assert (event.element_selector, event.element_text, event.target_url) == ("#buy", "Buy", "https://s/c")
    assert (event.x_coordinate, event.y_coordinate) == (10, 20)
    assert event.event_id == COMPANY
    assert event.session_id == "s1" and event.ip_address == "8.8.8.8" and event.user_agent == "UA"
    assert (event.utm_source, event.utm_medium) == ("news", "mail")
    assert event.metadata == {"color": "red"}


def test_other_track_names_are_custom_events() -> None:
    event = from_segment({"type": "track", "event": "Order Completed", "anonymousId": "a",
                          "properties": {"revenue": 12.5}}, receipt())
    assert (event.event_type, event.event_name) == ("custom", "Order Completed")
    assert event.metadata == {"revenue": 12.5}
    assert event.ip_address == "203.0.113.9"  # the request's address when context has none


def test_page_identify_group_alias() -> None:
    page = from_segment({"type": "page", "name": "Home", "userId": "u",
                         "properties": {"url": "https://s/", "title": "T", "referrer": "https://r/"}},
                        receipt())
    assert (page.event_type, page.event_name, page.page_url, page.page_title, page.referrer) == (
        "page_view", "Home", "https://s/", "T", "https://r/")
    ident = from_segment({"type": "identify", "userId": "u", "traits": {"plan": "pro"}}, receipt())
    assert ident.event_type == "identify" and ident.traits == {"plan": "pro"}
    group = from_segment({"type": "group", "userId": "u", "groupId": "g1"}, receipt())
    assert (group.event_name, group.metadata) == ("$group", {"groupId": "g1"})


def test_numeric_user_id_is_coerced_and_non_uuid_message_id_is_hashed_per_company() -> None:
    a = from_segment({"type": "track", "event": "x", "userId": 42, "messageId": "m-1"}, receipt())
    b = from_segment({"type": "track", "event": "x", "userId": 42, "messageId": "m-1"}, receipt())
    other = from_segment({"type": "track", "event": "x", "userId": 42, "messageId": "m-1"},
                         receipt(company_id=uuid.uuid4()))
    assert a.user_id == "42"
    assert a.event_id == b.event_id != other.event_id


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The device clock is an hour fast; the event happened 10 s before sending.
    event = from_segment({"type": "track", "event": "x", "userId": "u",
                          "timestamp": "2026-05-01T13:00:00Z", "sentAt": "2026-05-01T13:00:10Z"},
                         receipt())
    assert event.event_timestamp == NOW - timedelta(seconds=10)


def test_batch_sent_at_applies_when_message_has_none() -> None:
    event = from_segment({"type": "track", "event": "x", "userId": "u",
                          "timestamp": "2026-05-01T12:59:00+01:00"},
                         receipt(sent_at=datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)))
    assert event.event_timestamp == NOW - timedelta(minutes=1)


@pytest.mark.parametrize(("timestamp", "field"), [
    ("2027-05-01T12:00:00Z", "timestamp"),   # a year ahead
    ("2025-01-01T00:00:00Z", "timestamp"),   # older than retention
    ("yesterday", "timestamp"),
])
def test_time_window_and_format(timestamp: str, field: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "event": "x", "userId": "u", "timestamp": timestamp},
                     receipt())
    assert fields_of(exc) == {field}


def test_every_bad_field_is_named() -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "userId": ["no"], "properties": "no",
                      "context": {"ip": "999.1.1.1"}}, receipt())
    assert fields_of(exc) == {"event", "userId", "properties", "context.ip"}


def test_nul_bytes_are_refused_in_columns_and_properties() -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "event": "a\x00b", "userId": "u"}, receipt())
    assert fields_of(exc) == {"event"}
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "event": "e", "userId": "u",
                      "properties": {"nested": [{"k": "v\x00"}]}}, receipt(may_contain_nul=True))
    assert fields_of(exc) == {"properties.nested[0].k"}


@pytest.mark.parametrize("message", [{"type": "nope", "userId": "u"}, {"userId": "u"}, [], "x"])
def test_unknown_or_missing_type(message: object) -> None:
    with pytest.raises(InvalidEvent):
        from_segment(message, receipt())


def test_missing_identity() -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "page"}, receipt())
    assert fields_of(exc) == {"userId"}


def test_out_of_range_numbers() -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "event": "scroll", "userId": "u",
                      "properties": {"scroll_depth": 101, "x": 2**40}}, receipt())
    assert fields_of(exc) == {"properties.scroll_depth", "properties.x"}


def test_a_columns_first_name_wins_and_the_other_stays_in_metadata() -> None:
    event = from_segment({"type": "track", "event": "click", "userId": "u",
                          "properties": {"selector": "#b", "element_selector": "#a", "x": 1,
                                         "sessionId": "p", "session_id": "q"},
                          "context": {"sessionId": None}}, receipt())
    assert (event.element_selector, event.x_coordinate, event.session_id) == ("#a", 1, "p")
    assert event.metadata == {"selector": "#b", "session_id": "q"}


@pytest.mark.parametrize(("ip", "stored"), [
    ("81.2.69.142", "81.2.69.142"),
    (" 81.2.69.142\n", "81.2.69.142"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
    ("::ffff:81.2.69.142", "::ffff:5102:458e"),
])
def test_ip_addresses_are_stored_in_canonical_form(ip: str, stored: str) -> None:
    event = from_segment({"type": "track", "event": "x", "userId": "u", "context": {"ip": ip}},
                         receipt())
    assert event.ip_address == stored


@pytest.mark.parametrize("ip", ["01.2.3.4", "256.1.1.1", "1.2.3", "١.2.3.4"])
def test_ip_addresses_ipaddress_refuses_are_refused(ip: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "event": "x", "userId": "u", "context": {"ip": ip}},
                     receipt())
    assert fields_of(exc) == {"context.ip"}


@pytest.mark.parametrize("message_id", [
    str(COMPANY), str(COMPANY).upper(), COMPANY.hex, f"{{{COMPANY}}}", f"urn:uuid:{COMPANY}",
])
def test_every_form_of_a_uuid_message_id_is_that_uuid(message_id: str) -> None:
    event = from_segment({"type": "track", "event": "x", "userId": "u", "messageId": message_id},
                         receipt())
    assert event.event_id == COMPANY


@pytest.mark.parametrize(("timestamp", "expected"), [
    ("2026-05-01T11:59:00Z", datetime(2026, 5, 1, 11, 59, tzinfo=UTC)),
    ("2026-05-01T11:59:00.250Z", datetime(2026, 5, 1, 11, 59, 0, 250_000, tzinfo=UTC)),
    ("2026-05-01T11:59:00.250z", datetime(2026, 5, 1, 11, 59, 0, 250_000, tzinfo=UTC)),
    (" 2026-05-01T11:59:00Z ", datetime(2026, 5, 1, 11, 59, tzinfo=UTC)),
    ("2026-05-01T13:59:00+02:00", datetime(2026, 5, 1, 11, 59, tzinfo=UTC)),
])
def test_timestamp_forms(timestamp: str, expected: datetime) -> None:
    event = from_segment({"type": "track", "event": "x", "userId": "u", "timestamp": timestamp},
                         receipt())
    assert event.event_timestamp == expected and event.event_timestamp.tzinfo is UTC


def test_an_impossible_date_in_the_common_form_is_refused() -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "event": "x", "userId": "u",
                      "timestamp": "2026-13-01T00:00:00.000Z"}, receipt())
    assert [(e.field, e.reason) for e in exc.value.errors] == [
        ("timestamp", "must be an ISO-8601 date-time, e.g. 2024-05-01T12:00:00Z")]


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [33, 254, 300, 1000, 5000])
def test_properties_nested_too_deep_are_refused_naming_them(depth: int) -> None:
    """254+ levels used to pass the ingest and die in the consumer's encoder (bad_json)."""
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "event": "e", "userId": "u", "properties": nested(depth)},
                     receipt())
    (error,) = exc.value.errors
    assert error.field.startswith("properties.a") and "deeper than 32" in error.reason


def test_properties_32_deep_pass() -> None:
    event = from_segment({"type": "track", "event": "e", "userId": "u", "properties": nested(32)},
                         receipt())
    assert event.metadata == nested(32)


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30])
def test_integers_past_64_bits_are_refused_not_rounded(number: int) -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "track", "event": "e", "userId": "u",
                      "properties": {"order": {"id": number}}}, receipt())
    assert fields_of(exc) == {"properties.order.id"}


def test_a_traits_problem_is_named_in_traits() -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_segment({"type": "identify", "userId": "u", "traits": {"n": [1, 2**70]}}, receipt())
    assert fields_of(exc) == {"traits.n[1]"}


def test_page_path_and_search_are_dropped_as_the_url_holds_them() -> None:
    """analytics.js sends path, search and url in every page call's properties."""
    page = from_segment({"type": "page", "anonymousId": "a", "properties": {
        "path": "/pricing", "search": "?utm_source=ads", "url": "https://s/pricing?utm_source=ads",
        "title": "Pricing", "referrer": "", "section": "plans"}}, receipt())
    assert (page.page_url, page.utm_source) == ("https://s/pricing?utm_source=ads", "ads")
    assert page.metadata == {"section": "plans"}
