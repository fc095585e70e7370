"""The seed's /send_event payload → Event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from userflow.events.errors import InvalidEvent
from userflow.events.receipt import Receipt
from userflow.events.seed import from_seed

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
R = Receipt(company_id=uuid.uuid4(), received_at=NOW, retention_days=90, max_future_seconds=86400,
            request_ip="203.0.113.1", request_user_agent="python-requests/2")


def seed_payload(**overrides: object) -> dict[str, object]:
    """What the seed's client.py sends for a scroll event."""
    payload: dict[str, object] = {
        "event_id": str(uuid.uuid4()), "event_timestamp": int(NOW.timestamp()) - 5,
        "user_id": "3", "session_id": str(uuid.uuid4()), "company_id": "new_company1",
        "event_type": "scroll", "page_url": "https://example.com/home",
        "element_selector": None, "element_text": None, "element_type": None,
        "target_url": None, "last_page_url": None,
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "ip_address": "192.168.1.7",
        "device_type": "Mobile", "browser": "Chrome", "os": "Windows", "country": "USA",
        "city": "Berlin", "region": "Europe", "x_coordinate": 0, "y_coordinate": 0,
        "session_duration_seconds": 600, "metadata": '{"custom_data": "value"}', "scroll_depth": 40,
    }
    payload.update(overrides)
    return payload


def test_the_seed_clients_payload_maps_field_by_field() -> None:
    payload = seed_payload(key_pressed="Enter")
    event = from_seed(payload, R)
    assert str(event.event_id) == payload["event_id"]
    assert event.event_timestamp == datetime.fromtimestamp(payload["event_timestamp"], UTC)
    assert (event.user_id, event.event_type, event.page_url) == ("3", "scroll", "https://example.com/home")
    assert (event.device_type, event.browser, event.os, event.country) == ("Mobile", "Chrome", "Windows", "USA")
    assert (event.ip_address, event.scroll_depth, event.session_duration_seconds) == ("192.168.1.7", 40, 600)
    assert event.metadata == {"custom_data": "value", "key_pressed": "Enter"}
    assert event.company_id == R.company_id  # the key's company, whatever the body says


def test_defaults_from_the_request() -> None:
    event = from_seed(seed_payload(user_agent=None, ip_address=None, event_timestamp=None), R)
    assert (event.user_agent, event.ip_address, event.event_timestamp) == (
        "python-requests/2", "203.0.113.1", NOW)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"event_type": "teleport"}, "event_type"),
    ({"user_id": None}, "user_id"),
    ({"event_timestamp": int(NOW.timestamp()) + 400 * 86400}, "event_timestamp"),
    ({"metadata": "not json"}, "metadata"),
    ({"x_coordinate": "left"}, "x_coordinate"),
    ({"page_url": "a\x00b"}, "page_url"),
    ({"browser": ["Chrome"]}, "browser"),
    ({"utm_source": "a\x00"}, "utm_source"),
])
def test_bad_fields(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_seed(seed_payload(**overrides), R)
    assert field in {e.field for e in exc.value.errors}


def test_fields_without_a_column_join_metadata_in_the_order_sent() -> None:
    event = from_seed(seed_payload(form_id="signup", key_pressed="Enter"), R)
    assert list(event.metadata.items()) == [  # type: ignore[union-attr]
        ("custom_data", "value"), ("form_id", "signup"), ("key_pressed", "Enter")]


def test_null_and_missing_fields_stay_empty_and_long_text_is_cut() -> None:
    event = from_seed(seed_payload(element_text=None, utm_source=None, utm_term="t" * 300), R)
    assert (event.element_text, event.utm_source, event.referrer) == (None, None, None)
    assert event.utm_term == "t" * 256


@pytest.mark.parametrize("page_url", [None, ""])
def test_the_seeds_interactions_need_a_page_url(page_url: object) -> None:
    """The seed's table holds page_url NOT NULL; its clients always send one."""
    with pytest.raises(InvalidEvent) as exc:
        from_seed(seed_payload(page_url=page_url), R)
    assert {e.field for e in exc.value.errors} == {"page_url"}


def test_our_own_types_need_no_page() -> None:
    event = from_seed(seed_payload(event_type="identify", page_url=None), R)
    assert event.page_url is None


@pytest.mark.parametrize("event_type", [{}, [], None, 3])
def test_an_event_type_of_the_wrong_type_is_a_field_error(event_type: object) -> None:
    with pytest.raises(InvalidEvent) as exc:
        from_seed(seed_payload(event_type=event_type, page_url=""), R)
    assert "event_type" in {e.field for e in exc.value.errors}
