"""The analyst's prompts: a weekly UX report, a funnel's drop-off, an experiment's reading.

Each is a task for a model with the tools (tools.py): it says which tools to
ask, in what order, and the rule that holds for every prompt: a number in the
answer comes from a tool result, with the definition, range and population
that result states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

RULES: Final = """Rules for every figure you write:
- Every number comes from a tool result; quote it as given (rounding is fine, say so) and never
  compute a new figure in your head: ask a tool (run_sql for what no metric covers).
- Say how it was computed: the metric (its definition is in the result), the range and time zone,
  the filters, and how many sessions, users and events stand behind it (`population`).
- Bots are left out unless a result says otherwise. A figure over a small population (say, fewer
  than 100 sessions) is a hint, not a finding: say so.
- Start with describe_data to learn what this tenant's data holds."""


class MissingArgument(ValueError):
    """A prompt was asked for without an argument it needs."""


@dataclass(frozen=True, slots=True)
class Argument:
    name: str
    description: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    title: str
    description: str
    arguments: tuple[Argument, ...]
    render: Callable[[Mapping[str, str]], str]

    def text(self, given: Mapping[str, str] | None) -> str:
        values = {k: v for k, v in (given or {}).items() if v}
        missing = [a.name for a in self.arguments if a.required and a.name not in values]
        if missing:
            raise MissingArgument(f"{self.title}: {', '.join(missing)} is required")
        return f"{self.render(values)}\n\n{RULES}"


def _range(values: Mapping[str, str]) -> str:
    start, end, tz = values.get("from"), values.get("to"), values.get("tz", "UTC")
    if start or end:
        return f"from {start or '(7 days before to)'} to {end or 'today'} ({tz})"
    return f"the last 7 days, today included ({tz})"


def _weekly(values: Mapping[str, str]) -> str:
    return f"""Write a weekly UX report on this product's users for {_range(values)}, comparing it
with the week before where it helps.

Sections, each with the figures behind it:
1. Executive summary: three to five findings, most important first.
2. Traffic: overview (events, users, sessions per day), referrers and campaigns (breakdown).
3. Devices and browsers: breakdown by device_type, browser and os; where one does worse
   (bounce rate, session length), say by how much.
4. Sessions and bounce: sessions (bounce rate, duration, pages per session).
5. Funnels: the main conversion path (find it with paths and describe_data's pages), its
   funnel, and the step that loses the most; by device_type.
6. Content: pages (views, time on page, exits); heatmap of the page that matters most.
7. Regions: breakdown by country.
8. Experiments: each experiment in describe_data, read with experiments.
9. Adoption: the custom events (describe_data's event_names) as features, with adoption.
10. Recommendations: what to change, each tied to a finding above."""


def _funnel(values: Mapping[str, str]) -> str:
    steps = values.get("steps", "")
    given = (f"The funnel's steps: {steps}." if steps else
             "Find the main conversion path first (paths from the landing page, describe_data's "
             "pages and event names) and state the steps you chose.")
    return f"""Diagnose where and why users drop off in a funnel, for {_range(values)}.
{given}

1. Run the funnel; name the step with the largest drop_off and its conversion_from_previous.
2. Split it: breakdown by device_type, browser, country and utm_source. Which segment drops
   most at that step, and how big is it (actors at step 1)?
3. Look at the page of that step: pages (time on page, exits), heatmap (clicks, rage clicks),
   paths with before/after the step's page (where do people go instead?).
4. Check it is not the data: bots (share), and realtime or overview for a broken day.
5. Conclude: the likely cause, how sure you are (the populations), what to try."""


def _experiment(values: Mapping[str, str]) -> str:
    goal = values.get("goal_event_type")
    goal_text = (f"Its goal: event type {goal}" + (f", page {values['goal_page']}"
                                                  if values.get("goal_page") else "")
                 if goal else "Find its goal from describe_data (a custom event or a page) and say "
                              "which you chose")
    return f"""Read the experiment {values['experiment_id']} for {_range(values)}. {goal_text}.

1. Run experiments: per variant exposed and converted users, rate, lift over the control,
   p-value and 95% interval; the sample-ratio-mismatch p-value.
2. Say whether the result holds: a p-value under 0.05 with an interval that excludes 0, no
   sample-ratio mismatch (srm_p_value above 0.01), enough exposed users; if not, what is missing.
3. Check segments that could hide a difference: the experiment by device_type (the filter).
4. Conclude in one paragraph: ship, keep running, or stop, and why."""


_RANGE_ARGS: Final = (Argument("from", "Start, inclusive: ISO date (default 7 days before to)"),
                      Argument("to", "End, exclusive: ISO date (default tomorrow)"),
                      Argument("tz", "IANA time zone (default UTC)"))

PROMPTS: Final[tuple[Prompt, ...]] = (
    Prompt("weekly_ux_report", "weekly UX report",
           "A UX report of a week: traffic, devices, sessions, funnels, content, regions, "
           "experiments, adoption, recommendations", _RANGE_ARGS, _weekly),
    Prompt("diagnose_funnel_drop_off", "diagnose a funnel drop-off",
           "Where and why users leave a funnel, segment by segment",
           (Argument("steps", "The steps, e.g. 'page_view /, page_view /pricing, form_submit "
                              "/signup' (default: the main path, found first)"), *_RANGE_ARGS),
           _funnel),
    Prompt("read_experiment", "read an experiment",
           "An A/B test's result, whether it holds, and what to do",
           (Argument("experiment_id", "The experiment's id", required=True),
            Argument("goal_event_type", "The goal's event type (e.g. custom, form_submit)"),
            Argument("goal_page", "The goal's page path"), *_RANGE_ARGS), _experiment),
)
_BY_NAME: Final = {p.name: p for p in PROMPTS}


class UnknownPrompt(LookupError):
    """No prompt has that name."""


def prompt(name: str) -> Prompt:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownPrompt(f"no prompt {name[:64]!r}; the prompts: {', '.join(_BY_NAME)}") from None
