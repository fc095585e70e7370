"""Sessions: how many, how many bounced, how long, how many pages (DESIGN's definitions).

A session is the events sharing a session_id and belongs to the range of its
first event; duration = last event − first event; bounced = exactly one page
view and no click, form submit or custom event; pages per session counts page
views; the median of an even count is the mean of the two middle values.
Served by session_rollup, which holds each session's exact first and last
times, so it answers any range in any zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from userflow.analytics import filters
from userflow.analytics.args import Args
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row

# The figures of a set of sessions `s`, shared with the breakdown.
FIGURES = """
    count(*) AS sessions,
    count(DISTINCT s.actor) AS users,
    coalesce(count(*) FILTER (WHERE s.page_views = 1 AND s.engaged = 0)::float8
             / nullif(count(*), 0), 0) AS bounce_rate,
    coalesce(avg(extract(epoch FROM s.ended_at - s.started_at))::float8, 0) AS avg_duration_s,
    coalesce(percentile_cont(0.5) WITHIN GROUP
             (ORDER BY extract(epoch FROM s.ended_at - s.started_at))::float8, 0) AS median_duration_s,
    coalesce(avg(s.page_views)::float8, 0) AS pages_per_session"""


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    filters: Filters = field(default_factory=Filters)


@dataclass(frozen=True, slots=True)
class Result:
    sessions: int
    users: int
    bounce_rate: float
    avg_duration_s: float
    median_duration_s: float
    pages_per_session: float


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    a.done()
    assert period is not None
    return Params(period, chosen)


def in_period(p: Period, where: Where, column: str = "s.started_at") -> Where:
    where.add(f"{column} >= %(start)s AND {column} < %(end)s", start=p.start, end=p.end)
    return where


def build(p: Params) -> Query[Result]:
    where = filters.on_sessions(p.filters, in_period(p.period, Where()))
    statement = f"SELECT {FIGURES} FROM tenant.session_rollup s WHERE {where.sql()}"
    return Query(statement, where.params, _shape, "session_rollup", p.period)


def _shape(rows: list[Row]) -> Result:
    return Result(**rows[0])
