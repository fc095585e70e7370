"""`userflow mcp --transport http` on a real socket: the read key on every request, one tenant per key.

No key, a wrong one, a write key or a revoked one get 401 before the MCP
layer; the SDK's own client with a tenant's key lists and calls the tools and
gets the analytics functions' answers; one tenant's key never reads another's
rows or texts, through any tool or resource; the server keeps no session, so
each request answers for its own key;
the scope escapes fail over HTTP as they do in-process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import psycopg
import pytest

from userflow.analytics import pages, period, sessions
from userflow.store import tenants

from .analytics_support import ask
from .mcp_support import B_AGENT, B_PAGE, B_TEXT, Seed, counts, http_session, mcp_env, mcp_http, \
    payload, seed, text
from .stack import ROLE_OF, as_role

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "test", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Seed:
    return seed(database_url)


@pytest.fixture(scope="module")
def url(database_url: str, seeded: Seed, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[str]:
    with mcp_http(mcp_env(database_url), tmp_path_factory.mktemp("mcp")) as base:
        yield base


def post(url: str, body: dict[str, Any], key: str | None = None,
         session: str | None = None) -> httpx.Response:
    headers = dict(ACCEPT)
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if session is not None:
        headers["Mcp-Session-Id"] = session
    return httpx.post(url, content=orjson.dumps(body), headers=headers, timeout=30)


def test_no_key_or_a_wrong_one_gets_401(database_url: str, url: str, seeded: Seed) -> None:
    # A second read key of A's works until it is revoked, then at once no more.
    with psycopg.connect(as_role(database_url, ROLE_OF["operator"])) as conn:
        extra = tenants.add_key(conn, seeded.a.company_id, "read")
    assert post(url, INITIALIZE, extra).status_code == 200
    with psycopg.connect(as_role(database_url, ROLE_OF["operator"])) as conn:
        assert tenants.revoke_key(conn, extra)
    for key in (None, "nope", "ufr_made-up", seeded.a.write_key, extra):
        r = post(url, INITIALIZE, key)
        assert r.status_code == 401, (key, r.text)
        assert r.json()["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(url, headers={"Authorization": "Basic !!"}, timeout=30).status_code == 401
    assert httpx.delete(url, timeout=30).status_code == 401
    assert post(url, INITIALIZE, seeded.a.read_key).status_code == 200


def test_the_sdk_client_over_http_gets_the_analytics_answers(database_url: str, url: str,
                                                             seeded: Seed) -> None:
    span = {"from": seeded.start, "to": seeded.end}
    got: dict[str, Any] = {}

    async def session() -> None:
        async with http_session(url, seeded.a.read_key) as client:
            got["tools"] = [t.name for t in (await client.list_tools()).tools]
            got["sessions"] = payload(await client.call_tool("sessions", span))
            got["pages"] = payload(await client.call_tool("pages", span))

    anyio.run(session)
    week = period.parse(seeded.start, seeded.end)
    assert "run_sql" in got["tools"] and "funnel" in got["tools"]
    assert got["sessions"]["result"] == orjson.loads(orjson.dumps(ask(
        database_url, seeded.a.read_key, sessions.build(sessions.Params(week))).result))
    assert got["pages"]["result"] == orjson.loads(orjson.dumps(ask(
        database_url, seeded.a.read_key, pages.build(pages.Params(week))).result))


def test_one_tenant_s_key_never_reads_another_s_rows_or_texts(database_url: str, url: str,
                                                              seeded: Seed) -> None:
    span = {"from": seeded.start, "to": seeded.end}
    everything = ("SELECT page_url, element_text, user_agent, company_id::text FROM events "
                  "UNION ALL SELECT entry_page, NULL, browser, company_id::text FROM session_rollup")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("describe_data", {}), ("pages", span), ("paths", span),
        ("heatmap", {**span, "page": B_PAGE}), ("breakdown", {**span, "dimension": "page"}),
        ("timeline", {"user_id": "buser", "include_bots": True}), ("run_sql", {"sql": everything}),
        ("run_sql", {"sql": f"SELECT count(*) FROM events WHERE company_id = "
                            f"'{seeded.b.company_id}'"}),
    ]
    seen: dict[str, list[str]] = {"a": [], "b": []}
    heatmaps: dict[str, dict[str, Any]] = {}

    async def as_tenant(who: str, key: str) -> None:
        async with http_session(url, key) as client:
            for name, arguments in calls:
                result = payload(await client.call_tool(name, arguments))
                if name == "heatmap":  # it names its page: its figures are checked below
                    heatmaps[who] = result
                    result = {**result, "result": {**result["result"], "page": None}}
                seen[who].append(str(result))
            resource = await client.read_resource("userflow://schema")
            seen[who].append(text(resource.contents[0]))

    async def both() -> None:
        await as_tenant("a", seeded.a.read_key)
        await as_tenant("b", seeded.b.read_key)

    anyio.run(both)
    # The count's own SQL names B's company: it is checked by its answer.
    a_saw = "\n".join(seen["a"][:-2] + seen["a"][-1:])
    b_saw = "\n".join(seen["b"])
    for secret in (B_PAGE, B_TEXT, B_AGENT, str(seeded.b.company_id)):
        assert secret not in a_saw, secret
    assert B_TEXT in b_saw and B_AGENT in b_saw and str(seeded.b.company_id) in b_saw
    assert "'rows': [[0]]" in seen["a"][-2]
    assert heatmaps["a"]["result"]["totals"]["clicks"] == 0
    assert heatmaps["b"]["result"]["totals"]["clicks"] == 1


def test_each_request_stands_alone_with_its_key(url: str, seeded: Seed) -> None:
    """Stateless: no MCP session to take over; a call answers for the key it carries."""
    opened = post(url, INITIALIZE, seeded.a.read_key)
    assert opened.status_code == 200 and "mcp-session-id" not in opened.headers
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "run_sql", "arguments": {"sql": "SELECT slug FROM company"}}}
    slugs = {}
    for who, key in (("a", seeded.a.read_key), ("b", seeded.b.read_key)):
        r = post(url, call, key, session="a-made-up-session")
        assert r.status_code == 200, r.text
        line = next(x for x in r.text.splitlines() if x.startswith("data:"))
        slugs[who] = orjson.loads(line[5:])["result"]["structuredContent"]["rows"]
    assert slugs == {"a": [[seeded.a.slug]], "b": [[seeded.b.slug]]}
    assert post(url, call, None).status_code == 401


def test_scope_escapes_over_http_fail_and_change_nothing(database_url: str, url: str,
                                                         seeded: Seed, tmp_path: Path) -> None:
    other = seeded.b.read_key
    statements = [
        f"SELECT (SELECT set_config('userflow.read_key', '{other}', true)), "
        "(SELECT count(*) FROM events)",
        f"WITH b AS MATERIALIZED (SELECT userflow_bind_read_key('{other}') AS x) "
        "SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM events)",
        "SELECT set_config('role', 'userflow_migrator', true)",
        "DELETE FROM public.user_events", "DROP TABLE public.text_value",
        "SELECT value FROM public.text_value", "SELECT 1; SELECT 2",
    ]
    before = counts(database_url)
    outcomes: list[dict[str, Any]] = []

    async def session() -> None:
        async with http_session(url, seeded.a.read_key) as client:
            for sql in statements:
                result = await client.call_tool("run_sql", {"sql": sql})
                assert result.is_error, sql
                outcomes.append(payload(result))

    anyio.run(session)
    assert [o["code"] for o in outcomes] == ["sql_refused"] * len(statements)
    assert [o["sqlstate"] for o in outcomes] == ["42501", "42501", "42501", "42P11", "42P11",
                                                "42501", "42P11"]
    assert counts(database_url) == before
