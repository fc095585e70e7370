"""The dashboards tests' stand-in for Grafana's SQL expansion (grafana.py), checked against what
Grafana itself produces (its macros.go and interpolateVariable). No services needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from .grafana import (
    GrafanaSQLError,
    TimeRange,
    expand_macros,
    go_float,
    interpolate,
    parse_interval,
    render,
    rfc3339nano,
)

WINDOW = TimeRange(datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
                   datetime(2026, 11, 9, 10, 30, 15, 250000, tzinfo=UTC))


def test_times_are_rfc3339nano_in_utc() -> None:
    assert rfc3339nano(datetime(2026, 11, 2, 10, 0, tzinfo=UTC)) == "2026-11-02T10:00:00Z"
    assert rfc3339nano(datetime(2026, 11, 2, 10, 0, 0, 500000, tzinfo=UTC)) == "2026-11-02T10:00:00.5Z"
    assert rfc3339nano(datetime(2026, 11, 2, 10, 0, 0, 123, tzinfo=UTC)) == "2026-11-02T10:00:00.000123Z"
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339nano(datetime(2026, 11, 2, 12, 0, tzinfo=plus_two)) == "2026-11-02T10:00:00Z"


def test_range_macros() -> None:
    assert expand_macros("x >= $__timeFrom() AND x < $__timeTo()", WINDOW) == (
        "x >= '2026-11-02T10:00:00Z' AND x < '2026-11-09T10:30:15.25Z'")
    assert expand_macros("WHERE $__timeFilter(e.event_timestamp)", WINDOW) == (
        "WHERE e.event_timestamp BETWEEN '2026-11-02T10:00:00Z' AND '2026-11-09T10:30:15.25Z'")


@pytest.mark.parametrize(("interval", "seconds"), [
    ("1h", "3600"), ("1d", "86400"), ("'1d'", "86400"), ("1w", "604800"), ("30s", "30"),
    ("500ms", "0.5"), ("2w", "1.2096e+06"),
])
def test_time_group_writes_seconds_as_go_does(interval: str, seconds: str) -> None:
    assert expand_macros(f"SELECT $__timeGroupAlias(h.hour, {interval}) FROM t", WINDOW) == (
        f'SELECT floor(extract(epoch from h.hour)/{seconds})*{seconds} AS "time" FROM t')


def test_time_group_alone_or_followed_by_a_comma() -> None:
    # A fill value is the backend's business after the query; the SQL is the same.
    assert expand_macros("GROUP BY $__timeGroup(t, 1h, 0)", WINDOW) == (
        "GROUP BY floor(extract(epoch from t)/3600)*3600")
    # Grafana before 5.3 aliased it itself; a comma after the call still does.
    assert expand_macros("SELECT $__timeGroup(t, 1h), n", WINDOW) == (
        'SELECT floor(extract(epoch from t)/3600)*3600 AS "time", n')


def test_go_float_matches_go_percent_v() -> None:
    for number, text in [(0.0, "0"), (3600.0, "3600"), (100000.0, "100000"), (1e6, "1e+06"),
                         (1234567.0, "1.234567e+06"), (0.25, "0.25"), (1.5e-05, "1.5e-05"),
                         (-86400.0, "-86400")]:
        assert go_float(number) == text, number


def test_unknown_macros_and_bad_intervals_are_errors() -> None:
    with pytest.raises(GrafanaSQLError, match="unknown macro"):
        expand_macros("SELECT $__unixEpochFrom()", WINDOW)
    with pytest.raises(GrafanaSQLError, match="needs time column and interval"):
        expand_macros("SELECT $__timeGroup(t)", WINDOW)
    with pytest.raises(GrafanaSQLError, match="parsing interval"):
        parse_interval("1M")  # calendar months: not a fixed length
    assert parse_interval("2h") == timedelta(hours=2)


def test_variables_single_values_have_their_quotes_doubled() -> None:
    sql = "WHERE company_id = '$tenant' AND event_name = '${goal}' AND n = $n"
    assert interpolate(sql, {"tenant": "abc", "goal": "Bob's order", "n": 3}) == (
        "WHERE company_id = 'abc' AND event_name = 'Bob''s order' AND n = 3")
    # A value cannot close the quote it sits in.
    hostile = interpolate("'$goal'", {"goal": "x' OR true --"})
    assert hostile == "'x'' OR true --'"


def test_variables_are_matched_whole_and_macros_left_for_the_backend() -> None:
    assert interpolate("$page_path $page", {"page": "/", "page_path": "/a"}) == "/a /"
    assert interpolate("$__timeFrom() $__interval", {}) == "$__timeFrom() $__interval"
    with pytest.raises(GrafanaSQLError, match="unknown variable 'tenat'"):
        interpolate("'$tenat'", {"tenant": "x"})
    with pytest.raises(GrafanaSQLError, match="single values"):
        interpolate("$v", {"v": ["a", "b"]})  # type: ignore[dict-item]


def test_render_is_variables_then_macros() -> None:
    # A variable may hold a macro's argument (the bucket of a time group).
    got = render("SELECT $__timeGroupAlias(hour, $bucket) WHERE c = '$tenant'",
                 {"bucket": "1d", "tenant": "t1"}, WINDOW)
    assert got == "SELECT floor(extract(epoch from hour)/86400)*86400 AS \"time\" WHERE c = 't1'"
