"""Event time: parsing, Segment's clock-skew correction, and the accepted window."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final, overload

from userflow.events.errors import FieldError, InvalidEvent

# Unix times above this are milliseconds (the year 2286 in seconds).
_MILLIS_THRESHOLD = 10_000_000_000

# What nearly every client sends (JavaScript's Date.toISOString, Segment's
# libraries): UTC with a Z, whole seconds or milliseconds. Python 3.11's
# fromisoformat reads the Z itself as UTC, so this form needs none of the
# general path's rewriting and conversion.
_COMMON_FORM: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3})?Z"
)


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: None) -> None: ...
def aware(moment: datetime | None) -> datetime | None:
    """The moment with its zone; a naive one is taken as UTC, as Segment does."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def parse(value: object, field: str) -> datetime:
    """ISO-8601 text or a unix time (seconds or milliseconds) → aware UTC datetime."""
    if type(value) is str and _COMMON_FORM.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # the right shape but no such date, e.g. month 13: say so below
    return parse_general(value, field)


def parse_general(value: object, field: str) -> datetime:
    """parse() for every accepted form; parse() takes a shortcut for the common one."""
    if isinstance(value, bool):
        raise InvalidEvent([FieldError(field, "must be an ISO-8601 date-time or a unix time")])
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= _MILLIS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidEvent([FieldError(field, "unix time out of range")]) from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidEvent(
                [FieldError(field, "must be an ISO-8601 date-time, e.g. 2024-05-01T12:00:00Z")]
            ) from None
        # A time without an offset is taken as UTC, as Segment does.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise InvalidEvent([FieldError(field, "must be an ISO-8601 date-time or a unix time")])


def corrected(
    original: datetime, sent_at: datetime | None, received_at: datetime, field: str = "timestamp"
) -> datetime:
    """Segment: timestamp = receivedAt − (sentAt − originalTimestamp), when sentAt is given.

    The device clock may be wrong, but the gap between the event and the send
    is measured on that same clock, so it survives the skew.
    """
    if sent_at is None:
        return original
    try:
        return received_at - (sent_at - original)
    except OverflowError:
        raise InvalidEvent(
            [FieldError(field, "is out of range once corrected for clock skew with sentAt")]
        ) from None


@lru_cache(maxsize=64)
def _window(retention_days: int, max_future_seconds: int) -> tuple[timedelta, timedelta]:
    """(how far ahead, how far back) an event may be; built once per tenant setting, not per event."""
    return timedelta(seconds=max_future_seconds), timedelta(days=retention_days)


def check_window(
    ts: datetime, received_at: datetime, retention_days: int, max_future_seconds: int, field: str
) -> None:
    ahead, back = _window(retention_days, max_future_seconds)
    if ts - received_at > ahead:
        raise InvalidEvent(
            [FieldError(field, f"is more than {max_future_seconds} seconds in the future")]
        )
    if received_at - ts > back:
        raise InvalidEvent(
            [FieldError(field, f"is older than this company's retention of {retention_days} days")]
        )
