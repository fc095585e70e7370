"""What Grafana does to a PostgreSQL panel's SQL before it runs, for the dashboards' tests.

Two passes, in Grafana's order:

1. Template variables, in the browser (`templateSrv.replace` with the SQL data
   sources' `interpolateVariable`): `$name` and `${name}` become the variable's
   current value. A single value goes in as it is, its single quotes doubled
   (the SQL puts it inside '...'); a number goes in as it is. Names Grafana does
   not know are left alone; here an unknown name that is not a macro is an
   error, so a misspelt variable fails the test instead of the query.
2. Macros, in the backend (pkg/tsdb/grafana-postgresql-datasource/macros.go):
   `$__name(args)`, arguments split on commas. Only the macros the dashboards
   use are here, each as Grafana writes it; any other is an error, as in Grafana.

Multi-value and "All" variables, which Grafana quotes and joins, are not used
by the dashboards and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

# Grafana's variable syntax (public/app/features/variables/utils.ts), the forms
# the dashboards use: $name and ${name}.
_VARIABLE: Final = re.compile(r"\$(\w+)|\$\{(\w+)\}")
# The backend's macro pattern (macros.go: sExpr).
_MACRO: Final = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
# gtime.ParseInterval's fixed units (months and years depend on the calendar: not used).
_UNITS: Final = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1),
                 "m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
                 "w": timedelta(weeks=1)}
_INTERVAL: Final = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")


class GrafanaSQLError(ValueError):
    """The SQL names a variable or macro Grafana would not expand (as Grafana's error says)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The dashboard's time picker: aware datetimes."""

    start: datetime
    end: datetime


def interpolate(sql: str, variables: Mapping[str, str | int]) -> str:
    """Template variables replaced by their values, as the browser does before sending."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            if name.startswith("__"):
                return m.group(0)  # a macro (or a built-in): the backend's
            raise GrafanaSQLError(f"unknown variable {name!r}")
        given = variables[name]
        if isinstance(given, int):
            return str(given)
        if not isinstance(given, str):
            raise GrafanaSQLError(f"variable {name!r}: only single values are supported")
        return given.replace("'", "''")

    return _VARIABLE.sub(value, sql)


def rfc3339nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano of a UTC time: no trailing zeros in the fraction, none at all if 0."""
    utc = moment.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def parse_interval(text: str) -> timedelta:
    """gtime.ParseInterval for the fixed units: '1h', '1d', '30s', '1w'."""
    m = _INTERVAL.fullmatch(text.strip("'"))
    if m is None:
        raise GrafanaSQLError(f"error parsing interval {text}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def go_float(number: float) -> str:
    """Go's %v of a float64: the shortest digits, exponent form from 1e+06 on (and below 1e-04)."""
    if number == 0:
        return "0"
    digits, exponent = _shortest(number)
    magnitude = exponent + len(digits) - 1
    sign = "-" if number < 0 else ""
    if magnitude < -4 or magnitude >= 6:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if magnitude < 0 else '+'}{abs(magnitude):02d}"
    text = format(Decimal(f"{sign}0.{digits}e{magnitude + 1}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _shortest(number: float) -> tuple[str, int]:
    """The shortest round-tripping decimal digits of |number| and their exponent (Python's repr
    and Go's strconv agree on these)."""
    sign, digits, exponent = Decimal(repr(abs(number))).as_tuple()
    text = "".join(map(str, digits))
    stripped = text.rstrip("0")
    assert isinstance(exponent, int) and not sign
    return stripped, exponent + len(text) - len(stripped)


def expand_macros(sql: str, window: TimeRange) -> str:
    """The macros replaced as the backend does, for a query over `window`."""

    def macro(m: re.Match[str]) -> str:
        name, args = m.group(1), [a.strip(" ") for a in m.group(2).split(",")]
        # Before Grafana 5.3 $__timeGroup added the alias itself; a comma right after
        # the call still means that (macros.go looks at the first occurrence).
        if name == "__timeGroup":
            at = sql.find(m.group(0)) + len(m.group(0))
            if at < len(sql) and sql[at] == ",":
                name = "__timeGroupAlias"
        return _evaluate(name, args, window)

    return _MACRO.sub(macro, sql)


def _evaluate(name: str, args: list[str], window: TimeRange) -> str:
    start, end = rfc3339nano(window.start), rfc3339nano(window.end)
    if name == "__timeFrom":
        return f"'{start}'"
    if name == "__timeTo":
        return f"'{end}'"
    if name == "__timeFilter":
        if not args[0]:
            raise GrafanaSQLError(f"missing time column argument for macro {name}")
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise GrafanaSQLError(f"macro {name} needs time column and interval and optional fill value")
        seconds = go_float(parse_interval(args[1]).total_seconds())
        group = f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    raise GrafanaSQLError(f'unknown macro "{name}"')


def render(sql: str, variables: Mapping[str, str | int], window: TimeRange) -> str:
    """The statement Grafana sends to PostgreSQL for `sql` with these variables and this range."""
    return expand_macros(interpolate(sql, variables), window)
