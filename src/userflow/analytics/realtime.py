"""Right now: who is active, events minute by minute, and the pages they are on.

- now: `Params.now` when given (tests, replays), else the clock when the
  parameters are made (the moment the question is asked).
- Minutes: the 30 clock minutes (UTC; every zone's minutes start together)
  ending with the one now falls in, oldest first, empty ones included; the last
  one is partial (it ends at now). Each has its events and distinct users.
- The range is [start of the first minute, now): an event stamped at or after
  now (a client clock ahead) is not yet "in the last 30 minutes", as any
  range's `to` is exclusive.
- active_users: distinct users (user_id, else anonymous_id) with any event in
  the last 5 minutes, [now − 5 min, now); active_sessions likewise.
- top_pages: paths (query string ignored) with events in those 5 minutes, by
  distinct users there, then page views, then path; at most `limit` (10).
Bots left out unless include_bots; the common filters apply. Read from the
events: both bounds are bound parameters, so only the partitions of the last
half hour (one, or two across midnight UTC) are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from userflow.analytics import filters
from userflow.analytics.args import Args
from userflow.analytics.errors import bad
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row

MINUTES: Final = 30
ACTIVE: Final = timedelta(minutes=5)
MAX_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class Params:
    filters: Filters = field(default_factory=Filters)
    now: datetime | None = None  # None: the clock, read once here
    limit: int = 10  # top pages

    def __post_init__(self) -> None:
        if self.now is None:
            # Frozen: set once, so build() stays a pure function of the parameters.
            object.__setattr__(self, "now", datetime.now(UTC))
        elif self.now.tzinfo is None:
            raise bad("now", "must carry a time zone")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise bad("limit", f"must be between 1 and {MAX_LIMIT}")

    @property
    def window(self) -> Period:
        """[start of the first of the 30 minutes, now), in UTC."""
        assert self.now is not None
        now = self.now.astimezone(UTC)
        first = now.replace(second=0, microsecond=0) - timedelta(minutes=MINUTES - 1)
        return Period(first, now)


@dataclass(frozen=True, slots=True)
class Minute:
    t: str  # the minute's start, ISO, UTC
    events: int
    users: int


@dataclass(frozen=True, slots=True)
class PageNow:
    page: str
    users: int
    views: int


@dataclass(frozen=True, slots=True)
class Result:
    now: str
    active_users: int
    active_sessions: int
    events: int  # in the 30 minutes
    events_per_minute: list[Minute]
    top_pages: list[PageNow]
    active_minutes: int = int(ACTIVE / timedelta(minutes=1))


def from_args(a: Args) -> Params:
    chosen = a.filters()
    limit = a.integer("limit", 10, 1, MAX_LIMIT)
    a.done()
    return Params(chosen, limit=limit)


def build(p: Params) -> Query[Result]:
    window = p.window
    where = filters.on_events(p.filters, Where())
    where.add("e.event_timestamp >= %(start)s AND e.event_timestamp < %(now)s",
              start=window.start, now=window.end)
    where.params.update(active_from=window.end - ACTIVE, limit=p.limit)
    statement = f"""
        WITH recent AS MATERIALIZED (
            SELECT e.event_timestamp AS at, e.actor, e.session_id, e.event_type, e.page_path
            FROM tenant.events e WHERE {where.sql()}),
        active AS (SELECT * FROM recent WHERE at >= %(active_from)s)
        SELECT
            (SELECT count(*) FROM recent) AS events,
            (SELECT count(DISTINCT actor) FROM active) AS active_users,
            (SELECT count(DISTINCT session_id) FROM active) AS active_sessions,
            (SELECT coalesce(json_agg(json_build_object('i', i, 'events', events, 'users', users)),
                             '[]')
             FROM (SELECT floor(extract(epoch FROM at - %(start)s) / 60)::int AS i,
                          count(*) AS events, count(DISTINCT actor) AS users
                   FROM recent GROUP BY 1) m) AS minutes,
            (SELECT coalesce(json_agg(json_build_object('page', page, 'users', users, 'views', views)
                                      ORDER BY users DESC, views DESC, page), '[]')
             FROM (SELECT page_path AS page, count(DISTINCT actor) AS users,
                          count(*) FILTER (WHERE event_type = 'page_view') AS views
                   FROM active WHERE page_path IS NOT NULL GROUP BY page_path
                   ORDER BY users DESC, views DESC, page LIMIT %(limit)s) t) AS top_pages"""
    return Query(statement, where.params, lambda rows: _shape(window, rows), "events", window)


def _shape(window: Period, rows: list[Row]) -> Result:
    row = rows[0]
    counted = {int(m["i"]): m for m in row["minutes"]}
    minutes = [Minute((window.start + timedelta(minutes=i)).isoformat(),
                      int(counted[i]["events"]) if i in counted else 0,
                      int(counted[i]["users"]) if i in counted else 0) for i in range(MINUTES)]
    pages = [PageNow(t["page"], int(t["users"]), int(t["views"])) for t in row["top_pages"]]
    return Result(window.end.isoformat(), int(row["active_users"]), int(row["active_sessions"]),
                  int(row["events"]), minutes, pages)
