"""find_anomalies: the points of a metric's daily or hourly series that leave their own seasonal baseline.

Metrics (each a series of buckets: local days in `tz`, or UTC hours):
- events: events in the bucket (the overview's series);
- sessions: sessions whose first event is in the bucket (the overview's series);
- bounce_rate: bounced sessions / sessions of the bucket (sessions.py's definition);
- funnel_conversion: of the actors entering the funnel (`steps`, as funnel.py's) in
  the day, the share who reach its last step within `window_seconds`; one funnel
  a day, so daily only;
- page_errors: custom events named `error_event` in the bucket (default
  "$exception", PostHog's name for a captured exception: DESIGN's event types
  have no error type, so an error is a custom event the site names); the common
  filter `page` narrows them to a page's.
The common filters apply as they do to each metric's own endpoint.

What is judged, against what:
- The judged points are the complete buckets of [from, to) (`from` taken back to
  the start of its bucket): a bucket still running (it ended less than 5
  minutes ago, the rollups' lag; for a funnel, its conversion window has not yet
  closed) is left out, as is a bucket cut by `to`.
- Their baseline is the series itself, with history before `from`: 28 days
  (four weekly cycles) for days, 7 days (seven daily cycles) for hours; the
  seasonal cycle is a week of days or a day of hours. History starts no earlier
  than the tenant's data (its first session): the buckets before it are no
  history at all, not zeros.
- At least 3 whole cycles (21 days, 72 hours) of complete buckets with a value
  are needed from the tenant's first session to `to`; with fewer the answer
  says so (`enough_history` false, `note`) and lists no anomaly.
- The method (a robust linear model of trend and seasonal levels; a point's
  robust z is the smaller of its MAD-based and its chance z-score) is
  baseline.py's; a point is an anomaly when |robust z| >= `threshold` (default
  3.5). Each says its expected and actual value, the deviation (actual -
  expected), the relative change (deviation / expected; null when expected is
  0), the robust z, the direction and `n`: the events, sessions, entering
  actors or errors behind the point.
- Events come in bursts (one long visit is hundreds of them), so an hour's
  events stray further than a normal spread says: read traffic hour by hour as
  sessions, which arrive one visit at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Final, Literal

import orjson

from userflow.analytics import baseline, filters, funnel, overview, sessions
from userflow.analytics import period as periods
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row
from userflow.events.errors import FieldError

Metric = Literal["events", "sessions", "bounce_rate", "funnel_conversion", "page_errors"]
METRICS: Final[tuple[Metric, ...]] = ("events", "sessions", "bounce_rate", "funnel_conversion",
                                      "page_errors")
Interval = Literal["day", "hour"]
INTERVALS: Final[tuple[Interval, ...]] = ("day", "hour")
# Points in one seasonal cycle, and the history read before `from`.
SEASON: Final = {"day": 7, "hour": 24}
HISTORY: Final = {"day": timedelta(days=28), "hour": timedelta(days=7)}
_STEP: Final = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
# How far behind the events the rollups may be (pg_cron refreshes them every minute).
_SETTLE: Final = timedelta(minutes=5)
DEFAULT_THRESHOLD: Final = 3.5
MIN_THRESHOLD: Final = 2.0
MAX_THRESHOLD: Final = 10.0
DEFAULT_ERROR_EVENT: Final = "$exception"
# A funnel is run once a day of the range and its history: two months and the four weeks.
FUNNEL_MAX_DAYS: Final = 62
DEFINITIONS: Final[dict[Metric, str]] = {
    "events": "events in the bucket (bots left out unless include_bots)",
    "sessions": "sessions whose first event is in the bucket",
    "bounce_rate": "sessions of the bucket with exactly one page view and no click, form submit"
                   " or custom event / sessions of the bucket",
    "funnel_conversion": "of the actors entering the funnel (step 1) in the day, the share who"
                         " reach its last step within the conversion window",
    "page_errors": "custom events named error_event in the bucket (the page filter: on that page)",
}
_RATES: Final = frozenset({"bounce_rate", "funnel_conversion"})
_PLACEHOLDER: Final = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    metric: Metric
    interval: Interval = "day"
    filters: Filters = field(default_factory=Filters)
    threshold: float = DEFAULT_THRESHOLD
    steps: tuple[funnel.Step, ...] = ()  # funnel_conversion only
    window_seconds: int = funnel.DEFAULT_WINDOW_S
    error_event: str = DEFAULT_ERROR_EVENT  # page_errors only

    def __post_init__(self) -> None:
        errors = _problems(self)
        if errors:
            raise BadParameters(errors)

    @property
    def kind(self) -> baseline.Kind:
        return "rate" if self.metric in _RATES else "count"

    @property
    def judged_from(self) -> datetime:
        """`from`, back to the start of its bucket."""
        if self.interval == "hour":
            return self.period.start.replace(minute=0, second=0, microsecond=0)
        local = self.period.start.astimezone(self.period.zone)
        return datetime.combine(local.date(), time(), self.period.zone).astimezone(UTC)

    @property
    def examined(self) -> Period:
        """The judged range with its history before it."""
        zone = self.period.zone
        # Days step in the zone's wall time, so 28 days back is a local midnight.
        start = (self.judged_from.astimezone(zone) - HISTORY[self.interval]).astimezone(UTC)
        return Period(start, self.period.end, self.period.tz)


def _problems(p: Params) -> list[FieldError]:
    errors: list[FieldError] = []
    if p.metric not in METRICS:
        return [FieldError("metric", "must be one of " + ", ".join(METRICS))]
    if p.interval not in INTERVALS:
        errors.append(FieldError("interval", "must be one of " + ", ".join(INTERVALS)))
    if not MIN_THRESHOLD <= p.threshold <= MAX_THRESHOLD:
        errors.append(FieldError("threshold", f"must be between {MIN_THRESHOLD:g} and"
                                              f" {MAX_THRESHOLD:g}"))
    if p.metric == "funnel_conversion":
        if p.interval != "day":
            errors.append(FieldError("interval", "funnel_conversion is a daily series: a"
                                                 " funnel's conversion window outlasts an hour"))
        if p.period.days > FUNNEL_MAX_DAYS:
            errors.append(FieldError("to", f"funnel_conversion covers at most {FUNNEL_MAX_DAYS}"
                                           " days (a funnel runs for each day)"))
        try:
            funnel.Params(p.period, p.steps, p.window_seconds, filters=p.filters)
        except BadParameters as exc:
            errors.extend(exc.errors)
    elif p.steps:
        errors.append(FieldError("steps", "only for metric funnel_conversion"))
    if p.metric == "page_errors":
        if not p.error_event or len(p.error_event) > funnel.MAX_TEXT or "\x00" in p.error_event:
            errors.append(FieldError("error_event", f"must be 1 to {funnel.MAX_TEXT} characters"
                                                    " without NUL"))
        errors.extend(FieldError(name, "page_errors chooses the events itself (custom events"
                                       " named error_event)")
                      for name, _ in p.filters.active() if name in ("event_type", "event_name"))
    if p.interval in INTERVALS and not errors:
        span = p.examined
        if span.end - span.start > _STEP[p.interval] * periods.MAX_BUCKETS:
            errors.append(FieldError("to", f"the range and its {HISTORY[p.interval].days} days of"
                                           f" history hold over {periods.MAX_BUCKETS}"
                                           f" {p.interval}s"))
    return errors


@dataclass(frozen=True, slots=True)
class Point:
    t: str  # the bucket's start, in the zone
    value: float | None  # None: a rate over an empty bucket
    n: int  # events, sessions, entering actors or errors behind the point
    expected: float | None  # None where too little history was found to fit
    robust_z: float | None
    judged: bool  # in [from, to); else history


@dataclass(frozen=True, slots=True)
class Anomaly:
    t: str
    actual: float
    expected: float
    deviation: float
    relative_change: float | None
    robust_z: float
    direction: Literal["up", "down"]
    n: int


@dataclass(frozen=True, slots=True)
class Result:
    metric: str
    definition: str
    interval: str
    method: str
    threshold: float
    season: int
    history_from: str | None  # the first bucket of the series (history included)
    enough_history: bool
    note: str | None
    anomalies: list[Anomaly]
    series: list[Point]


@dataclass(frozen=True, slots=True)
class _Bucket:
    t: datetime
    value: float | None
    n: int


def from_args(a: Args) -> Params:
    metric = a.choice("metric", METRICS, "events")
    if a.text("metric") is None:
        a.required("metric")
    days = FUNNEL_MAX_DAYS if metric == "funnel_conversion" else periods.MAX_DAYS
    span, chosen = a.period(days), a.filters()
    interval = a.choice("interval", INTERVALS, "day")
    threshold = a.number("threshold", DEFAULT_THRESHOLD, MIN_THRESHOLD, MAX_THRESHOLD)
    window = a.integer("window_seconds", funnel.DEFAULT_WINDOW_S, 1, funnel.MAX_WINDOW_S)
    error_event = a.text("error_event", DEFAULT_ERROR_EVENT) or DEFAULT_ERROR_EVENT
    steps: tuple[funnel.Step, ...] = ()
    if (text := a.text("steps")) is not None:
        try:
            steps = funnel.steps_of(a.errors, orjson.loads(text))
        except orjson.JSONDecodeError:
            a.errors.append(FieldError("steps", "must be a JSON list of steps"))
    a.done()
    assert span is not None
    return Params(span, metric, interval, chosen, threshold, steps, window, error_event)


def build(p: Params) -> Query[Result]:
    span = p.examined
    if p.metric in ("events", "sessions", "page_errors"):
        inner = overview.build(overview.Params(span, p.interval, _overview_filters(p)))
        key = "sessions" if p.metric == "sessions" else "events"

        def counts(rows: list[Row]) -> list[_Bucket]:
            return [_Bucket(datetime.fromisoformat(pt.t), float(getattr(pt, key)),
                            int(getattr(pt, key))) for pt in inner.shape(rows).series]
        sql, params, source, series = inner.sql, dict(inner.params), inner.source, counts
    elif p.metric == "bounce_rate":
        sql, params = _bounce_sql(p, span)
        source, series = "session_rollup", _bounce_buckets
    else:
        sql, params, series = _funnel_union(p, span)
        source = "events"
    # The tenant's first session: the series starts there, whatever `from` asks.
    statement = (f"SELECT q.*, (SELECT min(s.started_at) FROM tenant.session_rollup s)"
                 f" AS first_session FROM ({sql}) q")
    return Query(statement, params, lambda rows: _judge(p, series(rows), _first(rows)), source,
                 p.period)


def _overview_filters(p: Params) -> Filters:
    if p.metric != "page_errors":
        return p.filters
    return replace(p.filters, event_type=("custom",), event_name=(p.error_event,))


def _bounce_sql(p: Params, span: Period) -> tuple[str, dict[str, object]]:
    where = filters.on_sessions(p.filters, sessions.in_period(span, Where()))
    where.params["tz"] = span.tz
    statement = f"""
        WITH buckets AS ({overview.buckets(p.interval)}),
        per_bucket AS (
            SELECT {overview.bucket(p.interval, "s.started_at")} AS t, {sessions.FIGURES}
            FROM tenant.session_rollup s WHERE {where.sql()} GROUP BY 1)
        SELECT b.t, coalesce(pb.sessions, 0) AS n, pb.bounce_rate AS value
        FROM buckets b LEFT JOIN per_bucket pb USING (t) ORDER BY b.t"""
    return statement, where.params


def _bounce_buckets(rows: list[Row]) -> list[_Bucket]:
    return [_Bucket(r["t"], None if not r["n"] else float(r["value"]), int(r["n"])) for r in rows]


def _funnel_union(p: Params, span: Period
                  ) -> tuple[str, dict[str, object], Callable[[list[Row]], list[_Bucket]]]:
    """One funnel a day, each its own subquery with its parameters renamed, in one statement."""
    zone = span.zone
    days: list[tuple[datetime, Query[funnel.Result]]] = []
    day = span.start.astimezone(zone)
    while (following := day + timedelta(days=1)) <= span.end:  # wall time: a DST day is 23 h
        one = Period(day.astimezone(UTC), following.astimezone(UTC), span.tz)
        days.append((day, funnel.build(funnel.Params(one, p.steps, p.window_seconds,
                                                     filters=p.filters))))
        day = following
    parts: list[str] = []
    params: dict[str, object] = {}
    for i, (_, q) in enumerate(days):
        prefix = f"d{i}_"
        renamed = _PLACEHOLDER.sub(lambda m: f"%({prefix}{m.group(1)})s", q.sql)
        parts.append(f"SELECT {i} AS day, f.* FROM ({renamed}) f")
        params.update({prefix + name: value for name, value in q.params.items()})
    statement = "\nUNION ALL\n".join(parts)  # never empty: the history alone is 28 days

    def shaped(rows: list[Row]) -> list[_Bucket]:
        by_day = {r["day"]: r for r in rows}
        out = []
        for i, (start, q) in enumerate(days):
            steps = q.shape([by_day[i]]).steps
            entered = steps[0].count
            out.append(_Bucket(start, steps[-1].conversion_from_first if entered else None,
                               entered))
        return out
    return statement, params, shaped


def _first(rows: list[Row]) -> datetime | None:
    return rows[0]["first_session"] if rows else None


def _bucket_end(p: Params, start: datetime) -> datetime:
    if p.interval == "hour":
        return start + _STEP["hour"]
    return (start.astimezone(p.period.zone) + timedelta(days=1)).astimezone(UTC)


def _judge(p: Params, buckets: list[_Bucket], first_session: datetime | None,
           now: datetime | None = None) -> Result:
    now = now or datetime.now(UTC)
    # A funnel's day is complete once its conversion window has closed too; every bucket once
    # the rollups (refreshed every minute) have caught up with its end.
    settled = now - _SETTLE - (timedelta(seconds=p.window_seconds)
                               if p.metric == "funnel_conversion" else timedelta(0))
    # From the bucket that holds the tenant's first session; that one is likely partial, so
    # it is history and never judged.
    begun = first_session or p.period.end  # no session at all: no bucket has data
    complete = [b for b in buckets if begun < _bucket_end(p, b.t) <= min(p.period.end, settled)]
    season = SEASON[p.interval]
    judged = [b.t >= p.judged_from and b.t >= begun for b in complete]
    needed = baseline.MIN_CYCLES * season
    method = (f"robust linear model (statsmodels RLM, Huber) of a trend and {season} seasonal"
              f" levels ({'log scale' if p.kind == 'count' else 'as a rate'}); robust z = the"
              " smaller of the residual's modified z-score (1.4826 MAD) and its chance"
              f" z-score ({'Poisson' if p.kind == 'count' else 'binomial'} tail); an anomaly at"
              f" |z| >= {p.threshold:g}")
    zone = p.period.zone

    def shown(t: datetime) -> str:
        return t.astimezone(zone).isoformat()
    common = dict(metric=p.metric, definition=DEFINITIONS[p.metric], interval=p.interval,
                  method=method, threshold=p.threshold, season=season,
                  history_from=shown(complete[0].t) if complete else None)
    known = sum(b.value is not None for b in complete)
    if known < needed or not any(judged):
        note = (f"{known} complete {p.interval}s with data from the tenant's first session to"
                f" `to`; finding anomalies needs {needed} ({baseline.MIN_CYCLES} cycles of"
                f" {season}) and at least one in [from, to)")
        return Result(**common, enough_history=False, note=note, anomalies=[],  # type: ignore[arg-type]
                      series=[Point(shown(b.t), b.value, b.n, None, None, j)
                              for b, j in zip(complete, judged, strict=True)])
    fitted = baseline.fit([b.value for b in complete], [b.n for b in complete], season, p.kind)
    series = [Point(shown(b.t), b.value, b.n, f.expected, f.robust_z, j)
              for b, f, j in zip(complete, fitted, judged, strict=True)]
    anomalies = [_anomaly(pt) for pt in series
                 if pt.judged and pt.robust_z is not None and abs(pt.robust_z) >= p.threshold]
    return Result(**common, enough_history=True, note=None, anomalies=anomalies,  # type: ignore[arg-type]
                  series=series)


def _anomaly(pt: Point) -> Anomaly:
    assert pt.value is not None and pt.expected is not None and pt.robust_z is not None
    deviation = pt.value - pt.expected
    return Anomaly(pt.t, pt.value, pt.expected, deviation,
                   deviation / pt.expected if pt.expected else None, pt.robust_z,
                   "up" if pt.robust_z > 0 else "down", pt.n)

