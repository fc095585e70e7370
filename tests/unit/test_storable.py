"""The storable check both sides run: what PostgreSQL or our encoder would refuse is named first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from userflow.consumer.rows import inet_binary
from userflow.events.columns import ID_MAX, URL_MAX
from userflow.events.model import Event, encode
from userflow.events.storable import JSON_MAX_DEPTH, json_problem, problem

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
    refusal = problem(e, b"\\u0000" in encode(e), DAY)
    return None if refusal is None else refusal.code


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


@pytest.mark.parametrize("ip", ["1.2.3.4:5678", "[::1]", "unknown", "010.1.1.1", " 1.2.3.4"])
def test_addresses_with_ports_zones_or_padding_are_refused(ip: str) -> None:
    assert reason(event(ip_address=ip)) == "bad_inet:ip_address"


def test_inet_binary_form() -> None:
    assert inet_binary("10.1.2.3") == bytes([2, 32, 0, 4, 10, 1, 2, 3])
    packed = inet_binary("2001:db8::1")
    assert packed is not None and packed[:4] == bytes([3, 128, 0, 16]) and len(packed) == 20


def test_indexed_text_over_the_limit() -> None:
    assert reason(event(session_id="s" * (ID_MAX + 1))) == "too_long:session_id"
    assert reason(event(session_id="s" * ID_MAX)) is None


def test_other_text_over_the_limit() -> None:
    assert reason(event(page_url="https://x/" + "a" * URL_MAX)) == "too_long:page_url"
    assert reason(event(element_type="t" * 65)) == "too_long:element_type"


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_properties_nest_at_most_the_limit() -> None:
    assert reason(event(metadata=nested(JSON_MAX_DEPTH))) is None
    assert reason(event(metadata=nested(JSON_MAX_DEPTH + 1))) == "bad_json:metadata"


def test_deep_nesting_is_walked_without_recursion() -> None:
    found = json_problem(nested(100_000), check_nul=True)
    assert found is not None and found[0] == "bad_json"


@pytest.mark.parametrize(("value", "kind", "where"), [
    ({"n": 2**64}, "bad_json", ".n"),
    ({"n": -(2**63) - 1}, "bad_json", ".n"),
    ({"list": [1, {"f": float("inf")}]}, "bad_json", ".list[1].f"),
    ({"f": float("nan")}, "bad_json", ".f"),
    ({"a": ["x", "y\x00"]}, "nul_byte", ".a[1]"),
    ({"k\x00": 1}, "nul_byte", ".<key>"),
])
def test_what_json_cannot_carry_is_named_with_its_path(
        value: dict[str, Any], kind: str, where: str) -> None:
    assert json_problem(value, check_nul=True) == (kind, where, json_problem(value, True)[2])  # type: ignore[index]


def test_64_bit_integers_fit() -> None:
    assert json_problem({"a": 2**64 - 1, "b": -(2**63), "c": 1.5, "d": None, "e": True}, True) is None


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
