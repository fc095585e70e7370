"""A page's click heatmap: where on the page people click, and what they rage-click.

- Clicks: click events whose page_url has the path `page` (query string and
  fragment ignored; `page` itself may carry them, they are dropped too), in the
  range, with the common filters (`device_type` among them: layouts differ by
  device, so a heatmap is usually asked per device).
- Cells: the clicks binned on a square grid of `bin_px` pixels (default 20).
  Coordinates are the document (page) coordinates the client sent, x from the
  left edge and y from the top of the page, not of the viewport. A cell's x
  and y are its top-left pixel (x = floor(x_coordinate / bin_px) * bin_px),
  so a cell covers [x, x + bin_px) × [y, y + bin_px). Only cells with clicks
  are listed. A click without both coordinates, or with one outside the page
  (negative, or x ≥ 10,000 or y ≥ 1,000,000 px: no screen is that wide, no page
  that long), is left out of the cells, not clamped: clamping would pile such
  clicks on the edge and draw a hot spot where nobody clicked. It still counts
  for its selector. At most 10,000 cells come back, the busiest (clicks, then
  top to bottom, left to right); `cells_truncated` says when more had clicks.
- Selectors: the most clicked element selectors (clicks without one are in
  the totals only), with their rage clicks, most clicked first, then most
  rage-clicked, then by selector; at most `limit` (default 20).
- Rage click, as PostHog's tracker decides it: a run of clicks by one session
  (or, without a session, one user) on one selector, each less than 1 second
  and less than 30 px (|dx| + |dy|) from the previous click of the run, is one
  rage click once it holds 3 clicks; a longer run is still one (PostHog emits
  one $rageclick a run). Where a click of a pair lacks a coordinate, the
  selector alone stands for "the same place". Clicks at the same instant are
  ordered by event_id, so runs come out the same on every read.
- Totals: clicks, binned_clicks (those in cells, truncated or not), cells
  (cells with clicks), rage_clicks (over all selectors, none included), users.
Read from the events (coordinates are in no rollup).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from userflow.analytics import filters
from userflow.analytics.args import Args
from userflow.analytics.errors import bad
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row

DEFAULT_BIN_PX: Final = 20
MAX_BIN_PX: Final = 1000
MAX_CELLS: Final = 10_000
MAX_LIMIT: Final = 1000
# Beyond these a coordinate is not a place on a page (8K screens are 7,680 px wide).
MAX_X: Final = 10_000
MAX_Y: Final = 1_000_000
# PostHog's tracker: 3 clicks, each < 30 px (Manhattan) and < 1 s from the previous.
RAGE_CLICKS: Final = 3
RAGE_PX: Final = 30
RAGE_SECONDS: Final = 1
MAX_PAGE_CHARS: Final = 2048


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    page: str
    filters: Filters = field(default_factory=Filters)
    bin_px: int = DEFAULT_BIN_PX
    limit: int = 20  # selectors

    def __post_init__(self) -> None:
        if not self.page.startswith("/") or len(self.page) > MAX_PAGE_CHARS or "\x00" in self.page:
            raise bad("page", f"must be a path starting with / of at most {MAX_PAGE_CHARS} characters")
        if self.filters.page:
            raise bad("page", "the heatmap's page is `page`; it takes no page filter")
        if not 1 <= self.bin_px <= MAX_BIN_PX:
            raise bad("bin_px", f"must be between 1 and {MAX_BIN_PX}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise bad("limit", f"must be between 1 and {MAX_LIMIT}")


@dataclass(frozen=True, slots=True)
class Cell:
    x: int  # the cell's left edge, px from the page's left
    y: int  # the cell's top edge, px from the page's top
    clicks: int


@dataclass(frozen=True, slots=True)
class SelectorRow:
    element_selector: str
    clicks: int
    rage_clicks: int


@dataclass(frozen=True, slots=True)
class Totals:
    clicks: int
    binned_clicks: int
    cells: int
    rage_clicks: int
    users: int


@dataclass(frozen=True, slots=True)
class Result:
    page: str
    bin_px: int
    cells: list[Cell]
    cells_truncated: bool
    selectors: list[SelectorRow]
    totals: Totals
    cell_origin: str = "top-left"  # what a cell's x and y name


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    page = a.required("page")
    bin_px = a.integer("bin_px", DEFAULT_BIN_PX, 1, MAX_BIN_PX)
    limit = a.integer("limit", 20, 1, MAX_LIMIT)
    a.done()
    assert period is not None
    # `page` is also a common filter's name: here it is the heatmap's page, not a filter.
    return Params(period, page, replace(chosen, page=()), bin_px, limit)


def build(p: Params) -> Query[Result]:
    where = filters.on_events(p.filters, Where())
    where.add("e.event_type = 'click' AND e.page_path = userflow_url_path(%(page)s)"
              " AND e.event_timestamp >= %(start)s AND e.event_timestamp < %(end)s",
              page=p.page, start=p.period.start, end=p.period.end)
    where.params.update(bin=p.bin_px, max_x=MAX_X, max_y=MAX_Y, max_cells=MAX_CELLS,
                        limit=p.limit, rage_clicks=RAGE_CLICKS, rage_px=RAGE_PX,
                        rage_seconds=RAGE_SECONDS)
    statement = f"""
        WITH clicks AS MATERIALIZED (
            SELECT e.event_id, e.event_timestamp AS at, e.actor, e.session_id,
                   CASE WHEN e.session_id IS NULL THEN e.actor END AS lone_actor,
                   e.element_selector AS selector, e.x_coordinate AS x, e.y_coordinate AS y
            FROM tenant.events e WHERE {where.sql()}),
        placed AS (
            SELECT (x / %(bin)s) * %(bin)s AS x, (y / %(bin)s) * %(bin)s AS y, count(*) AS clicks
            FROM clicks
            WHERE x >= 0 AND x < %(max_x)s AND y >= 0 AND y < %(max_y)s
            GROUP BY 1, 2),
        -- A click starts a new run unless it follows the previous click of its
        -- session and selector closely in time and place.
        marked AS (
            SELECT c.selector, c.session_id, c.lone_actor, c.at, c.event_id,
                   CASE WHEN c.at - lag(c.at) OVER w < %(rage_seconds)s * interval '1 second'
                         AND (c.x IS NULL OR c.y IS NULL OR lag(c.x) OVER w IS NULL
                              OR lag(c.y) OVER w IS NULL
                              OR abs(c.x - lag(c.x) OVER w) + abs(c.y - lag(c.y) OVER w) < %(rage_px)s)
                        THEN 0 ELSE 1 END AS starts
            FROM clicks c
            WINDOW w AS (PARTITION BY c.session_id, c.lone_actor, c.selector ORDER BY c.at, c.event_id)),
        runs AS (
            SELECT selector, count(*) AS clicks
            FROM (SELECT selector, session_id, lone_actor,
                         sum(starts) OVER (PARTITION BY session_id, lone_actor, selector
                                           ORDER BY at, event_id) AS run
                  FROM marked) m
            GROUP BY selector, session_id, lone_actor, run),
        per_selector AS (
            SELECT selector, sum(clicks)::bigint AS clicks,
                   count(*) FILTER (WHERE clicks >= %(rage_clicks)s) AS rage_clicks
            FROM runs GROUP BY selector)
        SELECT
            (SELECT count(*) FROM clicks) AS clicks,
            (SELECT count(DISTINCT actor) FROM clicks) AS users,
            (SELECT coalesce(sum(clicks), 0)::bigint FROM placed) AS binned_clicks,
            (SELECT count(*) FROM placed) AS cell_count,
            (SELECT coalesce(sum(rage_clicks), 0)::bigint FROM per_selector) AS rage_clicks,
            (SELECT coalesce(json_agg(json_build_object('x', x, 'y', y, 'clicks', clicks)
                                      ORDER BY clicks DESC, y, x), '[]')
             FROM (SELECT * FROM placed ORDER BY clicks DESC, y, x LIMIT %(max_cells)s) t) AS cells,
            (SELECT coalesce(json_agg(json_build_object(
                        'element_selector', selector, 'clicks', clicks, 'rage_clicks', rage_clicks)
                        ORDER BY clicks DESC, rage_clicks DESC, selector), '[]')
             FROM (SELECT * FROM per_selector WHERE selector IS NOT NULL
                   ORDER BY clicks DESC, rage_clicks DESC, selector LIMIT %(limit)s) t) AS selectors"""
    return Query(statement, where.params, lambda rows: _shape(p, rows), "events", p.period)


def _shape(p: Params, rows: list[Row]) -> Result:
    row = rows[0]
    cells = [Cell(int(c["x"]), int(c["y"]), int(c["clicks"])) for c in row["cells"]]
    selectors = [SelectorRow(s["element_selector"], int(s["clicks"]), int(s["rage_clicks"]))
                 for s in row["selectors"]]
    count = int(row["cell_count"])
    totals = Totals(int(row["clicks"]), int(row["binned_clicks"]), count, int(row["rage_clicks"]),
                    int(row["users"]))
    return Result(p.page, p.bin_px, cells, count > len(cells), selectors, totals)
