"""The Grafana dashboards (dashboards/*.json) on a real database: every PostgreSQL query runs,
as Grafana's role (userflow_dashboards), on a week of simulated traffic of two tenants, returns
rows, and agrees with the analytics for the same figure.

Each panel's SQL is taken from the JSON, its variables and macros expanded as Grafana expands
them (grafana.py) and run; its rows are then compared with the query API's answer for the same
tenant, range and parameters (the endpoint's own from_args/from_body and build, run as the
reader with the tenant's read key), field by field: the panels name their columns after the
API's fields. Panels are also compared with the definitions computed in Python from the
events (dashboard_reference.py) and with the simulator's own truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from scipy.stats import norm

from . import dashboard_reference as ref
from .dashboard_cases import Case, World, assert_rows, evaluate, same
from .dashboard_support import (
    DATASOURCE_UID,
    POSTGRES,
    Row,
    dashboards_connection,
    load_tenants,
    options,
    panels,
    postgres_dashboards,
    queries,
    resolve,
    run,
    simulated_week_start,
)
from .grafana import render

pytestmark = pytest.mark.services

DASHBOARDS = postgres_dashboards()
OVERVIEW, DEEP_DIVE = DASHBOARDS["userflow-product-overview"], DASHBOARDS["userflow-ux-deep-dive"]
# (tenant, range) of each comparison: the whole simulated week, and a stretch inside it.
CASES = [("shop", "week"), ("shop", "midweek"), ("blog", "week")]
# The PostgreSQL panels, each compared below.
COMPARED = {
    "Events", "Users", "Sessions", "New users", "Bounce rate", "Conversion rate",
    "Events, users and sessions over time", "Users by country", "Sessions by device type",
    "Browsers", "Events by type", "Top pages",
    "Funnel", "Funnel steps", "Retention by cohort", "Experiment $experiment", "Content",
    "Journeys from session start", "Next pages after $page", "Exit pages",
    "Click heatmap of $page ($device)", "Most clicked on $page ($device)",
}


@pytest.fixture(scope="module")
def world(database_url: str) -> World:
    start = simulated_week_start()
    tenants = load_tenants(database_url, start)
    return World(database_url, start, tenants,
                 {t.company_id: ref.events_of(database_url, t.company_id) for t in tenants.values()})


@pytest.fixture(scope="module", params=CASES, ids=[f"{t}-{w}" for t, w in CASES])
def case(request: pytest.FixtureRequest, world: World) -> Case:
    slug, window = request.param
    return evaluate(world, DASHBOARDS, slug, world.window(window))


# --- every query ------------------------------------------------------------------------------

def test_every_postgres_query_reads_the_one_data_source() -> None:
    """Every query names the chart's data source (uid userflow-postgres) as code, raw SQL."""
    assert set(DASHBOARDS) == {"userflow-product-overview", "userflow-ux-deep-dive"}
    for d in DASHBOARDS.values():
        for p in panels(d):
            for t in p.get("targets", []):
                assert t["datasource"] == {"type": POSTGRES, "uid": DATASOURCE_UID}, p["title"]
                assert t["rawQuery"] is True and t["editorMode"] == "code", p["title"]
                assert t["format"] in ("table", "time_series"), p["title"]
        variables = [v for v in d["templating"]["list"] if v["type"] == "query"]
        assert all(v["datasource"]["uid"] == DATASOURCE_UID for v in variables)


@pytest.mark.parametrize("slug", ["shop", "blog"])
def test_every_query_runs_and_returns_rows(world: World, slug: str) -> None:
    """Each panel's and variable's SQL, as Grafana sends it, runs as userflow_dashboards and
    returns rows for each tenant over the week (the variables' queries included)."""
    window = world.window("week")
    seen = 0
    with dashboards_connection(world.admin_url) as conn:
        for d in DASHBOARDS.values():
            values = resolve(conn, d, window, {"tenant": world.tenants[slug].company_id})
            for q in queries(d):
                rows = run(conn, render(q.sql, values, window))
                assert rows, f"{d['uid']}: {q.where} returned no rows for {slug}"
                seen += 1
    assert seen == sum(len(list(queries(d))) for d in DASHBOARDS.values()) >= 30


def test_the_tenant_variable_lists_every_company_by_slug(world: World) -> None:
    (tenant,) = [v for v in OVERVIEW["templating"]["list"] if v["name"] == "tenant"]
    with dashboards_connection(world.admin_url) as conn:
        listed = options(run(conn, render(tenant["query"], {}, world.window("week"))))
    want = {(t.slug, t.company_id) for t in world.tenants.values()}
    assert want <= set(listed)
    assert [text for text, _ in listed] == sorted(text for text, _ in listed)
    # Both dashboards choose the tenant the same way.
    (other,) = [v for v in DEEP_DIVE["templating"]["list"] if v["name"] == "tenant"]
    assert other["query"] == tenant["query"]


def test_the_saved_defaults_are_listed_on_simulated_traffic(world: World) -> None:
    """The demo's data (the simulator's) shows every panel with the saved defaults: the goal,
    experiment, page and device saved in the JSON are among their variables' options."""
    window = world.window("week")
    with dashboards_connection(world.admin_url) as conn:
        for d in DASHBOARDS.values():
            values = resolve(conn, d, window, {"tenant": world.tenants["shop"].company_id})
            for v in d["templating"]["list"]:
                if v["type"] == "query" and v["name"] != "tenant":
                    assert values[v["name"]] == v["current"]["value"], (d["uid"], v["name"])


def test_each_panel_of_one_tenant_shows_that_tenant_only(world: World) -> None:
    """The tenant variable decides: the blog's panels differ from the shop's, and with a
    company that does not exist every total is zero."""
    week = world.window("week")
    shop, blog = evaluate(world, DASHBOARDS, "shop", week), evaluate(world, DASHBOARDS, "blog", week)
    for title in ("Events", "Users", "Sessions"):
        assert shop.panel(title) != blog.panel(title), title
    nobody = "00000000-0000-4000-8000-000000000000"
    with dashboards_connection(world.admin_url) as conn:
        values = {**shop.values[OVERVIEW["uid"]], "tenant": nobody}
        for title in ("Events", "Users", "Sessions", "New users"):
            (target,) = next(p for p in panels(OVERVIEW) if p["title"] == title)["targets"]
            (row,) = run(conn, render(target["rawSql"], values, week))
            assert set(row.values()) == {0}, title


def test_every_postgres_panel_is_compared() -> None:
    """A new panel needs its comparison here."""
    titles = {p["title"] for d in DASHBOARDS.values() for p in panels(d) if p.get("targets")}
    assert titles == COMPARED


# --- Product overview -------------------------------------------------------------------------

def test_totals_are_the_overview_and_sessions(case: Case) -> None:
    totals = case.api("/v1/analytics/overview", interval="day")["totals"]
    figures = case.api("/v1/analytics/sessions")
    assert case.panel("Events") == [{"events": totals["events"]}]
    assert case.panel("Users") == [{"users": totals["users"]}]
    assert case.panel("New users") == [{"new_users": totals["new_users"]}]
    assert case.panel("Sessions") == [{"sessions": figures["sessions"]}] == [
        {"sessions": totals["sessions"]}]
    assert_rows(case.panel("Bounce rate"), [figures], "Bounce rate")
    assert totals["events"] > 0 and totals["new_users"] > 0


def test_conversion_rate_is_sessions_with_the_goal_over_sessions(case: Case) -> None:
    goal = case.var(OVERVIEW, "goal")
    every = case.api("/v1/analytics/sessions")["sessions"]
    converted = case.api("/v1/analytics/sessions", event_name=goal)["sessions"]
    (row,) = case.panel("Conversion rate")
    assert (row["converted"], row["sessions"]) == (converted, every)
    assert same(row["conversion_rate"], converted / every)


@pytest.mark.parametrize("bucket", ["1d", "1h"])
def test_the_series_is_the_overview_s(world: World, bucket: str) -> None:
    """Events and users per bucket (actor_hour_rollup) and sessions per bucket of their first
    event: the overview's series, less its empty buckets (Grafana leaves those out)."""
    case = evaluate(world, DASHBOARDS, "shop", world.window("midweek"), {"bucket": bucket})
    interval = {"1d": "day", "1h": "hour"}[bucket]
    series = case.api("/v1/analytics/overview", interval=interval)["series"]
    title = "Events, users and sessions over time"

    def at(row: Row) -> str:
        return datetime.fromtimestamp(float(row["time"]), UTC).isoformat()

    assert {at(r): (r["events"], r["users"]) for r in case.panel(title, "A")} == {
        p["t"]: (p["events"], p["users"]) for p in series if p["events"]}
    assert {at(r): r["sessions"] for r in case.panel(title, "B")} == {
        p["t"]: p["sessions"] for p in series if p["sessions"]}
    assert len(case.panel(title, "A")) > (24 if bucket == "1h" else 2)


@pytest.mark.parametrize(("title", "dimension"), [
    ("Users by country", "country"), ("Sessions by device type", "device_type"),
    ("Browsers", "browser")])
def test_breakdowns_are_the_api_s(case: Case, title: str, dimension: str) -> None:
    rows = case.api("/v1/analytics/breakdown", dimension=dimension)["rows"]
    if dimension == "country":  # a map has no place for sessions without a country
        rows = [r for r in rows if r["value"] is not None]
    assert_rows(case.panel(title), rows, title)


def test_events_by_type_are_the_overview_s(case: Case) -> None:
    by_type = case.api("/v1/analytics/overview", interval="day")["totals"]["by_event_type"]
    assert {r["event_type"]: r["events"] for r in case.panel("Events by type")} == by_type


@pytest.mark.parametrize(("title", "limit"), [("Top pages", "10"), ("Content", "100")])
def test_pages_are_the_api_s(case: Case, title: str, limit: str) -> None:
    assert_rows(case.panel(title), case.api("/v1/analytics/pages", limit=limit)["rows"], title)


# --- UX deep dive: funnel ---------------------------------------------------------------------

def funnel_specs(case: Case) -> list[str]:
    return [s.strip() for s in case.var(DEEP_DIVE, "funnel_steps").split(",")]


def test_the_funnel_follows_the_definition(case: Case) -> None:
    seconds = int(case.var(DEEP_DIVE, "window"))
    want = ref.funnel(case.events, case.window, funnel_specs(case), seconds)
    for title in ("Funnel", "Funnel steps"):
        got = case.panel(title)
        assert [r["spec"] for r in got] == [w["spec"] for w in want]
        assert_rows(got, want, title)
        counts = [r["count"] for r in got]
        assert counts == sorted(counts, reverse=True) and counts[0] > 0
        for r in got:
            assert same(r["conversion_from_first"], r["count"] / got[0]["count"])
    if case.tenant == case.world.tenants["blog"]:  # a second step at the first's time is not after it
        ties = [e for e in case.events if e.actor == "tie-tester"]
        assert len(ties) == 2 and ties[0].at == ties[1].at
    if case.window.start == case.world.start and case.tenant == case.world.tenants["shop"]:
        # The simulator planted this funnel (its steps are the default): its truth agrees.
        truth = case.tenant.simulation.truth.funnel
        assert [r["count"] for r in case.panel("Funnel")] == truth.counts


def test_the_funnel_is_the_api_s(case: Case) -> None:
    steps = [{"event_type": "page_view", "page": s} if s.startswith("/")
             else {"event_type": "custom", "event_name": s} for s in funnel_specs(case)]
    answer = case.api_body("/v1/analytics/funnel", {
        "steps": steps, "window_seconds": int(case.var(DEEP_DIVE, "window")), "actor": "user"})
    assert_rows(case.panel("Funnel steps"), answer["steps"], "Funnel steps")


# --- retention --------------------------------------------------------------------------------

def retention_cells(rows: list[Row]) -> dict[tuple[str, int], int]:
    return {(r["cohort"], r["period"]): r["retained"] for r in rows}


@pytest.mark.parametrize("interval", ["day", "week"])
def test_retention_follows_the_definition(world: World, interval: str) -> None:
    for slug, name in (("shop", "week"), ("shop", "midweek")):
        case = evaluate(world, DASHBOARDS, slug, world.window(name), {"retention": interval})
        got = retention_cells(case.panel("Retention by cohort"))
        assert got == ref.retention(case.events, case.window, interval)
        # Period 0 is every cohort's size; together they are the range's new users.
        new = case.api("/v1/analytics/overview", interval="day")["totals"]["new_users"]
        assert sum(n for (_, period), n in got.items() if period == 0) == new > 0
        if name == "week":  # the simulated week starts on a weekday: two ISO weeks at least
            assert max(period for _, period in got) >= (1 if interval == "week" else 5)


def test_retention_is_the_api_s(case: Case) -> None:
    interval = case.var(DEEP_DIVE, "retention")
    cohorts = case.api("/v1/analytics/retention", interval=interval)["cohorts"]
    got = retention_cells(case.panel("Retention by cohort"))
    want = {(c["cohort"][:10], n): users for c in cohorts for n, users in enumerate(c["retained"])}
    assert {k: v for k, v in want.items() if v} == got
    for c in cohorts:  # empty cohorts too: no row in the panel
        assert c["retained"][0] == c["size"] == got.get((c["cohort"][:10], 0), 0)
    assert sum(c["size"] for c in cohorts) > 0


# --- experiment -------------------------------------------------------------------------------

def experiment_vars(case: Case) -> tuple[str, str, str]:
    return (case.var(DEEP_DIVE, "experiment"), case.var(DEEP_DIVE, "goal"),
            case.var(DEEP_DIVE, "control"))


def test_the_experiment_follows_the_definition(case: Case) -> None:
    experiment_id, goal, control = experiment_vars(case)
    got = case.panel("Experiment $experiment")
    want = ref.experiment(case.events, case.window, experiment_id, goal, control)
    assert [r["variant"] for r in got] == [control, *sorted(set(want) - {control})]
    assert_rows(got, [want[r["variant"]] for r in got], "Experiment")
    # The interval is the normal quantile's, not 1.96's: width / 2 / standard error.
    (treated,) = [r for r in got if r["variant"] != control]
    (base,) = [r for r in got if r["variant"] == control]
    se = math.sqrt(treated["rate"] * (1 - treated["rate"]) / treated["exposed"]
                   + base["rate"] * (1 - base["rate"]) / base["exposed"])
    assert same((treated["ci95_high"] - treated["ci95_low"]) / 2 / se, norm.ppf(0.975))
    if case.window.start == case.world.start and case.tenant == case.world.tenants["shop"]:
        # The simulator's truth (one variant a visitor; no goal at an exposure's instant).
        truth = case.tenant.simulation.truth.experiment.variants
        assert {r["variant"]: (r["exposed"], r["converted"]) for r in got} == {
            v: (t.exposed, t.converted) for v, t in truth.items()}


def test_the_experiment_is_the_api_s(case: Case) -> None:
    experiment_id, goal, control = experiment_vars(case)
    variants = case.api("/v1/analytics/experiments/{experiment_id}", experiment_id=experiment_id,
                        goal_event_type="custom", goal_event_name=goal, control=control)["variants"]
    by_name = {v["variant"]: v for v in variants}
    got = case.panel("Experiment $experiment")
    assert {r["variant"] for r in got} == set(by_name)
    assert_rows(got, [by_name[r["variant"]] for r in got], "Experiment")


# --- paths ------------------------------------------------------------------------------------

def top(counter: Mapping[str, int], limit: int = 20) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def test_paths_follow_the_definitions(case: Case) -> None:
    page = case.var(DEEP_DIVE, "page")
    assert [(r["journey"], r["sessions"]) for r in case.panel("Journeys from session start")] == (
        top(ref.journeys(case.events, case.window)))
    assert [(r["next_page"], r["sessions"]) for r in case.panel("Next pages after $page")] == (
        top(ref.next_pages(case.events, case.window, page)))
    assert [(r["page"], r["sessions"]) for r in case.panel("Exit pages")] == (
        top(ref.exit_pages(case.events, case.window)))


def _pairs(items: list[Any], key: str) -> list[tuple[str, int]]:
    return [(i[key] if key in i else i["page"], i["sessions"]) for i in items]


def test_paths_are_the_api_s(case: Case) -> None:
    answer = case.api("/v1/analytics/paths", limit="20")
    journeys = [(r["journey"], r["sessions"]) for r in case.panel("Journeys from session start")]
    assert [(" → ".join(s["pages"]), s["sessions"]) for s in answer["sequences"]][:20] == journeys
    assert _pairs(answer["exit_pages"], "page")[:20] == [
        (r["page"], r["sessions"]) for r in case.panel("Exit pages")]
    after = case.api("/v1/analytics/paths", after=case.var(DEEP_DIVE, "page"), limit="20")
    assert _pairs(after["next_pages"], "page")[:20] == [
        (r["next_page"], r["sessions"]) for r in case.panel("Next pages after $page")]


# --- clicks -----------------------------------------------------------------------------------

def heat_vars(case: Case) -> tuple[str, str, int]:
    return (case.var(DEEP_DIVE, "page"), case.var(DEEP_DIVE, "device"),
            int(case.var(DEEP_DIVE, "bin")))


def test_the_heatmap_follows_the_definition(case: Case) -> None:
    page, device, cell = heat_vars(case)
    got = case.panel("Click heatmap of $page ($device)")
    assert {(r["x"], r["y"]): r["clicks"] for r in got} == ref.heatmap(
        case.events, case.window, page, device, cell)
    assert all(r["y_on_chart"] == -r["y"] and r["x"] % cell == r["y"] % cell == 0 for r in got)
    want = ref.selectors(case.events, case.window, page, device)
    if case.tenant == case.world.tenants["blog"]:  # its hand-made burst (edge_cases): one run
        assert want["button#buy"] == (5, 1)
    assert [(r["element_selector"], r["clicks"], r["rage_clicks"])
            for r in case.panel("Most clicked on $page ($device)")] == [
        (s, c, rage) for s, (c, rage) in sorted(want.items(),
                                                key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))][:20]


def test_the_heatmap_is_the_api_s(case: Case) -> None:
    page, device, cell = heat_vars(case)
    answer = case.api("/v1/analytics/heatmap", page=page, device_type=device, bin_px=str(cell))
    assert answer["bin_px"] == cell and not answer["cells_truncated"]
    assert_rows(case.panel("Click heatmap of $page ($device)"), answer["cells"], "Click heatmap")
    assert_rows(case.panel("Most clicked on $page ($device)"), answer["selectors"], "Most clicked")
