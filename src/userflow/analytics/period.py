"""The range a question covers: `from` (inclusive) to `to` (exclusive), in a time zone.

`from` and `to` are ISO dates or datetimes. A date is midnight in the request's
zone (`tz`, an IANA name; UTC when absent), as is a datetime without an offset.
With neither given the range is the last seven days, today included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from userflow.analytics.errors import BadParameters
from userflow.events.errors import FieldError

# The longest range one question may cover: a year and a bit, enough for a
# yearly comparison, short of a scan of everything (the retention limit is 10 years).
MAX_DAYS: Final = 400
DEFAULT_DAYS: Final = 7
# Buckets in one series (an hourly series of 30 days is 720).
MAX_BUCKETS: Final = 2000

Interval = Literal["hour", "day", "week"]
INTERVALS: Final[tuple[Interval, ...]] = ("hour", "day", "week")
_STEP: Final = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive
    tz: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def days(self) -> float:
        return (self.end - self.start) / timedelta(days=1)

    def hour_aligned(self) -> bool:
        """Whether UTC hours tile this range and the zone's days: then an hourly
        rollup gives the same answer as the events (no half-hour zones, no
        bounds inside an hour)."""
        if any(b.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) != b
               for b in (self.start, self.end)):
            return False
        zone = self.zone
        day = self.start
        while day <= self.end + timedelta(days=1):
            offset = day.astimezone(zone).utcoffset() or timedelta(0)
            if offset % timedelta(hours=1):
                return False
            day += timedelta(hours=12)
        return True

    def as_json(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "tz": self.tz}


def zone_of(name: str | None) -> str:
    if name is None or name == "":
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadParameters([FieldError("tz", f"unknown IANA time zone {name[:64]!r}")]) from None
    return name


def _instant(field: str, text: str, zone: ZoneInfo) -> datetime:
    try:
        if len(text) <= 10:
            return datetime.combine(date.fromisoformat(text), time(), zone)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadParameters([FieldError(field, "not an ISO date or datetime")]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def parse(start: str | None, end: str | None, tz: str | None = None,
          max_days: int = MAX_DAYS) -> Period:
    name = zone_of(tz)
    zone = ZoneInfo(name)
    errors: list[FieldError] = []
    if end is None:
        today = datetime.now(zone).date()
        stop = datetime.combine(today + timedelta(days=1), time(), zone)
    else:
        stop = _guard(errors, "to", end, zone)
    begin = (stop - timedelta(days=DEFAULT_DAYS) if start is None
             else _guard(errors, "from", start, zone))
    if errors:
        raise BadParameters(errors)
    assert begin is not None and stop is not None
    if begin >= stop:
        raise BadParameters([FieldError("from", "must be before to")])
    if stop - begin > timedelta(days=max_days):
        raise BadParameters([FieldError("to", f"the range may cover at most {max_days} days")])
    return Period(begin.astimezone(timezone.utc), stop.astimezone(timezone.utc), name)


def _guard(errors: list[FieldError], field: str, text: str, zone: ZoneInfo) -> datetime | None:
    try:
        moment = _instant(field, text, zone)
    except BadParameters as exc:
        errors.extend(exc.errors)
        return None
    if not datetime(1970, 1, 1, tzinfo=timezone.utc) <= moment <= datetime(
            9999, 1, 1, tzinfo=timezone.utc):
        errors.append(FieldError(field, "out of range"))
        return None
    return moment


def interval_of(text: str | None, period: Period, default: Interval = "day") -> Interval:
    chosen = default if text is None else text
    if chosen not in INTERVALS:
        raise BadParameters([FieldError("interval", f"must be one of {', '.join(INTERVALS)}")])
    if period.end - period.start > _STEP[chosen] * MAX_BUCKETS:
        raise BadParameters([FieldError("interval", f"more than {MAX_BUCKETS} {chosen}s in the range")])
    return chosen  # type: ignore[return-value]
