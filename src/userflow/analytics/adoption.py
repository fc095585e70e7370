"""Feature adoption: who of the range's active users used a feature, how soon, and how sticky the product is.

- A user is an actor (user_id, else anonymous_id); bots are left out unless
  include_bots. The common filters choose the events that count, for activity
  and for use alike; a user's first event ever is of any kind.
- Feature use: an event whose event_name or element_selector equals `feature`.
- active_users: users with an event in [from, to); adopters: those of them who
  used the feature in the range; adoption_rate = adopters / active_users (0
  when nobody was active).
- median_time_to_first_use_s: over the adopters who are new in the range
  (their first event ever lies in it, as the overview's new users), the
  seconds from that first event to their first use of the feature, which for
  them is their first use ever. Users seen before `from` are left out: their
  first use may predate the range, and finding it would mean reading their
  whole history of events. Null when there is none; the median of an even
  count is the mean of the two middle values.
- dau, wau, mau: active users of the product (any event, not the feature's).
  Over each local day (in `tz`) that [from, to) touches: the users with an
  event that day, in the 7 days ending that day, and in the 30 days ending that
  day (trailing windows, as PostHog's weekly and monthly active users, so they
  reach up to 29 days before `from`; nothing at or after `to` counts); each
  figure is the mean over those days. stickiness = dau / mau (the mean DAU over
  the mean MAU; 0 when mau is 0).

The feature's use and the first events come from the events of the range
(and of the hour of `from` before it); "no event before `from`" from
actor_hour_rollup over the tenant's whole history. The daily activity behind dau, wau and mau comes from
actor_hour_rollup when UTC hours tile its days (a zone of whole-hour offsets,
`to` on the hour) and there are no filters but include_bots, else from the
events; both give the same answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Final

from userflow.analytics import filters
from userflow.analytics.args import Args
from userflow.analytics.errors import bad
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row

# Days each trailing window reaches back beyond its own day.
_BACK: Final = {"dau": 0, "wau": 6, "mau": 29}


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    feature: str
    filters: Filters = field(default_factory=Filters)
    raw: bool = False  # read the events even where the rollup would do (tests compare both)

    def __post_init__(self) -> None:
        if not self.feature:
            raise bad("feature", "is required: an event name or an element selector")

    @property
    def local_days(self) -> tuple[date, date]:
        """The first and last local day that the range touches."""
        zone = self.period.zone
        return (self.period.start.astimezone(zone).date(),
                (self.period.end - timedelta(microseconds=1)).astimezone(zone).date())

    @property
    def lookback(self) -> Period:
        """From the local midnight 29 days before the first day: the trailing windows' reach."""
        first = datetime.combine(self.local_days[0] - timedelta(days=_BACK["mau"]), time(),
                                 self.period.zone)
        return Period(first.astimezone(timezone.utc), self.period.end, self.period.tz)

    @property
    def from_rollup(self) -> bool:
        return not self.raw and not self.filters.any and self.lookback.hour_aligned()


@dataclass(frozen=True, slots=True)
class Result:
    feature: str
    active_users: int
    adopters: int
    adoption_rate: float
    median_time_to_first_use_s: float | None
    dau: float
    wau: float
    mau: float
    stickiness: float


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    feature = a.required("feature")
    a.done()
    assert period is not None
    return Params(period, feature, chosen)


def _covered(back: int) -> str:
    """The days of [first, last] on which an actor-day row is within `back` days
    before: up to the actor's next active day, so an actor counts once a day."""
    return (f"greatest(0, least(a.next - 1, a.day + {back}, %(last_day)s)"
            f" - greatest(a.day, %(first_day)s) + 1)")


def build(p: Params) -> Query[Result]:
    f = p.filters
    first_day, last_day = p.local_days
    params: dict[str, object] = {
        "start": p.period.start, "end": p.period.end, "tz": p.period.tz, "feature": p.feature,
        "lookback": p.lookback.start, "first_day": first_day, "last_day": last_day}
    hits = filters.on_events(dataclasses.replace(f, include_bots=True), Where(params=params))
    bots = "" if f.include_bots else "AND NOT {a}.is_bot"
    if p.from_rollup:
        # From the start of the hour of `from`: the rollup says nothing of the
        # part of that hour before `from`, so those events are read here.
        scan_from = "date_trunc('hour', %(start)s::timestamptz, 'UTC')"
        daily = f"""
            SELECT DISTINCT h.actor, (h.hour AT TIME ZONE %(tz)s)::date AS day
            FROM tenant.actor_hour_rollup h
            WHERE h.hour >= %(lookback)s AND h.hour < %(end)s AND h.actor IS NOT NULL
                  {bots.format(a="h")}"""
        source = "actor_hour_rollup+events"
    else:
        scan_from = "%(lookback)s"
        daily = """
            SELECT DISTINCT r.actor, (r.at AT TIME ZONE %(tz)s)::date AS day
            FROM ranged r WHERE r.hit"""
        source = "events+actor_hour_rollup"
    statement = f"""
        WITH ranged AS MATERIALIZED (
            SELECT e.actor, e.event_timestamp AS at, ({hits.sql()}) AS hit,
                   coalesce(e.event_name = %(feature)s OR e.element_selector = %(feature)s, false)
                       AS used
            FROM tenant.events e
            WHERE e.event_timestamp >= {scan_from} AND e.event_timestamp < %(end)s
              AND e.actor IS NOT NULL {bots.format(a="e")}),
        users AS (
            SELECT r.actor, min(r.at) AS first_at, bool_or(r.hit AND r.at >= %(start)s) AS active,
                   min(r.at) FILTER (WHERE r.hit AND r.used AND r.at >= %(start)s) AS used_at
            FROM ranged r GROUP BY r.actor),
        -- Adopters new in the range: no event before `from` (the rollup before
        -- the hour of `from`, the events within it).
        new_adopters AS (
            SELECT u.used_at - u.first_at AS took FROM users u
            WHERE u.used_at IS NOT NULL AND u.first_at >= %(start)s AND NOT EXISTS (
                SELECT FROM tenant.actor_hour_rollup h
                WHERE h.actor = u.actor AND h.hour < date_trunc('hour', %(start)s::timestamptz, 'UTC')
                      {bots.format(a="h")})),
        daily AS ({daily}),
        spans AS (
            SELECT d.actor, d.day, lead(d.day) OVER (PARTITION BY d.actor ORDER BY d.day) AS next
            FROM daily d)
        SELECT
            (SELECT count(*) FILTER (WHERE active) FROM users) AS active_users,
            (SELECT count(*) FILTER (WHERE used_at IS NOT NULL) FROM users) AS adopters,
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM took))::float8
             FROM new_adopters) AS median_time_to_first_use_s,
            {", ".join(f"(SELECT coalesce(sum({_covered(back)}), 0) FROM spans a) AS {name}_days"
                       for name, back in _BACK.items())}"""
    return Query(statement, params, lambda rows: _shape(p, rows), source, p.period)


def _shape(p: Params, rows: list[Row]) -> Result:
    row = rows[0]
    first_day, last_day = p.local_days
    days = (last_day - first_day).days + 1
    active, adopters = int(row["active_users"]), int(row["adopters"])
    dau, wau, mau = (int(row[f"{name}_days"]) / days for name in _BACK)
    return Result(p.feature, active, adopters, adopters / active if active else 0.0,
                  row["median_time_to_first_use_s"], dau, wau, mau, dau / mau if mau else 0.0)
