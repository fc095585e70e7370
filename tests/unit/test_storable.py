"""The validation step: what PostgreSQL would refuse is named before the write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from userflow.consumer.validate import inet_binary, problem
from userflow.events.model import Event, encode

DAY = timedelta(days=1)


def event(**fields: Any) -> Event:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "company_id": uuid.uuid4(),
        "event_type": "click",
        "event_timestamp": now,
        "received_at": now,
        "user_agent": "Mozilla/5.0",
        "ip_address": "8.8.8.8",
        "x_coordinate": 10,
        "metadata": {"plan": "pro"},
    }
    return Event(**(base | fields))


def reason(e: Event) -> str | None:
    return problem(e, encode(e), DAY)


def test_a_good_event_passes() -> None:
    assert reason(event()) is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"element_text": "Buy\x00now"}, "nul_byte:element_text"),
        ({"user_id": "u\x00"}, "nul_byte:user_id"),
        ({"user_agent": "Mozilla\x00"}, "nul_byte:user_agent"),
        ({"metadata": {"a": {"b": ["ok", "bad\x00"]}}}, "nul_byte:metadata"),
        ({"traits": {"na\x00me": 1}}, "nul_byte:traits"),
    ],
)
def test_nul_bytes(fields: dict[str, Any], expected: str) -> None:
    assert reason(event(**fields)) == expected


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert reason(event(element_text="C:\\u0000")) is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"x_coordinate": 2**40}, "out_of_range:x_coordinate"),
        ({"y_coordinate": -(2**31) - 1}, "out_of_range:y_coordinate"),
        ({"session_duration_seconds": 2**31}, "out_of_range:session_duration_seconds"),
        ({"scroll_depth": 101}, "out_of_range:scroll_depth"),
        ({"scroll_depth": -1}, "out_of_range:scroll_depth"),
    ],
)
def test_numbers_out_of_their_column_range(fields: dict[str, Any], expected: str) -> None:
    assert reason(event(**fields)) == expected


def test_int4_bounds_themselves_fit() -> None:
    assert reason(event(x_coordinate=2**31 - 1, y_coordinate=-(2**31), scroll_depth=100)) is None


def test_event_type_outside_the_enum() -> None:
    assert reason(event(event_type="purchase")) == "bad_enum:event_type"


@pytest.mark.parametrize("ip", ["999.1.1.1", "1.2.3", "fe80::1%eth0", "10.0.0.0/8", "localhost"])
def test_addresses_inet_refuses(ip: str) -> None:
    assert reason(event(ip_address=ip)) == "bad_inet:ip_address"


def test_inet_binary_form() -> None:
    assert inet_binary("10.1.2.3") == bytes([2, 32, 0, 4, 10, 1, 2, 3])
    packed = inet_binary("2001:db8::1")
    assert packed is not None and packed[:4] == bytes([3, 128, 0, 16]) and len(packed) == 20


def test_indexed_text_over_the_limit() -> None:
    assert reason(event(session_id="s" * 513)) == "too_long:session_id"
    assert reason(event(session_id="s" * 512)) is None


def test_other_text_over_the_limit() -> None:
    assert reason(event(page_url="https://x/" + "a" * 70_000)) == "too_long:page_url"


def test_a_long_user_agent_is_not_refused() -> None:
    assert reason(event(user_agent="Mozilla/5.0 " + "x" * 70_000)) is None


def test_timestamps_far_from_their_receipt() -> None:
    now = datetime.now(UTC)
    assert reason(event(event_timestamp=now + 2 * DAY, received_at=now)) == (
        "out_of_range:event_timestamp"
    )
    assert reason(event(event_timestamp=datetime(1970, 1, 1, tzinfo=UTC))) == (
        "out_of_range:event_timestamp"
    )


def test_a_timestamp_without_zone_is_taken_as_utc() -> None:
    naive = datetime.now(UTC).replace(tzinfo=None)
    assert reason(event(event_timestamp=naive, received_at=naive)) is None
