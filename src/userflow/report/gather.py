"""The report's own questions: fixed calls of the analyst's tools (ai/tools.py) for one range.

Every data section is drawn from these answers and nothing else, so a figure
in the report is a tool's figure (the MCP server's, the query API's). Some
questions follow from earlier answers: the funnel is `--funnel`'s steps, else
the most travelled path of two or more pages (paths); the experiments are those
describe_data lists, the features the range's custom events (run_sql, the tool
for what no metric covers); the experiments' goal is `--goal`, else the
funnel's last step when it is a custom event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Final, Literal

from userflow.ai import tools
from userflow.ai.reader import Reader
from userflow.analytics.anomalies import DEFAULT_ERROR_EVENT
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import EVENT_TYPES
from userflow.analytics.period import Period
from userflow.events.errors import FieldError

Caller = Literal["report", "claude"]
BREAKDOWNS: Final = ("device_type", "browser", "os", "country", "referrer", "utm_source")
DEVICES: Final = ("desktop", "mobile", "tablet")
FEATURES_SHOWN: Final = 5
FUNNEL_MAX_STEPS: Final = 4
# The tracker's own events are no features, and an error is none either.
_NOT_FEATURES: Final = frozenset({"Experiment Viewed", DEFAULT_ERROR_EVENT})
# The custom events of the range by users (describe_data's names are of every event type, page
# views' names too). The bounds are the report's own ISO timestamps, not anyone's input.
_CUSTOM_EVENTS: Final = ("SELECT event_name, count(DISTINCT actor) AS users FROM events"
                         " WHERE event_type = 'custom' AND NOT is_bot"
                         " AND event_timestamp >= '{start}' AND event_timestamp < '{end}'"
                         " GROUP BY event_name ORDER BY users DESC, event_name LIMIT 20")


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call and its answer, as the appendix lists it."""

    caller: Caller
    name: str
    arguments: dict[str, Any]
    content: dict[str, Any]
    is_error: bool
    seconds: float


@dataclass(slots=True)
class Gathered:
    period: Period
    calls: list[Call] = field(default_factory=list)
    answers: dict[str, Call] = field(default_factory=dict)  # by the report's own key
    funnel_steps: list[dict[str, str]] = field(default_factory=list)
    goal: str | None = None

    def result(self, key: str) -> dict[str, Any] | None:
        """The tool's result for `key`, None when it failed (the section says why)."""
        call = self.answers.get(key)
        return None if call is None or call.is_error else call.content.get("result", call.content)


def call(reader: Reader, caller: Caller, name: str, arguments: dict[str, Any]) -> Call:
    started = perf_counter()
    outcome = tools.answer(reader, name, arguments)
    return Call(caller, name, arguments, outcome.content, outcome.is_error,
                perf_counter() - started)


def parse_funnel(text: str) -> list[dict[str, str]]:
    """`--funnel`'s steps: "page_view /products, custom Product Added, form_submit form#x".

    A step is an event type, then a page (a path: starts with /), a custom event's name, or
    an element selector. Raises BadParameters naming the step that cannot be read.
    """
    steps: list[dict[str, str]] = []
    for i, part in enumerate(p.strip() for p in text.split(",")):
        kind, _, target = part.partition(" ")
        target = target.strip()
        if kind not in EVENT_TYPES:
            raise BadParameters([FieldError(f"funnel.{i}", f"{part[:64]!r} does not start with an"
                                            " event type: " + ", ".join(EVENT_TYPES))])
        step = {"event_type": kind}
        if target.startswith("/"):
            step["page"] = target
        elif target:
            step["event_name" if kind == "custom" else "element_selector"] = target
        steps.append(step)
    return steps


def _range(p: Period) -> dict[str, str]:
    return {"from": p.start.isoformat(), "to": p.end.isoformat(), "tz": p.tz}


def gather(reader: Reader, period: Period, funnel: list[dict[str, str]] | None, goal: str | None,
           step: Callable[[str], None]) -> Gathered:
    """Every question of the report; `step` is told each one's name as it starts."""
    g = Gathered(period)
    span = _range(period)

    def ask(key: str, name: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        step(key)
        done = call(reader, "report", name, arguments)
        g.calls.append(done)
        g.answers[key] = done
        return g.result(key)

    described = ask("describe_data", "describe_data", {}) or {}
    ask("overview", "overview", {**span, "interval": "day"})
    ask("sessions", "sessions", span)
    for dimension in BREAKDOWNS:
        ask(f"breakdown.{dimension}", "breakdown", {**span, "dimension": dimension, "limit": 10})
    ask("pages", "pages", {**span, "limit": 15})
    paths = ask("paths", "paths", {**span, "limit": 10}) or {}
    g.funnel_steps = funnel or _main_path(paths)
    if g.funnel_steps:
        ask("funnel", "funnel", {**span, "steps": g.funnel_steps, "breakdown": "device_type"})
    last = g.funnel_steps[-1] if g.funnel_steps else {}
    g.goal = goal or (last.get("event_name") if last.get("event_type") == "custom" else None)
    for experiment in sorted(described.get("experiments") or {}):
        if g.goal:
            ask(f"experiments.{experiment}", "experiments",
                {**span, "experiment_id": experiment, "goal_event_type": "custom",
                 "goal_event_name": g.goal})
    custom = ask("custom_events", "run_sql", {"sql": _CUSTOM_EVENTS.format(
        start=period.start.isoformat(), end=period.end.isoformat())}) or {}
    names = [row[0] for row in custom.get("rows", [])]
    for feature in [n for n in names if n not in _NOT_FEATURES][:FEATURES_SHOWN]:
        ask(f"adoption.{feature}", "adoption", {**span, "feature": feature})
    for key, arguments in _anomaly_questions(g.funnel_steps, names):
        ask(key, "find_anomalies", {**span, **arguments})
    return g


def _main_path(paths: dict[str, Any]) -> list[dict[str, str]]:
    """The most travelled sequence of two or more pages, as page-view steps."""
    for sequence in paths.get("sequences", []):
        pages = sequence["pages"][:FUNNEL_MAX_STEPS]
        if len(pages) >= 2:
            return [{"event_type": "page_view", "page": page} for page in pages]
    return []


def _anomaly_questions(funnel: list[dict[str, str]], event_names: list[str]
                       ) -> list[tuple[str, dict[str, Any]]]:
    """The series the report opens with: traffic by the hour and the day, bounce, errors, and
    the funnel's conversion, each device on its own where the device may be the cause."""
    asked: list[tuple[str, dict[str, Any]]] = [
        ("anomalies.sessions.hour", {"metric": "sessions", "interval": "hour"}),
        ("anomalies.sessions.day", {"metric": "sessions", "interval": "day"}),
        ("anomalies.events.day", {"metric": "events", "interval": "day"}),
        ("anomalies.bounce_rate.day", {"metric": "bounce_rate", "interval": "day"}),
    ]
    asked += [(f"anomalies.bounce_rate.day.{d}", {"metric": "bounce_rate", "device_type": d})
              for d in DEVICES]
    if DEFAULT_ERROR_EVENT in event_names:
        asked.append(("anomalies.page_errors.day", {"metric": "page_errors"}))
    if funnel:
        conversion = {"metric": "funnel_conversion", "steps": funnel}
        asked.append(("anomalies.funnel_conversion.day", conversion))
        asked += [(f"anomalies.funnel_conversion.day.{d}", {**conversion, "device_type": d})
                  for d in DEVICES]
    return asked
