"""Retention: of the users who first came in a period, how many came back in each later one.

- A user is an actor (user_id, else anonymous_id); bots are left out unless
  include_bots (a bot's events count neither as a first event nor as a return).
- A user's cohort is the period (a day, or an ISO week starting on Monday, in
  the request's zone `tz`) of their first event EVER, not their first in the
  range: a user seen before `from` is in no cohort.
- The cohorts are the periods that [from, to) touches, each holding the users
  whose first event lies in it and in [from, to) (the first and the last
  cohort are partial when `from` or `to` is not on a period's boundary), empty
  ones included (without filters the sizes add up to the overview's new users).
- retained[n] counts the cohort's users with an event in the n-th period after
  the cohort's own and before `to`; retained[0] = size. A cohort's list runs to
  the last period that has begun before `to` (the triangle: the last column of
  each row may be a period still in progress, as PostHog's and Amplitude's
  current period), and holds at most `periods` entries, n0 included: by
  default 31 for days (day 0 to day 30, a month) and 12 for weeks (a quarter),
  at most 92 days or 53 weeks.
- Filters choose the events that count: a user is in their cohort when they
  have a matching event in its period, and retained in period n when they have
  a matching event in it. The first event ever is of any kind (filters choose
  whom, not when), as the overview's new users.

Served by actor_hour_rollup when UTC hours tile the question (bounds on the
hour, a zone of whole-hour offsets, whose local days and weeks are then whole
UTC hours) and no filters but include_bots; by the events otherwise, with the
same answer. Either way "no event before `from`" is looked up in
actor_hour_rollup over the tenant's whole history (small: a row per actor and
hour), and the events are read only for [the hour of `from`, `to`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from userflow.analytics import filters
from userflow.analytics.args import Args
from userflow.analytics.errors import bad
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row

Interval = Literal["day", "week"]
INTERVALS: Final[tuple[Interval, ...]] = ("day", "week")
DEFAULT_PERIODS: Final[dict[Interval, int]] = {"day": 31, "week": 12}
MAX_PERIODS: Final[dict[Interval, int]] = {"day": 92, "week": 53}
_DAYS: Final[dict[Interval, int]] = {"day": 1, "week": 7}
# The local date of the period an instant falls in (ISO weeks: PostgreSQL's
# date_trunc('week') is Monday).
_PERIOD_OF: Final[dict[Interval, str]] = {
    "day": "(({at}) AT TIME ZONE %(tz)s)::date",
    "week": "date_trunc('week', ({at}) AT TIME ZONE %(tz)s)::date",
}


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    interval: Interval = "day"
    filters: Filters = field(default_factory=Filters)
    periods: int | None = None  # entries of `retained` at most, n0 included; None: the default
    raw: bool = False  # read the events even where the rollup would do (tests compare both)

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise bad("interval", "must be one of " + ", ".join(INTERVALS))
        if self.periods is not None and not 1 <= self.periods <= MAX_PERIODS[self.interval]:
            raise bad("periods", f"must be between 1 and {MAX_PERIODS[self.interval]}"
                                 f" for {self.interval}s")

    @property
    def span(self) -> int:
        return DEFAULT_PERIODS[self.interval] if self.periods is None else self.periods

    @property
    def from_rollup(self) -> bool:
        return not self.raw and not self.filters.any and self.period.hour_aligned()


@dataclass(frozen=True, slots=True)
class Cohort:
    cohort: str  # ISO date: the period's first local day
    size: int
    retained: list[int]


@dataclass(frozen=True, slots=True)
class Result:
    interval: str
    cohorts: list[Cohort]


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    interval = a.choice("interval", INTERVALS, "day")
    periods = a.integer("periods", DEFAULT_PERIODS[interval], 1, MAX_PERIODS[interval])
    a.done()
    assert period is not None
    return Params(period, interval, chosen, periods)


def build(p: Params) -> Query[Result]:
    f = p.filters
    params: dict[str, object] = {"start": p.period.start, "end": p.period.end, "tz": p.period.tz,
                                 "step": _DAYS[p.interval], "span": p.span}
    bots = "" if f.include_bots else "AND NOT {a}.is_bot"
    if p.from_rollup:
        ranged = f"""
            SELECT h.actor, h.hour AS at, true AS hit FROM tenant.actor_hour_rollup h
            WHERE h.hour >= %(start)s AND h.hour < %(end)s AND h.actor IS NOT NULL
                  {bots.format(a="h")}"""
        source = "actor_hour_rollup"
    else:
        # From the start of the hour of `from`: the rollup's hours say nothing of
        # the part of that hour before `from`, so those events are read here.
        hits = filters.on_events(dataclasses.replace(f, include_bots=True), Where(params=params))
        ranged = f"""
            SELECT e.actor, e.event_timestamp AS at, ({hits.sql()}) AS hit FROM tenant.events e
            WHERE e.event_timestamp >= date_trunc('hour', %(start)s::timestamptz, 'UTC')
              AND e.event_timestamp < %(end)s AND e.actor IS NOT NULL {bots.format(a="e")}"""
        source = "events+actor_hour_rollup"
    statement = f"""
        -- Each user's periods: when they were first seen in it, and whether a
        -- matching event of the range falls in it.
        WITH periods AS MATERIALIZED (
            SELECT r.actor, {_PERIOD_OF[p.interval].format(at="r.at")} AS active,
                   min(r.at) AS first_at, bool_or(r.hit AND r.at >= %(start)s) AS hit
            FROM ({ranged}) r GROUP BY 1, 2),
        -- Users whose first event ever lies in [from, to): none before `from`
        -- (the rollup before the hour of `from`, the events within it).
        firsts AS (
            SELECT x.actor, min(x.active) AS cohort FROM periods x GROUP BY x.actor
            HAVING min(x.first_at) >= %(start)s AND NOT EXISTS (
                SELECT FROM tenant.actor_hour_rollup h
                WHERE h.actor = x.actor AND h.hour < date_trunc('hour', %(start)s::timestamptz, 'UTC')
                      {bots.format(a="h")})),
        cells AS (
            SELECT f.cohort, (x.active - f.cohort) / %(step)s AS n,
                   bool_or(x.active = f.cohort) OVER (PARTITION BY x.actor) AS member
            FROM firsts f JOIN periods x ON x.actor = f.actor WHERE x.hit)
        SELECT cohort, n, count(*) AS users FROM cells
        WHERE member AND n < %(span)s
        GROUP BY cohort, n ORDER BY cohort, n"""
    return Query(statement, params, lambda rows: _shape(p, rows), source, p.period)


def _period_start(day: date, interval: Interval) -> date:
    return day - timedelta(days=day.weekday()) if interval == "week" else day


def _begins(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone)


def _shape(p: Params, rows: list[Row]) -> Result:
    counts = {(r["cohort"], int(r["n"])): int(r["users"]) for r in rows}
    zone, end = p.period.zone, p.period.end
    step = timedelta(days=_DAYS[p.interval])
    cohorts: list[Cohort] = []
    cohort = _period_start(p.period.start.astimezone(zone).date(), p.interval)
    while _begins(cohort, zone) < end:
        retained = [counts.get((cohort, n), 0) for n in range(p.span)
                    if _begins(cohort + n * step, zone) < end]
        cohorts.append(Cohort(cohort.isoformat(), retained[0], retained))
        cohort += step
    return Result(p.interval, cohorts)
