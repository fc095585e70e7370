"""An A/B test: per variant, who was exposed, who converted, and how that compares to the control.

- Exposure: an event of the range with the experiment's experiment_id and a
  variant (bots left out unless include_bots; the common filters choose the
  exposures, so they narrow the population, not the goal). A user (actor) is
  exposed at their first exposure of the range.
- A user exposed to several variants is left out of every variant (PostHog's
  default, "exclude multiple variants": their outcome belongs to no arm) and
  counted in `multiple_variant_users`; a variant whose every user was such is
  still listed, with exposed 0. The other users' variant is that of all their
  exposures, their first included.
- Conversion: a goal event of the user (goal_event_type, and when given the
  page path of page_url exactly, query string and fragment ignored, and the
  event_name; a bot's only with include_bots) at or after their first exposure
  and before `to`.
  "At" counts: the tracker tags events with the experiment, so the exposing
  event may itself be the goal (a click on the button under test).
- Per variant: rate = converted / exposed; against the control (null for the
  control itself): lift = (rate − control rate) / control rate (null when the
  control rate is 0); p_value of the two-proportion z-test with pooled
  variance, two-sided (null when the pooled rate is 0 or 1: no variance);
  ci95_low/high: the Wald interval of the difference of rates (treatment −
  control) with the normal quantile norm.ppf(0.975).
- srm_p_value: the chi-square test (scipy.stats.chisquare) of the exposed
  counts against an even split over the listed variants; null with fewer than
  two variants or no exposed user.
- An experiment with no exposure in the range is 404; a control that is not
  one of its variants is a 400 naming `control`; over 100 variants is a 400.
The SQL counts per variant; the statistics are scipy's, computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import sqrt
from typing import Final

from scipy.stats import chisquare, norm

from userflow.analytics import filters
from userflow.analytics.args import Args
from userflow.analytics.errors import NotFound, bad
from userflow.analytics.filters import EVENT_TYPES, Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row

MAX_VARIANTS: Final = 100
_Z95: Final = float(norm.ppf(0.975))


@dataclass(frozen=True, slots=True)
class Goal:
    event_type: str
    page: str | None = None
    event_name: str | None = None


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    experiment_id: str
    goal_event_type: str
    goal_page: str | None = None
    goal_event_name: str | None = None
    control: str = "control"
    filters: Filters = field(default_factory=Filters)

    def __post_init__(self) -> None:
        if not self.experiment_id:
            raise bad("experiment_id", "is required")
        if self.goal_event_type not in EVENT_TYPES:
            raise bad("goal_event_type", "must be one of " + ", ".join(EVENT_TYPES))
        if not self.control:
            raise bad("control", "must name a variant")

    @property
    def goal(self) -> Goal:
        return Goal(self.goal_event_type, self.goal_page, self.goal_event_name)


@dataclass(frozen=True, slots=True)
class VariantResult:
    variant: str
    exposed: int
    converted: int
    rate: float | None  # null when no user is left in the variant
    lift: float | None
    p_value: float | None
    ci95_low: float | None
    ci95_high: float | None


@dataclass(frozen=True, slots=True)
class Result:
    experiment_id: str
    control: str
    goal: Goal
    variants: list[VariantResult]
    srm_p_value: float | None
    multiple_variant_users: int


def from_args(a: Args) -> Params:
    period, chosen = a.period(), a.filters()
    experiment = a.required("experiment_id")
    goal_type = a.choice("goal_event_type", EVENT_TYPES, "")
    if goal_type == "" and not any(e.field == "goal_event_type" for e in a.errors):
        a.required("goal_event_type")
    goal_page, goal_name = a.text("goal_page"), a.text("goal_event_name")
    control = a.text("control", "control")
    a.done()
    assert period is not None and control is not None
    return Params(period, experiment, goal_type, goal_page, goal_name, control, chosen)


def build(p: Params) -> Query[Result]:
    params: dict[str, object] = {
        "experiment": p.experiment_id, "start": p.period.start, "end": p.period.end,
        "goal_event_type": p.goal_event_type, "limit": MAX_VARIANTS + 1}
    exposure = filters.on_events(p.filters, Where(params=params))
    exposure.add("e.experiment_id = %(experiment)s AND e.variant IS NOT NULL")
    goal = Where(params=params)
    goal.add("e.event_type::text = %(goal_event_type)s")
    if p.goal_page is not None:
        goal.add("e.page_path = %(goal_page)s", goal_page=p.goal_page)
    if p.goal_event_name is not None:
        goal.add("e.event_name = %(goal_event_name)s", goal_event_name=p.goal_event_name)
    if not p.filters.include_bots:
        goal.add("NOT e.is_bot")
    # One pass over the range's exposures and goal events, grouped by user: a
    # user converted when their last goal event is at or after their first
    # exposure (no join of goals to exposures, whose sizes the planner cannot know).
    statement = f"""
        WITH touches AS MATERIALIZED (
            SELECT e.actor,
                   CASE WHEN {exposure.sql()} THEN e.variant END AS variant,
                   CASE WHEN {exposure.sql()} THEN e.event_timestamp END AS exposed_at,
                   CASE WHEN {goal.sql()} THEN e.event_timestamp END AS goal_at
            FROM tenant.events e
            WHERE e.event_timestamp >= %(start)s AND e.event_timestamp < %(end)s
              AND e.actor IS NOT NULL AND (({exposure.sql()}) OR ({goal.sql()}))),
        assigned AS (
            SELECT min(variant) AS variant, count(DISTINCT variant) AS variants,
                   coalesce(max(goal_at) >= min(exposed_at), false) AS converted
            FROM touches GROUP BY actor HAVING count(exposed_at) > 0),
        per_variant AS (
            SELECT variant, count(*) AS exposed, count(*) FILTER (WHERE converted) AS converted
            FROM assigned WHERE variants = 1 GROUP BY variant)
        SELECT v.variant, coalesce(pv.exposed, 0) AS exposed, coalesce(pv.converted, 0) AS converted,
               (SELECT count(*) FROM assigned WHERE variants > 1) AS multiple
        FROM (SELECT DISTINCT variant FROM touches WHERE variant IS NOT NULL) v
        LEFT JOIN per_variant pv ON pv.variant = v.variant
        ORDER BY v.variant LIMIT %(limit)s"""
    return Query(statement, params, lambda rows: _shape(p, rows), "events", p.period)


@dataclass(frozen=True, slots=True)
class Arm:
    exposed: int
    converted: int

    @property
    def rate(self) -> float:
        return self.converted / self.exposed


def compare(treatment: Arm, control: Arm) -> tuple[float | None, float | None, float, float]:
    """lift, p-value, and the 95% interval of the difference of rates; both arms exposed."""
    diff = treatment.rate - control.rate
    lift = diff / control.rate if control.rate else None
    pooled = (treatment.converted + control.converted) / (treatment.exposed + control.exposed)
    se_pooled = sqrt(pooled * (1 - pooled) * (1 / treatment.exposed + 1 / control.exposed))
    p_value = float(2 * norm.sf(abs(diff) / se_pooled)) if se_pooled > 0 else None
    se = sqrt(treatment.rate * (1 - treatment.rate) / treatment.exposed
              + control.rate * (1 - control.rate) / control.exposed)
    return lift, p_value, diff - _Z95 * se, diff + _Z95 * se


def _shape(p: Params, rows: list[Row]) -> Result:
    if not rows:
        raise NotFound(f"experiment {p.experiment_id[:64]!r} has no exposures in the range")
    if len(rows) > MAX_VARIANTS:
        raise bad("experiment_id", f"the experiment has more than {MAX_VARIANTS} variants")
    arms = {r["variant"]: Arm(int(r["exposed"]), int(r["converted"])) for r in rows}
    if p.control not in arms:
        raise bad("control", f"{p.control[:64]!r} is not a variant of the experiment; its variants: "
                  + ", ".join(sorted(arms)[:10]))
    control = arms[p.control]
    variants: list[VariantResult] = []
    for name in [p.control] + sorted(v for v in arms if v != p.control):
        arm = arms[name]
        rate = arm.rate if arm.exposed else None
        if name == p.control or not arm.exposed or not control.exposed:
            variants.append(VariantResult(name, arm.exposed, arm.converted, rate,
                                          None, None, None, None))
        else:
            variants.append(VariantResult(name, arm.exposed, arm.converted, rate,
                                          *compare(arm, control)))
    exposed = [v.exposed for v in variants]
    srm = (float(chisquare(exposed).pvalue) if len(exposed) > 1 and sum(exposed) > 0 else None)
    return Result(p.experiment_id, p.control, p.goal, variants, srm, int(rows[0]["multiple"]))
