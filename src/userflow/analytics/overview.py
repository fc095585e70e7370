"""The overview: events, users and sessions over a range, in total and per bucket.

- events: events in the range (bots left out unless asked for), by type too;
- users: distinct users (user_id, else anonymous_id) with an event in the range;
- sessions: sessions whose first event is in the range (a session's bucket is
  that of its first event);
- new users: users whose first event ever is in the range; returning users:
  the other users of the range;
- series: one point per hour, day or ISO week (Monday) in the request's zone,
  empty buckets included; a point's users are distinct within the bucket.

Sessions come from session_rollup. Events and users come from
actor_hour_rollup when UTC hours tile the question (bounds on the hour, a
zone of whole-hour offsets, no filters but include_bots), else from the events;
both give the same answer. Whether a user is new is actor_first_seen's to say
(each user's first hour with an event, sql/019): the users first seen in the
range when hours tile it, else the range's users not seen before the hour of
`from` there nor in that hour before `from` in the events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from userflow.analytics import filters, period as periods, sessions
from userflow.analytics.args import Args
from userflow.analytics.filters import EVENT_TYPES, Filters, Where
from userflow.analytics.period import Interval, Period
from userflow.analytics.query import Query, Row

# actor_hour_rollup's count column of each event type
TYPE_COLUMNS = {"page_view": "page_views", "click": "clicks", "scroll": "scrolls",
                "form_submit": "form_submits", "hover": "hovers", "keydown": "keydowns",
                "custom": "customs", "identify": "identifies"}


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    interval: Interval = "day"
    filters: Filters = field(default_factory=Filters)
    raw: bool = False  # read the events even where the rollup would do (tests compare both)

    @property
    def from_rollup(self) -> bool:
        return not self.raw and not self.filters.any and self.period.hour_aligned()


@dataclass(frozen=True, slots=True)
class Totals:
    events: int
    users: int
    sessions: int
    new_users: int
    returning_users: int
    by_event_type: dict[str, int]


@dataclass(frozen=True, slots=True)
class Point:
    t: str
    events: int
    users: int
    sessions: int


@dataclass(frozen=True, slots=True)
class Result:
    totals: Totals
    interval: str
    series: list[Point]


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    interval = a.text("interval")
    a.done()
    assert period is not None
    return Params(period, periods.interval_of(interval, period), chosen)


def bucket(interval: Interval, column: str) -> str:
    """The start of `column`'s bucket: UTC hours; days and ISO weeks in the zone %(tz)s."""
    if interval == "hour":
        return f"date_trunc('hour', {column})"
    return f"date_trunc('{interval}', {column}, %(tz)s)"


def buckets(interval: Interval) -> str:
    """Every bucket that [%(start)s, %(end)s) touches, empty ones included, as rows of `t`
    (its start); days and weeks step in the zone's wall time, so a DST day is 23 or 25 hours."""
    local = "" if interval == "hour" else " AT TIME ZONE %(tz)s"
    return f"""
            SELECT b{local} AS t FROM generate_series(
                ({bucket(interval, "%(start)s::timestamptz")}){local},
                (%(end)s::timestamptz - interval '1 microsecond'){local},
                interval '1 {interval}') AS b"""


def build(p: Params) -> Query[Result]:
    f = p.filters
    params: dict[str, object] = {"start": p.period.start, "end": p.period.end, "tz": p.period.tz}
    if p.from_rollup:
        bots = "" if f.include_bots else "AND NOT h.is_bot"
        activity = f"""
            SELECT h.hour AS at, h.actor, h.events,
                   {", ".join(f"h.{c} AS {t}" for t, c in TYPE_COLUMNS.items())}
            FROM tenant.actor_hour_rollup h
            WHERE h.hour >= %(start)s AND h.hour < %(end)s {bots}"""
        source = "actor_hour_rollup+session_rollup"
    else:
        where = filters.on_events(f, Where(params=params))
        where.add("e.event_timestamp >= %(start)s AND e.event_timestamp < %(end)s")
        types = ", ".join(f"(e.event_type = '{t}')::int AS {t}" for t in EVENT_TYPES)
        activity = f"""
            SELECT e.event_timestamp AS at, e.actor, 1 AS events, {types}
            FROM tenant.events e WHERE {where.sql()}"""
        # The events of the hour of `from` before it, which the rollup's hours cannot tell.
        before_from = f"""
            EXCEPT
            SELECT e.actor FROM tenant.events e
            WHERE e.event_timestamp >= date_trunc('hour', %(start)s::timestamptz, 'UTC')
              AND e.event_timestamp < %(start)s {"" if f.include_bots else "AND NOT e.is_bot"}"""
        source = "events+session_rollup"
    # A user's first event ever, of any kind (filters choose whom, not when), is
    # actor_first_seen's first hour (sql/019) when hours tile the range; else none
    # before the hour of `from` there, and none in that hour before `from`.
    seen_bots = "" if f.include_bots else "AND NOT f.is_bot"
    if p.from_rollup:
        # A row an actor and bot flag: with bots, the actor's other row may be earlier.
        earlier = "" if not f.include_bots else """
              AND NOT EXISTS (SELECT FROM tenant.actor_first_seen o
                              WHERE o.actor = f.actor AND o.first_hour < %(start)s)"""
        firsts = f"""
            SELECT DISTINCT f.actor FROM tenant.actor_first_seen f
            WHERE f.first_hour >= %(start)s AND f.first_hour < %(end)s {seen_bots}{earlier}"""
    else:
        firsts = f"""
            SELECT a.actor FROM (SELECT DISTINCT actor FROM activity WHERE actor IS NOT NULL) a
            WHERE NOT EXISTS (
                SELECT FROM tenant.actor_first_seen f
                WHERE f.actor = a.actor
                  AND f.first_hour < date_trunc('hour', %(start)s::timestamptz, 'UTC') {seen_bots})
            {before_from}"""
    session_where = filters.on_sessions(f, sessions.in_period(p.period, Where(params=params)))
    statement = f"""
        WITH activity AS MATERIALIZED ({activity}),
        starts AS (SELECT s.started_at AS at FROM tenant.session_rollup s
                   WHERE {session_where.sql()}),
        buckets AS ({buckets(p.interval)}),
        per_bucket AS (SELECT {bucket(p.interval, "at")} AS t, sum(events) AS events,
                              count(DISTINCT actor) AS users
                       FROM activity GROUP BY 1),
        session_buckets AS (SELECT {bucket(p.interval, "at")} AS t, count(*) AS sessions
                            FROM starts GROUP BY 1)
        SELECT
            (SELECT coalesce(sum(events), 0) FROM activity) AS events,
            -- A hash of the users rather than count(DISTINCT), which sorts every row.
            (SELECT count(*) FROM (SELECT actor FROM activity WHERE actor IS NOT NULL
                                   GROUP BY actor) u) AS users,
            (SELECT count(*) FROM starts) AS sessions,
            (SELECT count(*) FROM ({firsts}) n) AS new_users,
            (SELECT json_build_object({", ".join(f"'{t}', coalesce(sum({t}), 0)" for t in EVENT_TYPES)})
             FROM activity) AS by_event_type,
            (SELECT coalesce(json_agg(json_build_object(
                        't', b.t, 'events', coalesce(pb.events, 0), 'users', coalesce(pb.users, 0),
                        'sessions', coalesce(sb.sessions, 0)) ORDER BY b.t), '[]')
             FROM buckets b LEFT JOIN per_bucket pb USING (t) LEFT JOIN session_buckets sb USING (t))
                AS series"""
    return Query(statement, session_where.params,
                 lambda rows: _shape(p, rows), source, p.period)


def _shape(p: Params, rows: list[Row]) -> Result:
    row = rows[0]
    zone = p.period.zone
    series = [Point(datetime.fromisoformat(b["t"]).astimezone(zone).isoformat(), int(b["events"]),
                    int(b["users"]), int(b["sessions"])) for b in row["series"]]
    users, new = int(row["users"]), int(row["new_users"])
    totals = Totals(int(row["events"]), users, int(row["sessions"]), new, users - new,
                    {t: int(n) for t, n in row["by_event_type"].items()})
    return Result(totals, p.interval, series)
