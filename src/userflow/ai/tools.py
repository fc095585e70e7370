"""The AI analyst's tools: one per metric, describe_data and run_sql (the MCP server's and the report's).

A metric tool is its query API endpoint (api/endpoints.py) by another door:
its arguments are read by the metric's own `from_args` (`from_body` for the
funnel), so they are validated and refused exactly as the API's, and it runs
the metric's `build` through a Reader (one tenant's read key, the reader
role). Every answer says how it was computed: the metric's definition, the
range and filters, `meta` (the rollup or relation read, rows, SQL time) and
the population: how many sessions, users and events stand behind it.

`answer` turns the errors a caller can fix (bad arguments, an unknown
experiment, refused SQL, a timeout) into an error payload that names them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any, Final

import orjson
import psycopg

from userflow.ai import describe, schemas
from userflow.ai.reader import Reader, SqlRefused
from userflow.analytics import filters, sessions
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters, NotAuthorized, NotFound
from userflow.analytics.filters import Filters, Where
from userflow.analytics.query import Query
from userflow.api.endpoints import ENDPOINTS, Endpoint
from userflow.events.errors import FieldError

Handler = Callable[[Reader, dict[str, Any]], dict[str, Any]]

POPULATION: Final = ("the sessions (session_rollup) that started in the range and pass the "
                     "filters, their distinct users and their events")


class UnknownTool(LookupError):
    """No tool has that name."""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str  # e.g. "sessions", "funnel", "describe_data", "run_sql"
    description: str  # what it computes: the metric definition, edge cases
    input_schema: dict[str, Any]  # JSON Schema of the arguments
    handler: Handler = field(repr=False)

    def call(self, reader: Reader, arguments: dict[str, Any]) -> dict[str, Any]:
        """The tool's answer, JSON-ready; raises BadParameters, NotFound, SqlRefused, …"""
        if not isinstance(arguments, dict):
            raise BadParameters([FieldError("arguments", "must be an object")])
        answer: dict[str, Any] = _jsonable(self.handler(reader, arguments))
        return answer


@dataclass(frozen=True, slots=True)
class Outcome:
    content: dict[str, Any]
    is_error: bool


def _jsonable(value: Any) -> Any:
    def other(obj: Any) -> Any:
        if isinstance(obj, Decimal):  # PostgreSQL's sums of integers are numeric
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON")
    return orjson.loads(orjson.dumps(value, default=other, option=orjson.OPT_NON_STR_KEYS))


def _definition(doc: str | None) -> str:
    """A docstring's first paragraph: the metric in a sentence or two."""
    return " ".join((doc or "").strip().split("\n\n", 1)[0].split())


def _params(endpoint: Endpoint, schema: dict[str, Any], arguments: dict[str, Any]) -> Any:
    if endpoint.from_body is not None:
        return endpoint.from_body(arguments)
    assert endpoint.from_args is not None
    query, wrong = schemas.as_query(schema, arguments)
    errors = [FieldError(name, reason) for name, reason in wrong]
    try:
        params = endpoint.from_args(Args(query))
    except BadParameters as exc:
        named = {e.field for e in errors}
        raise BadParameters(errors + [e for e in exc.errors if e.field not in named]) from None
    if errors:
        raise BadParameters(errors)
    return params


def population(metric: str, params: Any, built: Query[Any]) -> Query[dict[str, int]]:
    """How many sessions, users and events stand behind a metric's answer (POPULATION)."""
    chosen: Filters = getattr(params, "filters", Filters())
    if metric == "heatmap":  # the heatmap's page is its subject, not a filter
        chosen = replace(chosen, page=(params.page,))
    elif metric == "experiments":
        chosen = replace(chosen, experiment=(params.experiment_id,))
    elif metric == "bots":
        chosen = replace(chosen, include_bots=True)
    elif metric == "timeline":
        chosen = Filters(include_bots=params.include_bots)
    where = filters.on_sessions(chosen, Where(), prefix="pop_")
    if metric == "timeline":
        where.add("s.actor = %(pop_user)s", pop_user=params.user_id)
    if built.period is not None:
        sessions.in_period(built.period, where)
    statement = ("SELECT count(*) AS sessions, count(DISTINCT s.actor) AS users,"
                 " coalesce(sum(s.events), 0)::bigint AS events"
                 f" FROM tenant.session_rollup s WHERE {where.sql()}")
    return Query(statement, where.params, lambda rows: dict(rows[0]), "session_rollup",
                 built.period)


def _call_metric(endpoint: Endpoint, schema: dict[str, Any], reader: Reader,
                 arguments: dict[str, Any]) -> dict[str, Any]:
    metric = schemas.metric_name(endpoint)
    params = _params(endpoint, schema, arguments)
    built = endpoint.build(params)
    answer, counted = reader.run_all([built, population(metric, params, built)])
    chosen = getattr(params, "filters", None)
    return {"metric": metric,
            "definition": _definition(sys.modules[endpoint.build.__module__].__doc__),
            "range": built.period.as_json() if built.period is not None else None,
            "filters": chosen.as_json() if chosen is not None else None,
            "result": answer.result, "meta": answer.meta.as_json(),
            "population": {**counted.result, "of": POPULATION}}


def _metric_tool(endpoint: Endpoint) -> Tool:
    module = sys.modules[endpoint.build.__module__]
    schema = schemas.for_endpoint(endpoint, module)
    description = f"{endpoint.summary}.\n\n{(module.__doc__ or '').strip()}"
    return Tool(schemas.metric_name(endpoint), description, schema,
                partial(_call_metric, endpoint, schema))


def _no_arguments(arguments: dict[str, Any]) -> None:
    if arguments:
        raise BadParameters([FieldError(str(name)[:64], "unknown parameter")
                             for name in sorted(arguments, key=str)])


def _describe_data(reader: Reader, arguments: dict[str, Any]) -> dict[str, Any]:
    _no_arguments(arguments)
    answers = reader.run_all([part.query for part in describe.PARTS])
    return {"definition": _definition(describe.__doc__), **describe.assemble(answers)}


RUN_SQL_DESCRIPTION: Final = """One read-only SQL statement over this tenant's views, for what the metric tools do not cover.

Reads tenant.events (every event with its page_url, page_path, actor = user_id
else anonymous_id, device, place, referrer, utm_*, experiment_id and variant,
is_bot), tenant.session_rollup (a row per session), tenant.session_page_rollup
(a row per session and page), tenant.actor_hour_rollup (events per user and
UTC hour) and tenant.company; describe_data lists their columns. Unqualified
names are the tenant views' (`events` is tenant.events). Leave bots out with
`NOT is_bot`, as every metric does.

It runs as the tenant's read-only role in a read-only transaction, under a
statement timeout, as exactly one statement that returns rows (SELECT, WITH …
SELECT, VALUES, TABLE, EXPLAIN, SHOW); writes, DDL, COPY, other schemas'
tables and changing the read scope are refused with the database's reason.
The answer holds at most a fixed number of rows (and bytes); `cut` counts the
rows left out, so aggregate in SQL rather than fetching rows."""


def _run_sql(reader: Reader, arguments: dict[str, Any]) -> dict[str, Any]:
    statement = arguments.get("sql")
    _no_arguments({k: v for k, v in arguments.items() if k != "sql"})
    got = reader.sql(statement)
    limits = reader.limits
    return {"definition": "the statement itself, over this tenant's views", "sql": statement,
            "columns": got.columns, "rows": got.rows, "row_count": len(got.rows), "cut": got.cut,
            "limits": {"max_rows": limits.sql_max_rows, "max_bytes": limits.sql_max_bytes,
                       "statement_timeout_ms": limits.sql_timeout_ms},
            "meta": {"source": "run_sql", "rows": len(got.rows), "sql_ms": round(got.sql_ms, 2)}}


TOOLS: Final[tuple[Tool, ...]] = (
    *(_metric_tool(endpoint) for endpoint in ENDPOINTS),
    Tool("describe_data", "What this tenant's data holds, to read before asking.\n\n"
         + (describe.__doc__ or "").strip(),
         {"type": "object", "properties": {}, "additionalProperties": False}, _describe_data),
    Tool("run_sql", RUN_SQL_DESCRIPTION,
         {"type": "object", "required": ["sql"], "additionalProperties": False,
          "properties": {"sql": {"type": "string", "description": "One SQL statement"}}},
         _run_sql),
)
_BY_NAME: Final = {t.name: t for t in TOOLS}


def definition(t: Tool) -> str:
    """A tool's definition in a sentence or two."""
    return _definition(t.description)


def tool(name: str) -> Tool:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownTool(f"no tool {name[:64]!r}; the tools: {', '.join(_BY_NAME)}") from None


def answer(reader: Reader, name: str, arguments: dict[str, Any] | None) -> Outcome:
    """A tool's answer, or an error payload naming what to fix (`code`, `message`, `errors`)."""
    def refused(code: str, message: str, errors: list[FieldError] | None = None,
                **extra: Any) -> Outcome:
        return Outcome({"code": code, "message": message,
                        "errors": [e.as_json() for e in errors or []], **extra}, True)
    try:
        return Outcome(tool(name).call(reader, arguments if arguments is not None else {}), False)
    except UnknownTool as exc:
        return refused("unknown_tool", str(exc))
    except BadParameters as exc:
        return refused("invalid_arguments", str(exc), exc.errors)
    except NotFound as exc:
        return refused("not_found", str(exc))
    except NotAuthorized as exc:
        return refused("unauthorized", f"a live read key is required ({exc})")
    except SqlRefused as exc:
        return refused("sql_refused", str(exc), sqlstate=exc.sqlstate)
    except psycopg.errors.QueryCanceled:
        return refused("query_timeout", "the question took longer than the server allows; narrow "
                       "the range or the filters")
