"""The JSON Schemas of the metric tools' arguments, derived from the query API's endpoints.

A metric tool takes what its endpoint takes (api/endpoints.py: the range, the
common filters, its own parameters, path parameters such as experiment_id),
typed: integers with the metric's bounds, enumerations from the metric's own
constants, a filter as a string or a list of strings. The funnel takes its
endpoint's JSON body. Validation stays the metric's (`from_args`,
`from_body`); the schema tells a client what to send.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any, Final

from userflow.analytics import breakdown, filters, funnel, heatmap, period, retention
from userflow.analytics.filters import EVENT_TYPES
from userflow.api.endpoints import RANGE, Endpoint

Schema = dict[str, Any]

_TEXT: Final[Schema] = {"type": "string"}
_VALUES: Final[Schema] = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
# What a filter matches, where it is not simply its column (analytics/filters.py).
_FILTER_NOTES: Final = {
    "page": "a page path (query string and fragment ignored); sessions: those that viewed it",
    "referrer": "the referrer's domain (lower case, no www.)",
    "event_type": "one of " + ", ".join(EVENT_TYPES) + "; sessions: those holding one",
    "event_name": "a custom event's name; sessions: those holding one",
    "experiment": "an experiment_id; sessions: those exposed to it",
    "variant": "a variant; sessions: those exposed to it",
}
# A parameter's type where it is not text, by name (and by metric where they differ).
_TYPED: Final[dict[str, Schema]] = {
    "include_bots": {"type": "boolean"},
    "dimension": {"type": "string", "enum": list(breakdown.DIMENSIONS)},
    "goal_event_type": {"type": "string", "enum": list(EVENT_TYPES)},
    "interval": {"type": "string", "enum": list(period.INTERVALS)},
}
_TYPED_BY_METRIC: Final[dict[tuple[str, str], Schema]] = {
    ("retention", "interval"): {"type": "string", "enum": list(retention.INTERVALS)},
    ("retention", "periods"): {"type": "integer", "minimum": 1,
                               "maximum": max(retention.MAX_PERIODS.values())},
    ("heatmap", "bin_px"): {"type": "integer", "minimum": 1, "maximum": heatmap.MAX_BIN_PX},
}
# Parameters the metric refuses though its endpoint takes the common filters:
# the bots metric counts bots, so include_bots does not apply.
_REFUSED: Final = {("bots", "include_bots")}


def metric_name(endpoint: Endpoint) -> str:
    """The tool's name: the metric module's (overview, funnel, …)."""
    return str(endpoint.build.__module__).rsplit(".", 1)[-1]


def _filters() -> dict[str, Schema]:
    out = {name: {**_VALUES, "description": f"Filter: {_FILTER_NOTES.get(name, name)}; a value "
                  "or a list of values, each matched exactly"} for name in filters.NAMES}
    out["include_bots"] = {"type": "boolean", "description": "Count bots too (default false)"}
    return out


def _typed(name: str, metric: str, module: ModuleType) -> Schema:
    if (metric, name) in _TYPED_BY_METRIC:
        return dict(_TYPED_BY_METRIC[(metric, name)])
    if name in _TYPED:
        return dict(_TYPED[name])
    if name == "limit":
        return {"type": "integer", "minimum": 1, "maximum": int(module.MAX_LIMIT)}
    return dict(_TEXT)


def for_endpoint(endpoint: Endpoint, module: ModuleType) -> Schema:
    """The arguments of a GET endpoint's metric as a JSON Schema object."""
    metric = metric_name(endpoint)
    if endpoint.from_body is not None:
        return funnel_schema()
    properties: dict[str, Schema] = {}
    required: list[str] = []
    for name in re.findall(r"{(\w+)}", endpoint.path):
        properties[name] = {"type": "string", "description": f"Required: the {name.replace('_', ' ')}"}
        required.append(name)
    if endpoint.ranged:
        properties.update({name: {"type": "string", "description": text} for name, text in RANGE})
    if endpoint.filters:
        properties.update(_filters())
    for name, text in endpoint.parameters:
        properties[name] = {**_typed(name, metric, module), "description": text}
        if text.startswith("Required"):
            required.append(name)
    for refused_metric, name in _REFUSED:
        if refused_metric == metric:
            properties.pop(name, None)
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def funnel_schema() -> Schema:
    """The funnel's JSON body (analytics/funnel.py from_body) as a JSON Schema."""
    step = {"type": "object", "additionalProperties": False, "required": ["event_type"],
            "properties": {
                "event_type": {"type": "string", "enum": list(EVENT_TYPES)},
                "page": {"type": "string", "description": "The page path, exactly (no query string)"},
                "element_selector": {"type": "string", "description": "The element selector, exactly"},
                "event_name": {"type": "string", "description": "A custom event's name, exactly"}}}
    properties: dict[str, Schema] = {name: {"type": "string", "description": text}
                                     for name, text in RANGE}
    properties.update({
        "steps": {"type": "array", "items": step, "minItems": funnel.MIN_STEPS,
                  "maxItems": funnel.MAX_STEPS, "description": "The ordered steps"},
        "window_seconds": {"type": "integer", "minimum": 1, "maximum": funnel.MAX_WINDOW_S,
                           "description": "Conversion window from step 1 (default "
                                          f"{funnel.DEFAULT_WINDOW_S} s, one day)"},
        "actor": {"type": "string", "enum": list(funnel.ACTORS),
                  "description": "Who goes through the steps (default user)"},
        "breakdown": {"type": "string", "enum": list(funnel.BREAKDOWNS),
                      "description": "Split by the actor's first event's value"},
        "breakdown_limit": {"type": "integer", "minimum": 1, "maximum": funnel.MAX_BREAKDOWN_LIMIT,
                            "description": f"Breakdown values (default {funnel.DEFAULT_BREAKDOWN_LIMIT})"},
    })
    properties.update(_filters())
    return {"type": "object", "properties": properties, "required": ["steps"],
            "additionalProperties": False}


def as_query(schema: Schema, arguments: dict[str, Any]) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Tool arguments as the query string a metric's `from_args` reads, and the
    arguments whose JSON type is wrong (name, reason). Names the schema lacks
    pass through, for `Args.done` to refuse as unknown."""
    properties: dict[str, Schema] = schema.get("properties", {})
    query: dict[str, list[str]] = {}
    wrong: list[tuple[str, str]] = []
    for name, value in arguments.items():
        kind = properties.get(name)
        if kind is None:
            query[name] = [""]
        elif "anyOf" in kind:
            values = [value] if isinstance(value, str) else value
            if isinstance(values, list) and all(isinstance(v, str) for v in values):
                query[name] = values
            else:
                wrong.append((name, "must be a string or a list of strings"))
        elif kind.get("type") == "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                query[name] = [str(value)]
            else:
                wrong.append((name, "must be an integer"))
        elif kind.get("type") == "boolean":
            if isinstance(value, bool):
                query[name] = [str(value).lower()]
            else:
                wrong.append((name, "must be true or false"))
        elif isinstance(value, str):
            query[name] = [value]
        else:
            wrong.append((name, "must be a string"))
    return query, wrong
