"""Sessions broken down by one of their dimensions (device, place, referrer, campaign, page).

A session's dimension values are its first event's; `page` is its entry page
(the path of its first page view), `referrer` the referrer's domain (none:
direct). A missing value is a row with value null. Rows come by sessions,
most first, then value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from userflow.analytics import filters, sessions
from userflow.analytics.args import Args
from userflow.analytics.errors import bad
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row

# dimension -> session_rollup column
DIMENSIONS: Final = {
    "device_type": "device_type", "browser": "browser", "os": "os", "country": "country",
    "region": "region", "city": "city", "referrer": "referrer_domain",
    "utm_source": "utm_source", "utm_medium": "utm_medium", "utm_campaign": "utm_campaign",
    "page": "entry_page",
}
MAX_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    dimension: str
    filters: Filters = field(default_factory=Filters)
    limit: int = 100

    def __post_init__(self) -> None:
        if self.dimension not in DIMENSIONS:
            raise bad("dimension", "must be one of " + ", ".join(DIMENSIONS))
        if not 1 <= self.limit <= MAX_LIMIT:
            raise bad("limit", f"must be between 1 and {MAX_LIMIT}")


@dataclass(frozen=True, slots=True)
class Row_:
    value: str | None
    sessions: int
    users: int
    bounce_rate: float
    avg_duration_s: float
    median_duration_s: float
    pages_per_session: float


@dataclass(frozen=True, slots=True)
class Result:
    dimension: str
    rows: list[Row_]


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    dimension = a.choice("dimension", tuple(DIMENSIONS), "")
    if dimension == "" and not any(e.field == "dimension" for e in a.errors):
        a.required("dimension")
    limit = a.integer("limit", 100, 1, MAX_LIMIT)
    a.done()
    assert period is not None
    return Params(period, dimension, chosen, limit)


def build(p: Params) -> Query[Result]:
    where = filters.on_sessions(p.filters, sessions.in_period(p.period, Where()))
    column = DIMENSIONS[p.dimension]
    where.params["limit"] = p.limit
    statement = (f"SELECT s.{column} AS value, {sessions.FIGURES} FROM tenant.session_rollup s"
                 f" WHERE {where.sql()} GROUP BY s.{column}"
                 f" ORDER BY sessions DESC, value NULLS LAST LIMIT %(limit)s")
    return Query(statement, where.params, lambda rows: _shape(p.dimension, rows),
                 "session_rollup", p.period)


def _shape(dimension: str, rows: list[Row]) -> Result:
    return Result(dimension, [Row_(**r) for r in rows])
