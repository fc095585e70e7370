"""Content: how each page (path of page_url, query string ignored) is viewed.

Per page, over the sessions that started in the range:
- views: page views; visitors: distinct users who viewed it;
- avg_time_on_page_s: the time from a view to the session's next event,
  averaged over the views that have one (a session's last event ends nothing,
  so its time is unknown, not zero; as Google Analytics and PostHog);
- click_through_rate: clicks on the page / views;
- avg_scroll_depth: the deepest scroll (0–100) of a session on the page,
  averaged over the sessions that reported one; null when none did;
- exit_rate: sessions whose last page view is this page / views.
Served by session_page_rollup; filters match the session (see filters.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from userflow.analytics import filters, sessions
from userflow.analytics.args import Args
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row
from userflow.analytics.errors import bad

MAX_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    filters: Filters = field(default_factory=Filters)
    limit: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise bad("limit", f"must be between 1 and {MAX_LIMIT}")


@dataclass(frozen=True, slots=True)
class PageRow:
    page: str
    views: int
    visitors: int
    avg_time_on_page_s: float
    click_through_rate: float
    avg_scroll_depth: float | None
    exit_rate: float


@dataclass(frozen=True, slots=True)
class Result:
    rows: list[PageRow]


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    limit = a.integer("limit", 100, 1, MAX_LIMIT)
    a.done()
    assert period is not None
    return Params(period, chosen, limit)


def build(p: Params) -> Query[Result]:
    where = sessions.in_period(p.period, Where(), "p.started_at")
    if p.filters.any:
        # The session's own description lives in session_rollup.
        joined = (" JOIN tenant.session_rollup s"
                  " ON s.company_id = p.company_id AND s.session_id = p.session_id")
        filters.on_sessions(p.filters, where)
    else:
        joined = ""
        if not p.filters.include_bots:
            where.add("NOT p.is_bot")
    where.params["limit"] = p.limit
    # Per page and user first (a hash aggregate), then per page: cheaper than
    # count(DISTINCT actor), which sorts every row.
    statement = f"""
        WITH per_user AS (
            SELECT p.page, p.actor, sum(p.views) AS views, sum(p.timed_views) AS timed_views,
                   sum(p.seconds_on_page) AS seconds_on_page, sum(p.clicks) AS clicks,
                   sum(p.max_scroll) AS scroll_sum, count(p.max_scroll) AS scrolled,
                   sum(p.exits) AS exits
            FROM tenant.session_page_rollup p{joined}
            WHERE {where.sql()}
            GROUP BY p.page, p.actor)
        SELECT page, sum(views)::bigint AS views, count(actor) AS visitors,
               coalesce(sum(seconds_on_page) / nullif(sum(timed_views), 0), 0)::float8
                   AS avg_time_on_page_s,
               coalesce(sum(clicks)::float8 / nullif(sum(views), 0), 0) AS click_through_rate,
               (sum(scroll_sum)::float8 / nullif(sum(scrolled), 0)) AS avg_scroll_depth,
               coalesce(sum(exits)::float8 / nullif(sum(views), 0), 0) AS exit_rate
        FROM per_user
        GROUP BY page ORDER BY views DESC, page LIMIT %(limit)s"""
    return Query(statement, where.params, _shape, "session_page_rollup", p.period)


def _shape(rows: list[Row]) -> Result:
    return Result([PageRow(**r) for r in rows])
