"""Paths: how visitors move through the pages of a session (user journeys).

Over the sessions whose first event is in the range (bots left out unless
include_bots; the filters match the session, see filters.py), each session's
page views in time order (ties by event id) make its path of pages (the path
of page_url, query string and fragment ignored). Consecutive views of the same
page are one step, as PostHog's paths collapse a reload; a page view without a
URL is not a step, and a session without page views has no path.

- sequences: the first SEQUENCE_PAGES (5) steps of each session, from its
  start; sessions per distinct sequence, most first, ties by the sequence
  written "/a → /b" (a session of two pages is the sequence of those two);
- next_pages (with `after`): the pages viewed right after `after`, with the
  sessions in which that step was taken (a session counts once per page, however
  often it took the step); null when `after` is not asked;
- previous_pages (with `before`): the same for the pages right before `before`;
- page_sessions: the sessions that viewed `after` or `before` (null without);
- exit_pages: each session's last page, with its sessions;
- sessions: the sessions with a path.
`after` and `before` together are refused. Each list holds `limit` rows
(default 20), ties by page (byte order). Sessions come from session_rollup; their page
views from the events, up to the last event of the latest session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from userflow.analytics import filters, sessions
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters, bad
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row
from userflow.events.errors import FieldError

SEQUENCE_PAGES: Final = 5
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    after: str | None = None
    before: str | None = None
    filters: Filters = field(default_factory=Filters)
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        errors = [FieldError(name, "a path: the query string and fragment are ignored, so a"
                                   " page holding them is never viewed")
                  for name in ("after", "before")
                  if (page := getattr(self, name)) is not None and ("?" in page or "#" in page)]
        if self.after is not None and self.before is not None:
            errors.append(FieldError("before", "give after or before, not both"))
        if not 1 <= self.limit <= MAX_LIMIT:
            errors.append(FieldError("limit", f"must be between 1 and {MAX_LIMIT}"))
        if errors:
            raise BadParameters(errors)


@dataclass(frozen=True, slots=True)
class Sequence:
    pages: list[str]
    sessions: int


@dataclass(frozen=True, slots=True)
class PageCount:
    page: str
    sessions: int


@dataclass(frozen=True, slots=True)
class Result:
    sessions: int
    sequences: list[Sequence]
    next_pages: list[PageCount] | None
    previous_pages: list[PageCount] | None
    page_sessions: int | None
    exit_pages: list[PageCount]


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    after, before = a.text("after"), a.text("before")
    limit = a.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    a.done()
    assert period is not None
    return Params(period, after, before, chosen, limit)


def build(p: Params) -> Query[Result]:
    where = filters.on_sessions(p.filters, sessions.in_period(p.period, Where()))
    params = dict(where.params, limit=p.limit, depth=SEQUENCE_PAGES)
    around = ""
    if p.after is not None or p.before is not None:
        column, params["page"] = (("next_page", p.after) if p.after is not None
                                  else ("previous_page", p.before))
        kind = "next" if p.after is not None else "previous"
        # A session counts once per neighbour (hashing the pairs: no sort of the steps).
        around = f"""
        UNION ALL
        SELECT '{kind}', NULL, neighbour, count(*), row_number() OVER (ORDER BY count(*) DESC, neighbour COLLATE "C")
        FROM (SELECT session_id, {column} AS neighbour FROM steps
              WHERE page = %(page)s AND {column} IS NOT NULL GROUP BY session_id, {column}) q
        GROUP BY neighbour
        UNION ALL
        SELECT 'at', NULL, NULL, count(*), 1
        FROM (SELECT session_id FROM steps WHERE page = %(page)s GROUP BY session_id) q"""
    statement = f"""
    WITH chosen AS (
        SELECT s.session_id, s.ended_at FROM tenant.session_rollup s WHERE {where.sql()}
    ), views AS (
        -- The sessions' events lie between the range's start and the last session's end.
        SELECT e.session_id COLLATE "C" AS session_id, e.event_timestamp AS t, e.event_id,
               e.page_url
        FROM tenant.events e
        WHERE e.event_type = 'page_view' AND e.page_url IS NOT NULL
          AND e.event_timestamp >= %(start)s
          AND e.event_timestamp <= (SELECT max(ended_at) FROM chosen)
          AND e.session_id IN (SELECT session_id FROM chosen)
    ), urls AS (
        -- A URL's path is a regular expression's work: once per distinct URL.
        SELECT page_url, userflow_url_path(page_url) AS page FROM views GROUP BY page_url
    ), viewed AS (
        SELECT v.session_id, v.t, v.event_id, u.page,
               lag(u.page) OVER (PARTITION BY v.session_id ORDER BY v.t, v.event_id) AS before
        FROM views v JOIN urls u USING (page_url)
    ), steps AS MATERIALIZED (
        SELECT session_id, page,
               row_number() OVER w AS n,
               lead(page) OVER w AS next_page,
               lag(page) OVER w AS previous_page
        FROM viewed WHERE before IS DISTINCT FROM page
        WINDOW w AS (PARTITION BY session_id ORDER BY t, event_id)
    )
    SELECT kind, pages, page, sessions FROM (
        SELECT 'total' AS kind, NULL::text[] AS pages, NULL::text AS page, count(*) AS sessions,
               1::bigint AS rank
        FROM steps WHERE n = 1
        UNION ALL
        SELECT 'sequence', pages, NULL, count(*),
               row_number() OVER (ORDER BY count(*) DESC,
                                  array_to_string(pages, ' → ') COLLATE "C")
        FROM (SELECT session_id, array_agg(page ORDER BY n) AS pages
              FROM steps WHERE n <= %(depth)s GROUP BY session_id) q
        GROUP BY pages
        UNION ALL
        SELECT 'exit', NULL, page, count(*), row_number() OVER (ORDER BY count(*) DESC, page COLLATE "C")
        FROM steps WHERE next_page IS NULL GROUP BY page{around}
    ) answers
    WHERE rank <= %(limit)s
    ORDER BY kind, rank"""
    return Query(statement, params, lambda rows: _shape(p, rows), "session_rollup", p.period)


def _counts(rows: list[Row], kind: str) -> list[PageCount]:
    return [PageCount(r["page"], int(r["sessions"])) for r in rows if r["kind"] == kind]


def _shape(p: Params, rows: list[Row]) -> Result:
    total = next((int(r["sessions"]) for r in rows if r["kind"] == "total"), 0)
    at = next((int(r["sessions"]) for r in rows if r["kind"] == "at"), None)
    return Result(
        sessions=total,
        sequences=[Sequence(list(r["pages"]), int(r["sessions"]))
                   for r in rows if r["kind"] == "sequence"],
        next_pages=_counts(rows, "next") if p.after is not None else None,
        previous_pages=_counts(rows, "previous") if p.before is not None else None,
        page_sessions=at if p.after is not None or p.before is not None else None,
        exit_pages=_counts(rows, "exit"))
