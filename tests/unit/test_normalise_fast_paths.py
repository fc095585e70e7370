"""Every shortcut the normalisers take for the common case agrees with the general code.

Each property test feeds generated values, common and odd, to the shortcut and
to the general path it skips, and requires the same answer and the same errors.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from userflow.events import addresses, timestamps
from userflow.events.errors import FieldError, InvalidEvent
from userflow.events.columns import ID_MAX, INT4_MAX, INT4_MIN, TEXT_MAX, URL_MAX
from userflow.events.fields import Collector, parse_uuid
from userflow.events.segment import _DROPPED, _PROPERTY_COLUMNS, _split_properties

MANY = settings(max_examples=400, deadline=None)

# Strings around the limits and with the characters the checks look for.
tricky_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "a\x00b", "x" * 64, "x" * 65, "x" * ID_MAX, "x" * (ID_MAX + 1),
                     "x" * TEXT_MAX, "x" * (TEXT_MAX + 1), "x" * URL_MAX, "x" * (URL_MAX + 1)]),
)
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True), tricky_text,
)
any_value = st.one_of(json_scalar, st.lists(json_scalar, max_size=2),
                      st.dictionaries(st.text(max_size=3), json_scalar, max_size=2))


def outcome(check: Any, *args: Any) -> tuple[Any, list[FieldError]]:
    """What a Collector check returns, with the errors it collected."""
    c = Collector()
    return check(c, *args), c.errors


@MANY
@given(any_value, st.sampled_from([64, 256, TEXT_MAX, URL_MAX]), st.booleans())
def test_text(value: Any, limit: int, cut: bool) -> None:
    assert outcome(Collector.text, value, "f", limit, cut) == outcome(
        Collector._any_text, value, "f", limit, cut)


@MANY
@given(any_value)
def test_identifier(value: Any) -> None:
    assert outcome(Collector.identifier, value, "f") == outcome(
        Collector._any_identifier, value, "f")


@MANY
@given(st.one_of(any_value, st.integers(min_value=-5, max_value=105),
                 st.sampled_from([INT4_MIN - 1, INT4_MIN, INT4_MAX, INT4_MAX + 1])),
       st.sampled_from([(INT4_MIN, INT4_MAX), (0, 100), (0, INT4_MAX)]))
def test_integer(value: Any, bounds: tuple[int, int]) -> None:
    low, high = bounds
    assert outcome(Collector.integer, value, "f", low, high) == outcome(
        Collector._any_integer, value, "f", low, high)


ip_like = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda ip: ip.exploded.upper()),
    # Dotted quads with leading zeros, octets over 255 and too many digits.
    st.lists(st.integers(min_value=0, max_value=999).map(str) | st.from_regex(r"0[0-9]{1,2}", fullmatch=True),
             min_size=3, max_size=5).map(".".join),
    st.sampled_from([" 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "١.2.3.4", "1.2.3.4/32", "::ffff:1.2.3.4",
                     "0.0.0.0", "255.255.255.255", "256.1.1.1", "not-an-ip"]),
    any_value,
)


@MANY
@given(ip_like)
def test_ip(value: Any) -> None:
    if isinstance(value, str):
        assert addresses.canonical_ip(value) == addresses._parse(value)


@MANY
@given(ip_like)
def test_ip_addresses_keep_their_canonical_form(value: Any) -> None:
    result, errors = outcome(Collector.ip, value, "f")
    if result is not None:
        assert result == str(ipaddress.ip_address(value.strip())) and not errors
        assert "%" not in result and "/" not in result


def uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@MANY
@given(st.one_of(
    st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: f"{{{u}}}"), st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.uuids().map(lambda u: f" {u}"), st.uuids().map(lambda u: u.hex[:12] + "-" + u.hex[12:]),
    st.from_regex(r"[0-9a-fA-F-]{30,38}", fullmatch=True), st.text(max_size=40),
))
def test_uuid(text: str) -> None:
    parsed = parse_uuid(text)
    assert parsed == uuid_or_none(text)
    assert parsed is None or type(parsed) is uuid.UUID


def parsed_time(parse: Any, value: Any) -> datetime | list[FieldError]:
    try:
        return parse(value, "timestamp")
    except InvalidEvent as bad:
        return bad.errors


common_form = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).flatmap(
    lambda d: st.sampled_from([d.strftime("%Y-%m-%dT%H:%M:%SZ"),
                               d.isoformat(timespec="milliseconds") + "Z"]))


@MANY
@given(st.one_of(
    common_form,
    # The common shape with impossible fields (month 13, hour 24, …).
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?[Zz]?",
                  fullmatch=True),
    common_form.map(lambda s: f" {s}"), common_form.map(lambda s: s.replace("Z", "+02:00")),
    common_form.map(lambda s: s[:-1]), common_form.map(lambda s: s.replace("T", " ")),
    json_scalar,
))
def test_timestamps(value: Any) -> None:
    fast, general = parsed_time(timestamps.parse, value), parsed_time(timestamps.parse_general, value)
    assert fast == general
    if isinstance(fast, datetime):
        assert fast.tzinfo is UTC and general.tzinfo is UTC  # type: ignore[union-attr]


def split_by_picking(props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plain reading of _PROPERTY_COLUMNS: per column, take the first of its names present;
    drop _DROPPED."""
    columns, used = {}, set()
    for column, names in _PROPERTY_COLUMNS.items():
        for name in names:
            if name in props:
                columns[column] = props[name]
                used.add(name)
                break
    return columns, {k: v for k, v in props.items() if k not in used | _DROPPED}


property_names = st.sampled_from(
    [name for names in _PROPERTY_COLUMNS.values() for name in names] + [*_DROPPED, "color",
                                                                        "revenue"])


@MANY
@given(st.dictionaries(property_names, json_scalar, max_size=10))
def test_property_split(props: dict[str, Any]) -> None:
    columns, rest = _split_properties(props)
    expected_columns, expected_rest = split_by_picking(props)
    assert columns == expected_columns
    assert list(rest.items()) == list(expected_rest.items())  # the client's order, too
