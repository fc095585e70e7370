"""`userflow mcp` over stdio, as Claude Desktop starts it, through the MCP SDK's own client.

The server lists every tool of the registry; each metric tool's result is the
analytics function's answer for the same parameters (built here by hand, not
through the tool's argument mapping), with its definition, range and the
sessions, users and events behind it; describe_data and run_sql answer from
the tenant's data; the resources and prompts are served; a bad argument is a
tool error naming it; a key that is not a live read key stops the server
before it serves.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from userflow.ai import tools
from userflow.analytics import (adoption, bots, breakdown, experiments, funnel, heatmap, overview,
                                pages, paths, period, realtime, retention, sessions, timeline)
from userflow.analytics.filters import Filters
from userflow.analytics.query import Query

from .analytics_support import ask
from .mcp_support import Seed, mcp_env, payload, seed, stdio_session, text
from .stack import USERFLOW


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Seed:
    return seed(database_url)


def jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def cases(s: Seed) -> list[tuple[str, dict[str, Any], Query[Any]]]:
    """(tool, its arguments, the analytics query of the same parameters)."""
    span = {"from": s.start, "to": s.end}
    week = period.parse(s.start, s.end)
    steps = (funnel.Step("page_view", page="/"), funnel.Step("click", element_selector="#buy"),
             funnel.Step("page_view", page="/pricing"))
    return [
        ("overview", {**span, "interval": "day"}, overview.build(overview.Params(week, "day"))),
        ("sessions", {**span, "device_type": "mobile"},
         sessions.build(sessions.Params(week, Filters(device_type=("mobile",))))),
        ("breakdown", {**span, "dimension": "referrer", "limit": 5},
         breakdown.build(breakdown.Params(week, "referrer", limit=5))),
        ("pages", {**span, "limit": 5}, pages.build(pages.Params(week, limit=5))),
        ("heatmap", {**span, "page": "/", "bin_px": 50},
         heatmap.build(heatmap.Params(week, "/", bin_px=50))),
        ("timeline", {"user_id": "user1", "limit": 5},
         timeline.build(timeline.Params("user1", limit=5))),
        ("bots", span, bots.build(bots.Params(week))),
        ("retention", {**span, "interval": "day", "periods": 7},
         retention.build(retention.Params(week, "day", periods=7))),
        ("experiments", {**span, "experiment_id": "checkout-button", "goal_event_type": "custom",
                         "goal_event_name": "signup"},
         experiments.build(experiments.Params(week, "checkout-button", "custom",
                                              goal_event_name="signup"))),
        ("adoption", {**span, "feature": "signup"}, adoption.build(adoption.Params(week, "signup"))),
        ("funnel", {**span, "steps": [{"event_type": "page_view", "page": "/"},
                                      {"event_type": "click", "element_selector": "#buy"},
                                      {"event_type": "page_view", "page": "/pricing"}],
                    "breakdown": "device_type"},
         funnel.build(funnel.Params(week, steps, breakdown="device_type"))),
        ("paths", {**span, "after": "/"}, paths.build(paths.Params(week, after="/"))),
    ]


def test_every_tool_answers_as_the_analytics_functions(database_url: str, seeded: Seed,
                                                       tmp_path: Path) -> None:
    env = mcp_env(database_url, UF_READ_KEY=seeded.a.read_key)
    got: dict[str, dict[str, Any]] = {}

    async def session() -> None:
        async with stdio_session(env, tmp_path / "mcp.err") as client:
            listed = await client.list_tools()
            got["__names__"] = {"names": [t.name for t in listed.tools],
                                "read_only": all(t.annotations and t.annotations.read_only_hint
                                                 for t in listed.tools)}
            for name, arguments, _ in cases(seeded):
                result = await client.call_tool(name, arguments)
                assert not result.is_error, (name, result.content)
                got[name] = payload(result)
            for name, arguments in (("realtime", {}), ("describe_data", {}),
                                    ("run_sql", {"sql": "SELECT page_path, count(*) AS views FROM "
                                                        "events WHERE event_type = 'page_view' AND "
                                                        "NOT is_bot GROUP BY 1 ORDER BY 1"})):
                result = await client.call_tool(name, arguments)
                assert not result.is_error, (name, result.content)
                got[name] = payload(result)

    anyio.run(session)
    assert got["__names__"] == {"names": [t.name for t in tools.TOOLS], "read_only": True}
    assert {"overview", "sessions", "breakdown", "pages", "funnel", "paths", "retention",
            "experiments", "adoption", "heatmap", "realtime", "timeline", "bots", "describe_data",
            "run_sql"} <= set(got["__names__"]["names"])
    for name, _, query in cases(seeded):
        expected = ask(database_url, seeded.a.read_key, query)
        answer = got[name]
        assert answer["result"] == jsonable(expected.result), name
        assert answer["metric"] == name and answer["definition"], name
        assert answer["meta"]["source"] == expected.meta.source, name
        if query.period is not None:
            assert answer["range"] == query.period.as_json(), name
        population = answer["population"]
        assert population["sessions"] > 0 and population["users"] > 0, (name, population)
        assert population["events"] >= population["sessions"], (name, population)

    # The figures are A's: 61 sessions of the week (one of them now), a third on phones.
    assert got["sessions"]["result"]["sessions"] == 20
    assert got["sessions"]["population"]["sessions"] == 20
    assert got["overview"]["result"]["totals"]["sessions"] == 61
    assert got["overview"]["population"]["sessions"] == 61
    assert got["realtime"]["result"]["active_users"] == 1
    assert got["realtime"]["result"]["top_pages"][0]["page"] == "/live"

    described = got["describe_data"]
    assert described["counts"]["sessions"] == 61 and described["counts"]["bot_sessions"] == 1
    assert described["experiments"] == {"checkout-button": {"control": 9, "treatment": 8}}
    assert [n["event_name"] for n in described["event_names"]["by_sessions"]] == ["signup"]
    assert {p["page"] for p in described["top_pages"]["by_views"]} == {"/", "/pricing", "/live"}
    assert "tenant.events" in described["views"]
    assert "page_path text" in described["views"]["tenant.events"]
    assert set(described["event_types"]) == {"page_view", "click", "custom"}

    sql = got["run_sql"]
    assert sql["columns"] == ["page_path", "views"] and sql["cut"] == 0
    assert dict(map(tuple, sql["rows"])) == {r["page"]: r["views"]
                                             for r in got["pages"]["result"]["rows"]}


def test_resources_prompts_and_refused_arguments(database_url: str, seeded: Seed,
                                                 tmp_path: Path) -> None:
    env = mcp_env(database_url, UF_READ_KEY=seeded.a.read_key)
    seen: dict[str, Any] = {}

    async def session() -> None:
        async with stdio_session(env, tmp_path / "mcp.err") as client:
            listed = await client.list_resources()
            seen["resources"] = [str(r.uri) for r in listed.resources]
            seen["metrics"] = text((await client.read_resource("userflow://metrics")).contents[0])
            seen["funnel"] = text((await client.read_resource("userflow://metrics/funnel")).contents[0])
            seen["schema"] = text((await client.read_resource("userflow://schema")).contents[0])
            seen["prompts"] = [p.name for p in (await client.list_prompts()).prompts]
            got = await client.get_prompt("read_experiment", {"experiment_id": "checkout-button"})
            seen["prompt"] = text(got.messages[0].content)
            for name, arguments in (("breakdown", {"dimension": "shoe_size"}),
                                    ("pages", {"limit": 0, "from": "yesterday"}),
                                    ("sessions", {"device_type": 3, "colour": "red"}),
                                    ("funnel", {"steps": [{"event_type": "page_view"}]}),
                                    ("experiments", {"experiment_id": "no-such-test",
                                                     "goal_event_type": "click"}),
                                    ("no_such_tool", {})):
                result = await client.call_tool(name, arguments)
                assert result.is_error, name
                seen[f"error:{name}"] = payload(result)

    anyio.run(session)
    assert seen["resources"][:2] == ["userflow://metrics", "userflow://schema"]
    assert {f"userflow://metrics/{t.name}" for t in tools.TOOLS} <= set(seen["resources"])
    assert "**funnel**" in seen["metrics"] and "**run_sql**" in seen["metrics"]
    assert "window_seconds" in seen["funnel"] and "conversion window" in seen["funnel"].lower()
    assert "## tenant.events" in seen["schema"] and "- page_path text" in seen["schema"]
    assert seen["prompts"] == ["weekly_ux_report", "diagnose_funnel_drop_off", "read_experiment"]
    assert "checkout-button" in seen["prompt"] and "describe_data" in seen["prompt"]

    def fields(name: str) -> set[str]:
        return {e["field"] for e in seen[f"error:{name}"]["errors"]}

    assert fields("breakdown") == {"dimension"}
    assert fields("pages") == {"limit", "from"}
    assert fields("sessions") == {"device_type", "colour"}
    assert fields("funnel") == {"steps"}
    assert seen["error:experiments"]["code"] == "not_found"
    assert seen["error:no_such_tool"]["code"] == "unknown_tool"


@pytest.mark.parametrize("key", ["", "ufr_not-a-key", "write"])
def test_a_key_that_reads_nothing_stops_the_server(database_url: str, seeded: Seed,
                                                   key: str) -> None:
    given = seeded.a.write_key if key == "write" else key
    done = subprocess.run([*USERFLOW, "mcp"], env=mcp_env(database_url, UF_READ_KEY=given),
                          input=b"", capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"UF_READ_KEY" in done.stderr
    assert done.stdout == b""  # nothing on the protocol's stream
