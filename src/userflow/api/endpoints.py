"""The query API's endpoints: each a metric module's `from_args`/`from_body` and `build`.

One line an endpoint; the app (app.py) turns each into a route, so an
endpoint's behaviour is the metric module's and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from userflow.analytics import breakdown, overview, pages, sessions
from userflow.analytics import adoption, experiments, retention
from userflow.analytics import bots, heatmap, realtime, timeline
from userflow.analytics import funnel, paths
from userflow.analytics.args import Args
from userflow.analytics.query import Query


# The range every ranged endpoint takes: (name, description).
RANGE: Final = (("from", "Start, inclusive: ISO date or datetime (default: 7 days before `to`)"),
                ("to", "End, exclusive: ISO date or datetime (default: tomorrow, in `tz`)"),
                ("tz", "IANA time zone of dates and buckets (default UTC)"))


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    summary: str
    build: Callable[[Any], Query[Any]]
    from_args: Callable[[Args], Any] | None = None  # GET: the query string (and path parameters)
    from_body: Callable[[Any], Any] | None = None  # POST: the JSON body
    filters: bool = True  # takes the common filters (documented in OpenAPI)
    ranged: bool = True  # takes from, to and tz
    # Its own query parameters, for OpenAPI: (name, description).
    parameters: tuple[tuple[str, str], ...] = ()


ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint("/v1/analytics/overview", "Events, users and sessions in total and over time",
             overview.build, overview.from_args,
             parameters=(("interval", "hour, day (default) or week"),)),
    Endpoint("/v1/analytics/sessions", "Sessions, bounce rate, duration and pages per session",
             sessions.build, sessions.from_args),
    Endpoint("/v1/analytics/breakdown", "Sessions by device, browser, OS, place, referrer, "
             "campaign or entry page", breakdown.build, breakdown.from_args,
             parameters=(("dimension", "Required: " + ", ".join(breakdown.DIMENSIONS)),
                         ("limit", "Rows, at most 1000 (default 100)"))),
    Endpoint("/v1/analytics/pages", "Pages: views, visitors, time on page, click-through, "
             "scroll depth, exits", pages.build, pages.from_args,
             parameters=(("limit", "Rows, at most 1000 (default 100)"),)),
    Endpoint("/v1/analytics/heatmap", "A page's clicks on a pixel grid, its most clicked selectors "
             "and their rage clicks", heatmap.build, heatmap.from_args,
             parameters=(("page", "Required: the page's path"),
                         ("bin_px", "Cell size in pixels (default 20)"),
                         ("limit", "Selectors (default 20)"))),
    Endpoint("/v1/analytics/realtime", "Active users in the last 5 minutes, events per minute "
             "for the last 30, top pages now", realtime.build, realtime.from_args,
             ranged=False, parameters=(("limit", "Top pages (default 10)"),)),
    Endpoint("/v1/analytics/users/{user_id}/timeline", "A user's events and sessions, newest "
             "first, a page at a time", timeline.build, timeline.from_args, filters=False,
             ranged=False, parameters=(("cursor", "next_cursor of the previous page"),
                                       ("limit", "Events a page (default 50, at most 500)"),
                                       ("include_bots", "Bots' events too (default false)"))),
    Endpoint("/v1/analytics/bots", "Share of events and sessions from bots, and the top bot "
             "agents", bots.build, bots.from_args),
    Endpoint("/v1/analytics/retention", "Retention: cohorts by first day or ISO week, and their "
             "returns", retention.build, retention.from_args,
             parameters=(("interval", "day (default) or week (ISO, from Monday)"),
                         ("periods", "Entries of each cohort's retained, n0 included: default "
                          "31 days (at most 92) or 12 weeks (at most 53)"))),
    Endpoint("/v1/analytics/experiments/{experiment_id}", "An A/B test: exposed, converted, lift, "
             "p-value and interval per variant, sample-ratio mismatch", experiments.build,
             experiments.from_args,
             parameters=(("goal_event_type", "Required: the goal's event type"),
                         ("goal_page", "The goal's page path, exactly"),
                         ("goal_event_name", "The goal's event name"),
                         ("control", "The control variant (default control)"))),
    Endpoint("/v1/analytics/adoption", "A feature's adoption, time to first use, DAU, WAU, MAU, "
             "stickiness", adoption.build, adoption.from_args,
             parameters=(("feature", "Required: an event name or an element selector"),)),
    Endpoint("/v1/analytics/funnel", "Funnel: actors through ordered steps, conversion and time "
             "between steps, by breakdown", funnel.build, from_body=funnel.from_body),
    Endpoint("/v1/analytics/paths", "User journeys: page sequences from session start, next or "
             "previous pages, exit pages", paths.build, paths.from_args,
             parameters=(("after", "The pages viewed right after this path"),
                         ("before", "The pages viewed right before this path (not with after)"),
                         ("limit", "Rows of each list, at most 1000 (default 20)"))),
)
