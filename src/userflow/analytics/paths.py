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
`after` and `before` together are refused, as is a page holding a query string
or a fragment (it could never match). Each list holds `limit` rows (default 20,
at most 1000), ties by page in byte order. Sessions and their paths come
from session_rollup (a session that runs past `to` is whole; a late event
shows once the refresh has seen it, within a minute).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from userflow.analytics import filters, sessions
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters
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
        kind, params["page"], step = (("next", p.after, 1) if p.after is not None
                                      else ("previous", p.before, -1))
        # Each session once per neighbour; `step` is a fixed 1 or -1, not a value.
        around = f"""
        UNION ALL
        SELECT '{kind}', NULL, n.page, count(*),
               row_number() OVER (ORDER BY count(*) DESC, n.page COLLATE "C")
        FROM (SELECT DISTINCT j.session_id, j.path[i + {step}] AS page
              FROM journeys j CROSS JOIN LATERAL generate_subscripts(j.path, 1) i
              WHERE j.path[i] = %(page)s AND j.path[i + {step}] IS NOT NULL) n
        GROUP BY n.page
        UNION ALL
        SELECT 'at', NULL, NULL, count(*) FILTER (WHERE %(page)s = ANY(path)), 1 FROM journeys"""
    # Each session's journey was worked out by the refresh (sql/018): a row a session.
    statement = f"""
    WITH journeys AS MATERIALIZED (
        SELECT s.session_id, s.journey AS path FROM tenant.session_rollup s
        WHERE {where.sql()} AND cardinality(s.journey) > 0
    )
    SELECT kind, pages, page, sessions FROM (
        SELECT 'total' AS kind, NULL::text[] AS pages, NULL::text AS page, count(*) AS sessions,
               1::bigint AS rank
        FROM journeys
        UNION ALL
        SELECT 'sequence', path[1:%(depth)s], NULL, count(*),
               row_number() OVER (ORDER BY count(*) DESC,
                                  array_to_string(path[1:%(depth)s], ' → ') COLLATE "C")
        FROM journeys GROUP BY path[1:%(depth)s]
        UNION ALL
        SELECT 'exit', NULL, path[cardinality(path)], count(*),
               row_number() OVER (ORDER BY count(*) DESC, path[cardinality(path)] COLLATE "C")
        FROM journeys GROUP BY path[cardinality(path)]{around}
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
