"""Shared pieces of the MCP tests: two tenants' stored events, `userflow mcp` as a real
process (stdio through the SDK's own client, or streamable HTTP on a real socket).

Tenant A has a week of shop traffic (pages, clicks with coordinates, an
experiment, a custom event, phones and desktops, a bot); tenant B has a page,
an element text and a user agent of its own, which A must never read.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import TextContent, TextResourceContents
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from userflow.store.tenants import NewTenant

from .analytics_support import BOT, PHONE, event, refresh, store
from .conftest import make_tenant
from .stack import USERFLOW, Process, free_port, role_env, wait_for

B_PAGE = "/b-secret-page"
B_TEXT = "B's secret button"
B_AGENT = "BSecretAgent/1.0 (compatible; tenant-b)"
# Every table of the public schema a tenant might try to change, for before/after counts.
TABLES = ("company", "api_key", "user_events", "text_value", "user_agent", "event_ledger",
          "rollup_pending", "session_rollup", "session_page_rollup", "actor_hour_rollup",
          "read_scope_secret", "schema_migrations")


@dataclass(frozen=True)
class Seed:
    a: NewTenant
    b: NewTenant
    start: str  # the range holding A's week, ISO dates
    end: str


def seed(database_url: str) -> Seed:
    """Both tenants' events, stored by the consumer's code, the rollups refreshed."""
    a, b = make_tenant(database_url, "Analyst Shop"), make_tenant(database_url, "Other Co")
    first = (datetime.now(UTC) - timedelta(days=6)).replace(hour=9, minute=0, second=0,
                                                            microsecond=0)
    events = []
    for i in range(60):
        at = first + timedelta(days=i % 6, minutes=7 * i)
        user, session = f"user{i % 17}", f"sa{i}"
        kw: dict[str, Any] = {"session": session, "user": user, "anon": None}
        if i % 3 == 0:
            kw["agent"] = PHONE
        variant = "treatment" if (i % 17) % 2 else "control"
        events.append(event(a.company_id, at, page="/", experiment_id="checkout-button",
                            variant=variant, referrer="https://www.search.example/q", **kw))
        if i % 4 != 3:
            events.append(event(a.company_id, at + timedelta(seconds=20), "click", page="/",
                                element_selector="#buy", x_coordinate=100 + i, y_coordinate=40,
                                **kw))
            events.append(event(a.company_id, at + timedelta(seconds=45), page="/pricing", **kw))
        if i % 2 == 0:
            events.append(event(a.company_id, at + timedelta(seconds=80), "custom",
                                event_name="signup", page="/pricing", **kw))
    now = datetime.now(UTC) - timedelta(seconds=30)  # realtime's 5 active minutes
    events.append(event(a.company_id, now, page="/live", session="live", user="user1", anon=None))
    events.append(event(a.company_id, first, page="/", session="bot", user=None, anon="crawler",
                        agent=BOT))
    events.append(event(b.company_id, first + timedelta(hours=1), page=B_PAGE, session="sb",
                        user="buser", anon=None, agent=B_AGENT))
    events.append(event(b.company_id, first + timedelta(hours=1, seconds=5), "click",
                        page=B_PAGE, session="sb", user="buser", anon=None, agent=B_AGENT,
                        element_selector="#b", element_text=B_TEXT))
    store(database_url, events)
    refresh(database_url)
    return Seed(a, b, first.date().isoformat(), (first + timedelta(days=7)).date().isoformat())


def counts(database_url: str) -> dict[str, int]:
    """Rows of every table, to show that nothing changed."""
    with psycopg.connect(database_url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in TABLES}


def mcp_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment `userflow mcp` runs with: the roles' URLs of the scratch database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UF_")}
    env.update(role_env(database_url))
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


@asynccontextmanager
async def stdio_session(env: dict[str, str], errlog: Path) -> AsyncIterator[ClientSession]:
    """`userflow mcp` over stdio, started by the MCP SDK's client."""
    params = StdioServerParameters(command=USERFLOW[0], args=[*USERFLOW[1:], "mcp"], env=env)
    with errlog.open("a") as err:
        async with stdio_client(params, errlog=err) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield session


@asynccontextmanager
async def http_session(url: str, key: str) -> AsyncIterator[ClientSession]:
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with client, streamable_http_client(url, http_client=client) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextmanager
def mcp_http(env: dict[str, str], logs: Path) -> Iterator[str]:
    """`userflow mcp --transport http` on a free port; yields its /mcp URL."""
    port = free_port()
    proc = Process(["mcp", "--transport", "http", "--host", "127.0.0.1", "--port", str(port)],
                   env, logs / f"mcp-http-{uuid.uuid4().hex[:6]}.log")
    proc.start()
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            # /readyz: open without a key, 200 once PostgreSQL answers
            return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 60, f"the MCP server to listen\n{proc.tail()}")
        yield f"{base}/mcp"
    finally:
        proc.stop()


def text(item: object) -> str:
    """The text of a resource's contents or a prompt's message."""
    assert isinstance(item, (TextContent, TextResourceContents)), item
    return item.text


def payload(result: Any) -> dict[str, Any]:
    """A tool result's JSON object (the structured content)."""
    assert isinstance(result.structured_content, dict), result
    return result.structured_content
