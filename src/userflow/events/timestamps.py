"""Event time: parsing, Segment's clock-skew correction, and the accepted window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from userflow.events.errors import FieldError, InvalidEvent

# Unix times above this are milliseconds (the year 2286 in seconds).
_MILLIS_THRESHOLD = 10_000_000_000


def parse(value: object, field: str) -> datetime:
    """ISO-8601 text or a unix time (seconds or milliseconds) → aware UTC datetime."""
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


def check_window(
    ts: datetime, received_at: datetime, retention_days: int, max_future_seconds: int, field: str
) -> None:
    if ts - received_at > timedelta(seconds=max_future_seconds):
        raise InvalidEvent(
            [FieldError(field, f"is more than {max_future_seconds} seconds in the future")]
        )
    if received_at - ts > timedelta(days=retention_days):
        raise InvalidEvent(
            [FieldError(field, f"is older than this company's retention of {retention_days} days")]
        )
