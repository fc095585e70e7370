"""Funnels: how many actors go through ordered steps, and how fast (DESIGN's definition).

A step is an event type, plus optionally the page (the path of page_url, query
string and fragment ignored, matched exactly), the element selector or the
event name (each matched exactly). The actor is a user (user_id, else
anonymous_id; identities are not merged) or, on request, a session; events
without one are not counted.

- An attempt starts at an event of step 1 in the range [from, to). The actor
  reaches step k of it with an event of step k strictly later than the one
  that reached step k−1 (an event at the same instant does not count, so one
  event never serves two steps) and at most `window_seconds` after the start:
  the window end is inclusive. Later steps may fall after `to`, within the
  window. Steps out of order do not count (the earliest event of each step
  after the previous one is taken, which reaches as far as any choice can).
- An actor's counted attempt is the earliest one that reaches their furthest
  step; its times give the median time from the previous step (seconds; the
  median of an even count is the mean of the two middle values; null when no
  actor reached the step, and for step 1).
- count of step k: actors whose counted attempt reached k; drop_off: the count
  lost since the previous step (0 for step 1); conversion_from_first and
  conversion_from_previous: count over step 1's count and over the previous
  step's (step 1's is 1 when anyone entered), 0 when the denominator is 0.
- The common filters (and the bot rule: bots are left out unless
  include_bots) apply to every event the funnel reads, as PostHog's funnel
  filters do: with device_type=mobile only mobile events can be steps.
- breakdown: an actor's value is that of their first event in the range
  (among the events the filters keep; ties by event id), `referrer` being the
  referrer's domain; a missing value is the value null. Rows come for the
  `breakdown_limit` values (default 25) with the most actors at step 1, then
  by value; `steps` is always the whole funnel.

The body (from_body): `from`, `to`, `tz`, `steps`, `window_seconds` (1 s to
90 days), `actor`, `breakdown`, `breakdown_limit` (1–100) and the common
filters (each a string or a list of strings; `include_bots` a boolean). An
unknown key is refused, and each bad field is named by its path, indices from
0 (`steps.2.event_type`). A step's page is a path: one holding a query string
or a fragment could never match, so it is refused.

One statement over tenant.events, and no join in it: the planner's estimates
through the tenant views are poor, and a nested loop it might choose over a
month of events would never end. The events that can be a step (with a
breakdown, every event of the range too), from `from` to `to` plus the window,
are read once; each distinct URL's path is worked out once into a sorted
dictionary that each event searches (width_bucket), since the regular
expression per event cost seconds; one window sort by actor gives each actor a
sorted array of times per step; each attempt finds its next step by a binary
search (width_bucket) in the next step's array, and the actor keeps the
attempt that goes furthest, earliest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal

from userflow.analytics import filters, period as periods
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import EVENT_TYPES, Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row
from userflow.events.errors import FieldError

MIN_STEPS: Final = 2
MAX_STEPS: Final = 20
MAX_WINDOW_S: Final = 90 * 86_400
DEFAULT_WINDOW_S: Final = 86_400
MAX_TEXT: Final = 2048
DEFAULT_BREAKDOWN_LIMIT: Final = 25
MAX_BREAKDOWN_LIMIT: Final = 100
Actor = Literal["user", "session"]
ACTORS: Final[tuple[Actor, ...]] = ("user", "session")
_ACTOR_SQL: Final = {"user": "e.actor", "session": "e.session_id"}
# breakdown -> its column of tenant.events (alias e), and what makes the value of it (the
# referrer's domain is worked out once an actor, not once an event)
BREAKDOWNS: Final = {
    "device_type": ("e.device_type", "{}"), "browser": ("e.browser", "{}"), "os": ("e.os", "{}"),
    "country": ("e.country", "{}"), "region": ("e.region", "{}"), "city": ("e.city", "{}"),
    "referrer": ("e.referrer", "userflow_url_host({})"), "utm_source": ("e.utm_source", "{}"),
    "utm_medium": ("e.utm_medium", "{}"), "utm_campaign": ("e.utm_campaign", "{}"),
}
# A step's optional conditions
_STEP_COLUMNS: Final = ("page", "element_selector", "event_name")
_STEP_KEYS: Final = ("event_type", *_STEP_COLUMNS)
_BODY_KEYS: Final = frozenset({"from", "to", "tz", "steps", "window_seconds", "actor", "breakdown",
                               "breakdown_limit", "include_bots", *filters.NAMES})


@dataclass(frozen=True, slots=True)
class Step:
    event_type: str
    page: str | None = None
    element_selector: str | None = None
    event_name: str | None = None


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    steps: tuple[Step, ...]
    window_seconds: int = DEFAULT_WINDOW_S
    actor: Actor = "user"
    breakdown: str | None = None
    filters: Filters = field(default_factory=Filters)
    breakdown_limit: int = DEFAULT_BREAKDOWN_LIMIT

    def __post_init__(self) -> None:
        errors = _problems(self.steps, self.window_seconds, self.actor, self.breakdown,
                           self.breakdown_limit)
        if errors:
            raise BadParameters(errors)


@dataclass(frozen=True, slots=True)
class StepResult:
    event_type: str
    page: str | None
    element_selector: str | None
    event_name: str | None
    count: int
    conversion_from_first: float
    conversion_from_previous: float
    drop_off: int
    median_seconds_from_previous: float | None


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    value: str | None
    steps: list[StepResult]


@dataclass(frozen=True, slots=True)
class Result:
    actor: str
    window_seconds: int
    steps: list[StepResult]
    breakdown: list[BreakdownRow] | None


def _problems(steps: tuple[Step, ...], window_seconds: int, actor: str, breakdown: str | None,
              breakdown_limit: int) -> list[FieldError]:
    """What is wrong with the values (their types are the caller's business)."""
    errors: list[FieldError] = []
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        errors.append(FieldError("steps", f"between {MIN_STEPS} and {MAX_STEPS} steps"))
    else:
        for i, step in enumerate(steps):
            if step.event_type not in EVENT_TYPES:
                errors.append(FieldError(f"steps.{i}.event_type",
                                         f"unknown event type {step.event_type[:64]!r}; one of "
                                         + ", ".join(EVENT_TYPES)))
            for name in _STEP_COLUMNS:
                value = getattr(step, name)
                if value is None:
                    continue
                if value == "" or len(value) > MAX_TEXT or "\x00" in value:
                    errors.append(FieldError(f"steps.{i}.{name}", f"must be 1 to {MAX_TEXT}"
                                             " characters without NUL (omit it to match any)"))
                elif name == "page" and ("?" in value or "#" in value):
                    errors.append(FieldError(f"steps.{i}.page", "a path: the query string and"
                                             " fragment are ignored, so a page holding them"
                                             " never matches"))
    if not 1 <= window_seconds <= MAX_WINDOW_S:
        errors.append(FieldError("window_seconds", f"must be between 1 and {MAX_WINDOW_S}"))
    if actor not in ACTORS:
        errors.append(FieldError("actor", "must be one of " + ", ".join(ACTORS)))
    if breakdown is not None and breakdown not in BREAKDOWNS:
        errors.append(FieldError("breakdown", "must be one of " + ", ".join(BREAKDOWNS)))
    if not 1 <= breakdown_limit <= MAX_BREAKDOWN_LIMIT:
        errors.append(FieldError("breakdown_limit", f"must be between 1 and {MAX_BREAKDOWN_LIMIT}"))
    return errors


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_text(errors: list[FieldError], where: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    errors.append(FieldError(where, "must be a string"))
    return None


def steps_of(errors: list[FieldError], given: object) -> tuple[Step, ...]:
    """Steps from a JSON list (the body's `steps`); each problem goes to `errors`, named by its
    path (`steps.2.event_type`)."""
    if not isinstance(given, list):
        errors.append(FieldError("steps", "is required: a list of steps"))
        return ()
    if len(given) > MAX_STEPS:  # not read further: the count alone is the answer (_problems)
        return ()
    steps: list[Step] = []
    for i, item in enumerate(given):
        if not isinstance(item, dict):
            errors.append(FieldError(f"steps.{i}", "must be an object"))
            item = {"event_type": "page_view"}  # holds its place, so the count is not a 2nd error
        errors.extend(FieldError(f"steps.{i}.{str(k)[:64]}", "unknown key")
                      for k in sorted(item, key=str) if k not in _STEP_KEYS)
        kind = item.get("event_type")
        if not isinstance(kind, str):
            errors.append(FieldError(f"steps.{i}.event_type", "is required: a string"))
            kind = "page_view"
        texts = {name: _optional_text(errors, f"steps.{i}.{name}", item.get(name))
                 for name in _STEP_COLUMNS}
        steps.append(Step(kind, **texts))
    return tuple(steps)


def _filters_of(errors: list[FieldError], body: Mapping[str, Any]) -> Filters:
    given: dict[str, list[str]] = {}
    for name in filters.NAMES:
        value = body.get(name)
        if value is None:
            continue
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors.append(FieldError(name, "must be a string or a list of strings"))
            continue
        given[name] = values
    bots = body.get("include_bots")
    if isinstance(bots, bool):
        given["include_bots"] = [str(bots).lower()]
    elif bots is not None:
        errors.append(FieldError("include_bots", "must be true or false"))
    try:
        return filters.parse(given)
    except BadParameters as exc:
        errors.extend(exc.errors)
        return Filters()


def from_body(body: object) -> Params:
    """Params from the JSON body of a POST; every problem is named (`steps.2.event_type`)."""
    if not isinstance(body, dict):
        raise BadParameters([FieldError("body", "must be a JSON object")])
    errors = [FieldError(str(k)[:64], "unknown key") for k in sorted(body, key=str)
              if k not in _BODY_KEYS]
    before = len(errors)
    bounds = {k: _optional_text(errors, k, body.get(k)) for k in ("from", "to", "tz")}
    span: Period | None = None
    if len(errors) == before:
        try:
            span = periods.parse(bounds["from"], bounds["to"], bounds["tz"])
        except BadParameters as exc:
            errors.extend(exc.errors)
    steps = steps_of(errors, body.get("steps"))
    window = body.get("window_seconds", DEFAULT_WINDOW_S)
    if not _is_int(window):
        errors.append(FieldError("window_seconds", "must be an integer"))
        window = DEFAULT_WINDOW_S
    actor = body.get("actor", "user")
    if not isinstance(actor, str):
        errors.append(FieldError("actor", "must be a string"))
        actor = "user"
    split = _optional_text(errors, "breakdown", body.get("breakdown"))
    limit = body.get("breakdown_limit", DEFAULT_BREAKDOWN_LIMIT)
    if not _is_int(limit):
        errors.append(FieldError("breakdown_limit", "must be an integer"))
        limit = DEFAULT_BREAKDOWN_LIMIT
    chosen = _filters_of(errors, body)
    named = {e.field for e in errors}  # a field of the wrong type is not judged again
    errors.extend(e for e in _problems(steps, window, actor, split, limit) if e.field not in named)
    if errors:
        raise BadParameters(errors)
    assert span is not None
    return Params(span, steps, window, actor, split, chosen, limit)  # type: ignore[arg-type]


def _step_sql(k: int, step: Step, params: dict[str, object]) -> tuple[str, str]:
    """Step k as a cheap test on tenant.events (e) that every event of the step passes, and
    as the exact test on the gathered rows (g, with their page's path)."""
    params[f"s{k}_type"] = step.event_type
    cheap = [f"e.event_type = %(s{k}_type)s::event_type"]
    exact = [f"g.event_type = %(s{k}_type)s::event_type"]
    for name in ("element_selector", "event_name"):
        if (value := getattr(step, name)) is not None:
            params[f"s{k}_{name}"] = value
            cheap.append(f"e.{name} = %(s{k}_{name})s")
            exact.append(f"g.{name} = %(s{k}_{name})s")
    if step.page is not None:
        params[f"s{k}_page"] = step.page
        # The path is a substring of the URL (the URL less its scheme and host, up to
        # ? or #), except "/" for a URL without one.
        if step.page != "/":
            cheap.append(f"strpos(e.page_url, %(s{k}_page)s) > 0")
        exact.append(f"g.page_path = %(s{k}_page)s")
    return "(" + " AND ".join(cheap) + ")", "(" + " AND ".join(exact) + ")"


def _chain(n: int) -> str:
    """Step k of an attempt (l1.t1 its start): the first time in a{k} after step k-1's
    (width_bucket counts the times <= it), kept when within the window; a null carries on.
    OFFSET 0 keeps each step's expression from being pasted into the next one's."""
    return "\n            ".join(
        f"CROSS JOIN LATERAL (SELECT CASE WHEN x.t <= l1.t1 + %(window_s)s * interval '1 second'"
        f" THEN x.t END AS t{k} FROM (SELECT a.a{k}[width_bucket(l{k - 1}.t{k - 1}, a.a{k}) + 1]"
        f" AS t OFFSET 0) x) l{k}" for k in range(2, n + 1))


def _figures(n: int) -> str:
    return ", ".join(
        ["count(*) AS c1"]
        + [f"count(t{k}) AS c{k}" for k in range(2, n + 1)]
        + [f"percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t{k} - t{k - 1})::float8)"
           f" AS m{k}" for k in range(2, n + 1)])


def build(p: Params) -> Query[Result]:
    n = len(p.steps)
    where = Where()
    where.add("e.event_timestamp >= %(start)s AND e.event_timestamp <= %(last)s",
              start=p.period.start, end=p.period.end,
              last=p.period.end + timedelta(seconds=p.window_seconds))
    actor = _ACTOR_SQL[p.actor]
    where.add(f"{actor} IS NOT NULL")
    tests = [_step_sql(k, s, where.params) for k, s in enumerate(p.steps, 1)]
    candidate = "(" + " OR ".join(cheap for cheap, _ in tests) + ")"
    columns = ["e.event_type"] + [f"e.{name}" for name in ("element_selector", "event_name")
                                  if any(getattr(s, name) is not None for s in p.steps)]
    by_page = any(s.page is not None for s in p.steps)
    if by_page:
        columns.append("e.page_url")
    if p.breakdown is None:
        where.add(candidate)
        if all(s.page is not None for s in p.steps):
            # A condition on the path alone is tested once per URL, inside the view: the
            # events of other pages are never read.
            where.add("e.page_path = ANY(%(pages)s)",
                      pages=sorted({s.page for s in p.steps if s.page}))
    else:
        # Every event of the range too: the actor's first one gives its value.
        where.add(f"({candidate} OR e.event_timestamp < %(end)s)")
        columns += [f"{BREAKDOWNS[p.breakdown][0]} AS value", "e.event_id"]
    filters.on_events(p.filters, where)
    where.params["window_s"] = p.window_seconds
    where.params["limit"] = p.breakdown_limit

    located = "gathered"
    if by_page:
        # A URL's path is a regular expression's work: once per distinct URL, into a sorted
        # dictionary that each event searches (width_bucket): no join, so no plan of the
        # planner's (whose estimates through the tenant views are poor) can go quadratic.
        located = """(
        SELECT g.*, d.paths[width_bucket(g.page_url COLLATE "C", d.urls)] AS page_path
        FROM gathered g CROSS JOIN (
            SELECT array_agg(url ORDER BY url) AS urls,
                   array_agg(userflow_url_path(url) ORDER BY url) AS paths
            FROM (SELECT DISTINCT page_url COLLATE "C" AS url FROM gathered
                  WHERE page_url IS NOT NULL) u) d
        OFFSET 0)"""
    flags = ", ".join(f"{exact} AS m{k}" for k, (_, exact) in enumerate(tests, 1))
    # Each actor's times of each step, sorted (the window's order), on their first row; with
    # a breakdown, the value of their first event too (every event of the range is here).
    arrays = ",\n               ".join(
        ["array_agg(t) FILTER (WHERE m1 AND t < %(end)s) OVER w AS a1"]
        + [f"array_agg(t) FILTER (WHERE m{k}) OVER w AS a{k}" for k in range(2, n + 1)]
        + (["first_value(value) OVER w AS value"] if p.breakdown else []))
    value = ", g.value, g.event_id" if p.breakdown else ""
    order = "t, event_id" if p.breakdown else "t"
    value_of = (", " + BREAKDOWNS[p.breakdown][1].format("value") + " AS value"
                if p.breakdown else "")
    times = ", ".join(f"l{k}.t{k}" for k in range(1, n + 1))
    statement = f"""
    WITH gathered AS (
        SELECT {actor} COLLATE "C" AS actor, e.event_timestamp AS t, {", ".join(columns)}
        FROM tenant.events e
        WHERE {where.sql()}
    ), matched AS (
        SELECT g.actor, g.t, {flags}{value}
        FROM {located} g
    ), ordered AS (
        SELECT actor, row_number() OVER w AS nth,
               {arrays}
        FROM matched
        WINDOW w AS (PARTITION BY actor ORDER BY {order}
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ), actors AS (
        SELECT {", ".join(f"a{k}" for k in range(1, n + 1))}{value_of}
        FROM ordered WHERE nth = 1 AND a1 IS NOT NULL
    ), counted AS (
        SELECT best.*{", a.value" if p.breakdown else ""}
        FROM actors a CROSS JOIN LATERAL (
            SELECT {times}
            FROM unnest(a.a1) AS l1(t1)
            {_chain(n)}
            ORDER BY num_nonnulls({times}) DESC, l1.t1
            LIMIT 1) best
    )"""
    if p.breakdown is None:
        statement += f"\n    SELECT true AS total, NULL::text AS value, {_figures(n)} FROM counted"
    else:
        statement += f""", grouped AS (
        SELECT grouping(value) = 1 AS total, value, {_figures(n)}
        FROM counted GROUP BY GROUPING SETS ((), (value))
    )
    SELECT * FROM (
        SELECT g.*, row_number() OVER (PARTITION BY g.total ORDER BY g.c1 DESC, g.value NULLS LAST)
               AS rank
        FROM grouped g) ranked
    WHERE total OR rank <= %(limit)s
    ORDER BY total DESC, rank"""
    return Query(statement, where.params, lambda rows: _shape(p, rows), "events", p.period)


def _steps(p: Params, row: Row | None) -> list[StepResult]:
    out: list[StepResult] = []
    first = int(row["c1"]) if row else 0
    previous = first
    for k, step in enumerate(p.steps, 1):
        count = int(row[f"c{k}"]) if row else 0
        median = row.get(f"m{k}") if row and k > 1 else None
        out.append(StepResult(
            step.event_type, step.page, step.element_selector, step.event_name, count,
            count / first if first else 0.0, count / previous if previous else 0.0,
            previous - count, None if median is None else float(median)))
        previous = count
    return out


def _shape(p: Params, rows: list[Row]) -> Result:
    total = next((r for r in rows if r["total"]), None)
    split = None if p.breakdown is None else [
        BreakdownRow(r["value"], _steps(p, r)) for r in rows if not r["total"]]
    return Result(p.actor, p.window_seconds, _steps(p, total), split)
