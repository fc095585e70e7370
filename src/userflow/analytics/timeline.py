"""One user's timeline: their events and sessions, newest first, a page at a time.

- The user is an actor: events whose user_id is `user_id`, or that have no
  user_id and whose anonymous_id is it (identities are not merged, so the
  anonymous events of a visitor who later signed in stay under the anonymous id).
- Events come newest first, ties in time broken by event_id (descending), so
  the order is total and a page boundary never splits or repeats a tie. They
  carry what the user did and where, not the IP address, the raw user agent or
  identify traits.
- Sessions: those the page's events belong to, newest first (by start, then
  id): described by session_rollup, their start and end widened by the page's
  own events, which may be newer than the last refresh; a session not refreshed
  yet is described by the page's events alone (`complete` false). A session
  spanning two pages is on both.
- Pages: keyset pagination on (event_timestamp, event_id), never OFFSET.
  `next_cursor` is opaque (URL-safe base64 of the last event's time and id),
  null after the last page; a cursor that is not one of ours is a 400 naming
  `cursor`. A page holds `limit` events (default 50, at most 500).
- A user with no events (bots left out unless include_bots) is a 404 on the
  first page, as PostHog's person page; a later page that finds nothing (the
  events were deleted meanwhile) is an empty page.

Bounding the scan. user_id has an index (user_id, company_id), anonymous_id
none, and most events of most sites are anonymous: matched on the events
alone, an anonymous visitor's timeline would read every partition the tenant
keeps. Instead actor_hour_rollup (indexed on company, actor, hour) says in
which UTC hours the actor has events and how many; a page reads only the
newest of those hours before the cursor that hold `limit` + 1 events (the
cursor's own hour too), plus everything since the start of the previous UTC
hour, whatever the rollup says, since it is refreshed a minute at a time. A
page so reads at most `limit` + 2 hours of events, each in one partition
(pruned while the statement runs) through its indexes, however long the
user's history. An event the refresh has not yet folded in shows at once when
it is that recent or falls in an hour the rollup knows for the user, else
after the next refresh (within a minute). Should the rollup count more than
the events hold (rows deleted behind its back), a page may come back short
with a cursor that resumes below the hours it read, never skipping an event.
Filters other than include_bots are not taken: the hours' counts could not
say how many events a filter would keep.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import orjson

from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters, NotFound, bad
from userflow.analytics.query import Query, Row
from userflow.events.columns import ID_MAX

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
MAX_CURSOR_CHARS: Final = 200
# The smallest id: a cursor at (t, this) resumes with the events before t.
_BEFORE: Final = UUID(int=0)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ends: the (time, id) of its last event; the next page is below it."""

    at: datetime  # aware
    event_id: UUID

    def encode(self) -> str:
        raw = orjson.dumps([self.at.astimezone(UTC).isoformat(), str(self.event_id)])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @staticmethod
    def decode(text: str) -> Cursor:
        wrong = bad("cursor", "not a cursor of this timeline (pass next_cursor as it came)")
        if len(text) > MAX_CURSOR_CHARS:
            raise wrong
        try:
            at, event_id = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            moment = datetime.fromisoformat(at)
            cursor = Cursor(moment, UUID(event_id))
        except (ValueError, TypeError, AttributeError):  # bad base64, JSON, shape, time or id
            raise wrong from None
        if moment.tzinfo is None or not datetime(1970, 1, 1, tzinfo=UTC) <= moment <= datetime(
                9999, 1, 1, tzinfo=UTC):
            raise wrong
        return cursor

    @property
    def hour(self) -> datetime:
        return self.at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Params:
    user_id: str
    cursor: Cursor | None = None
    limit: int = DEFAULT_LIMIT
    include_bots: bool = False

    def __post_init__(self) -> None:
        if not self.user_id or len(self.user_id) > ID_MAX or "\x00" in self.user_id:
            raise bad("user_id", f"must be 1 to {ID_MAX} characters without NUL")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise bad("limit", f"must be between 1 and {MAX_LIMIT}")


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    event_id: str
    event_timestamp: str  # ISO, UTC
    event_type: str
    event_name: str | None
    session_id: str | None
    user_id: str | None
    anonymous_id: str | None
    page_url: str | None
    page_title: str | None
    referrer: str | None
    element_selector: str | None
    element_text: str | None
    element_type: str | None
    target_url: str | None
    x_coordinate: int | None
    y_coordinate: int | None
    scroll_depth: int | None
    experiment_id: str | None
    variant: str | None
    device_type: str | None
    browser: str | None
    os: str | None
    country: str | None
    region: str | None
    city: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    is_bot: bool
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class TimelineSession:
    session_id: str
    started_at: str  # ISO, UTC
    ended_at: str
    duration_s: float
    events: int
    page_views: int
    entry_page: str | None
    exit_page: str | None
    device_type: str | None
    browser: str | None
    country: str | None
    complete: bool  # described by session_rollup, not only by this page's events


@dataclass(frozen=True, slots=True)
class Result:
    user_id: str
    events: list[TimelineEvent]
    sessions: list[TimelineSession]
    next_cursor: str | None


# The event's columns a timeline shows (TimelineEvent's fields but the two it formats).
_COLUMNS: Final = tuple(f.name for f in fields(TimelineEvent)
                        if f.name not in ("event_id", "event_timestamp"))


def from_args(a: Args) -> Params:
    user_id = a.required("user_id")
    text = a.text("cursor")
    limit = a.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    include_bots = a.flag("include_bots")
    cursor = None
    if text is not None:
        try:
            cursor = Cursor.decode(text)
        except BadParameters as exc:
            a.errors.extend(exc.errors)
    a.done()
    return Params(user_id, cursor, limit, include_bots)


def build(p: Params) -> Query[Result]:
    # One event more than the page shows says whether another page follows.
    params: dict[str, object] = {"user": p.user_id, "limit": p.limit, "need": p.limit + 1}
    hour_bots = "" if p.include_bots else "AND NOT h.is_bot"
    event_bots = "" if p.include_bots else "AND NOT e.is_bot"
    if p.cursor is None:
        below_cursor, before_cursor_hour, cursor_window = "", "", ""
    else:
        params.update(cursor_at=p.cursor.at, cursor_id=p.cursor.event_id,
                      cursor_hour=p.cursor.hour)
        # The plain bound lets the partitions be pruned; the row comparison breaks ties.
        below_cursor = ("AND e.event_timestamp <= %(cursor_at)s"
                        " AND (e.event_timestamp, e.event_id) < (%(cursor_at)s, %(cursor_id)s)")
        before_cursor_hour = "AND h.hour < %(cursor_hour)s"
        cursor_window = """
            UNION ALL
            SELECT %(cursor_hour)s::timestamptz, %(cursor_hour)s::timestamptz + interval '1 hour'
            FROM bounds WHERE %(cursor_hour)s::timestamptz < recent"""
    columns = ", ".join(f"e.{c}" for c in _COLUMNS)
    statement = f"""
        WITH bounds AS MATERIALIZED (
            -- Read in full whatever the rollup says: the refresh may not have caught up.
            SELECT date_trunc('hour', now(), 'UTC') - interval '1 hour' AS recent),
        known AS (
            SELECT h.hour, sum(h.events)::bigint AS events
            FROM tenant.actor_hour_rollup h, bounds
            WHERE h.actor = %(user)s {hour_bots} AND h.hour < bounds.recent {before_cursor_hour}
            GROUP BY h.hour),
        taken AS (
            -- Newest first, the hours until the page (and one more event) is filled.
            SELECT hour FROM (SELECT hour, sum(events) OVER (ORDER BY hour DESC) - events AS newer
                              FROM known) k
            WHERE newer < %(need)s),
        windows AS (
            SELECT hour AS lo, hour + interval '1 hour' AS hi FROM taken
            {cursor_window}
            UNION ALL
            SELECT recent, 'infinity'::timestamptz FROM bounds),
        page AS (
            SELECT x.* FROM windows w CROSS JOIN LATERAL (
                SELECT e.event_id, e.event_timestamp, {columns}
                FROM tenant.events e
                WHERE e.event_timestamp >= w.lo AND e.event_timestamp < w.hi
                  AND (e.user_id = %(user)s OR (e.user_id IS NULL AND e.anonymous_id = %(user)s))
                  {event_bots} {below_cursor}
                ORDER BY e.event_timestamp DESC, e.event_id DESC LIMIT %(need)s) x
            ORDER BY x.event_timestamp DESC, x.event_id DESC LIMIT %(need)s),
        shown AS (SELECT * FROM page ORDER BY event_timestamp DESC, event_id DESC LIMIT %(limit)s),
        visits AS (
            SELECT session_id, min(event_timestamp) AS first_at, max(event_timestamp) AS last_at,
                   count(*) AS events, count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
                   (array_agg(device_type ORDER BY event_timestamp, event_id))[1] AS device_type,
                   (array_agg(browser ORDER BY event_timestamp, event_id))[1] AS browser,
                   (array_agg(country ORDER BY event_timestamp, event_id))[1] AS country
            FROM shown WHERE session_id IS NOT NULL GROUP BY session_id)
        SELECT
            (SELECT coalesce(json_agg(json_build_object(
                        'event_id', event_id, 'event_timestamp', event_timestamp,
                        {", ".join(f"'{c}', {c}" for c in _COLUMNS)})
                        ORDER BY event_timestamp DESC, event_id DESC), '[]')
             FROM page) AS events,
            (SELECT coalesce(json_agg(json_build_object(
                        'session_id', v.session_id,
                        'started_at', least(s.started_at, v.first_at),
                        'ended_at', greatest(s.ended_at, v.last_at),
                        'events', coalesce(s.events, v.events),
                        'page_views', coalesce(s.page_views, v.page_views),
                        'entry_page', s.entry_page, 'exit_page', s.exit_page,
                        'device_type', coalesce(s.device_type, v.device_type),
                        'browser', coalesce(s.browser, v.browser),
                        'country', coalesce(s.country, v.country),
                        'complete', s.session_id IS NOT NULL)
                        ORDER BY least(s.started_at, v.first_at) DESC, v.session_id), '[]')
             FROM visits v LEFT JOIN tenant.session_rollup s ON s.session_id = v.session_id)
                AS sessions,
            (SELECT count(*) FROM known) AS known_hours,
            (SELECT count(*) FROM taken) AS taken_hours,
            (SELECT min(hour) FROM taken) AS oldest_taken"""
    return Query(statement, params, lambda rows: _shape(p, rows), "events+actor_hour_rollup")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _shape(p: Params, rows: list[Row]) -> Result:
    row = rows[0]
    found = row["events"]
    shown = found[:p.limit]
    events = [TimelineEvent(**{**e, "event_timestamp": _utc(e["event_timestamp"]).isoformat()})
              for e in shown]
    sessions = [TimelineSession(
        s["session_id"], _utc(s["started_at"]).isoformat(), _utc(s["ended_at"]).isoformat(),
        (_utc(s["ended_at"]) - _utc(s["started_at"])) / timedelta(seconds=1), int(s["events"]),
        int(s["page_views"]), s["entry_page"], s["exit_page"], s["device_type"], s["browser"],
        s["country"], bool(s["complete"])) for s in row["sessions"]]
    if len(found) > p.limit:
        last = shown[-1]
        following: str | None = Cursor(_utc(last["event_timestamp"]), UUID(last["event_id"])).encode()
    elif row["taken_hours"] < row["known_hours"]:
        # The rollup promised more than the hours held: resume below them.
        following = Cursor(row["oldest_taken"], _BEFORE).encode()
    else:
        following = None
    if not events and following is None and p.cursor is None:
        bots = "" if p.include_bots else " (bots left out unless include_bots=true)"
        raise NotFound(f"no events of user {p.user_id[:64]!r}{bots}")
    return Result(p.user_id, events, sessions, following)
