"""Reading bodies: gzip exactly (no trailing garbage, no truncation), numbers exactly."""

from __future__ import annotations

import gzip

import pytest

from userflow.ingest.body import _exact, _gunzip
from userflow.ingest.errors import BadRequest, PayloadTooLarge

BODY = b'{"batch": [{"type": "page", "userId": "u"}]}'


def test_gzip_round_trip() -> None:
    assert _gunzip(gzip.compress(BODY), 1024) == BODY


def test_several_gzip_members_are_one_body() -> None:
    """RFC 1952: a gzip file may be several members, one after the other."""
    half = len(BODY) // 2
    assert _gunzip(gzip.compress(BODY[:half]) + gzip.compress(BODY[half:]), 1024) == BODY


@pytest.mark.parametrize("tail", [b"garbage", b"\x00", b"{}"])
def test_data_after_the_gzip_stream_is_refused(tail: bytes) -> None:
    with pytest.raises(BadRequest) as exc:
        _gunzip(gzip.compress(BODY) + tail, 1024)
    assert exc.value.errors[0].reason == "trailing data after the gzip stream"


def test_a_truncated_gzip_stream_is_refused() -> None:
    with pytest.raises(BadRequest) as exc:
        _gunzip(gzip.compress(BODY)[:-6], 1024)
    assert exc.value.errors[0].reason == "truncated gzip stream"


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        _gunzip(gzip.compress(b" " * 10_000_000), 500 * 1024)
    with pytest.raises(PayloadTooLarge):
        _gunzip(gzip.compress(b" " * 600) * 1000, 500 * 1024)


def test_large_integers_are_read_exactly() -> None:
    assert _exact(b'{"n": 18446744073709551616, "m": -9223372036854775809}') == {
        "n": 2**64, "m": -(2**63) - 1}


def test_nan_and_infinity_are_no_json_numbers() -> None:
    with pytest.raises(ValueError, match="NaN"):
        _exact(b'{"n": NaN}')
